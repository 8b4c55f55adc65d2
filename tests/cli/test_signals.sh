#!/usr/bin/env bash
# CLI tests of where SIGINT, SIGTERM and SIGHUP are taken: on vit's own signal thread only, never on a thread that
# runs the model. oneDNN 2.6's generated GEMM kernels (gemm:jit: every matmul on CPUs without AVX-512 then) point rsp at
# a heap buffer while they run, so a signal handled on such a thread had its frame written into the heap (aborts
# with "corrupted size vs. prev_size while consolidating" after a SIGTERM). Usage: test_signals.sh VIT_BINARY SOURCE_DIR
set -u
VIT=$1
SRC=$2
. "$(dirname "$0")/lib.sh"
DEIT=$SRC/models/deit-tiny-imagenet

echo "== only the thread named vit-signals takes SIGINT, SIGTERM and SIGHUP"
# Every other thread (main, the OpenMP team, the decoders) has the three blocked: SigBlk bits 1, 2 and 15 (0x4003).
mkfifo "$work/list.fifo"
"$VIT" classify -m "$MODEL" --format jsonl --files-from "$work/list.fifo" >"$work/o" 2>"$work/e" &
pid=$!
track_pid $pid
waits_for 30 handles_term $pid
takers=() blockers=0
for task in /proc/$pid/task/*; do
  blk=$(awk '/^SigBlk:/ {print $2}' "$task/status" 2>/dev/null) || continue
  if (((16#$blk & 16#4003) == 16#4003)); then blockers=$((blockers + 1)); else takers+=("$(cat "$task/comm")"); fi
done
check_eq "threads that can take the signals" "${takers[*]}" "vit-signals"
check "the others block them (main and at least one decoder)" test "$blockers" -ge 2
kill -TERM $pid
wait $pid
rc=$?
check_eq "SIGTERM still stops the run (the handler runs on that thread): exit 1" "$rc:$(cat "$work/e")" \
  "1:vit: warning: interrupted: 0 inputs written"

echo "== SIGTERM while the forward pass runs on the AVX2 path (ONEDNN_MAX_CPU_ISA=AVX2)"
# Each run is signalled as soon as its first batch is written: the next batch's forward pass is then running. Before
# the signal thread, about half of such runs aborted (heap corruption) in oneDNN's gemm:jit, which then ran every
# linear there; vit's own AVX2 GEMMs run them now, oneDNN still runs the layer norms and the remaining ops.
mkdir "$work/in"
for i in $(seq -w 1 80); do cp "$PRE/conv_rgb.bmp" "$work/in/a$i.bmp"; done
has_lines() { (($(lines "$1") >= $2)); }
# the first batch is out, or vit is gone (then the check below reports its exit status and stderr at once)
batch_or_gone() { has_lines "$1" 16 || ! kill -0 "$2" 2>/dev/null; }
results=""
for run in 1 2 3 4 5 6 7 8; do
  ONEDNN_MAX_CPU_ISA=AVX2 "$VIT" classify -m "$DEIT" -b 16 -t 1 --no-progress --format jsonl "$work/in" \
    >"$work/f.jsonl" 2>"$work/f.err" &
  pid=$!
  track_pid $pid
  waits_for 120 batch_or_gone "$work/f.jsonl" $pid
  kill -TERM $pid
  wait $pid
  rc=$?
  n=$(lines "$work/f.jsonl")
  # exit 1, whole batches of 16 written and reported, nothing else on stderr
  if [[ $rc == 1 && $((n % 16)) == 0 && $(cat "$work/f.err") == "vit: warning: interrupted: $n inputs written" ]]; then
    results+="ok "
  else
    results+="[run $run: exit $rc, $n records, $(head -c 200 "$work/f.err")] "
  fi
done
check_eq "8 runs signalled mid-batch: each exits 1 with its whole batches written" "$results" "ok ok ok ok ok ok ok ok "

finish
