#!/usr/bin/env bash
# CLI tests of streamed input (issue 17, classes 4, 6 and 7): stdin is read for one purpose only; SIGTERM, SIGINT
# and SIGHUP stop a run within a second whatever it waits on (a silent producer, a FIFO list or image with no
# writer, an endless list), commit what is finished and leave no temporary, a second signal too; each batch's
# records appear as soon as it is complete, and a partial batch runs when piped input stalls, so a slow producer
# sees its records live. Usage: test_streams.sh VIT_BINARY SOURCE_DIR
set -u
VIT=$1
SRC=$2
. "$(dirname "$0")/lib.sh"

now() { date +%s.%N; }
elapsed() { echo "$(now) - $1" | bc; }
# Milliseconds from START until FILE holds N lines (polling), or "timeout" after SECONDS.
time_to_lines() {
  local file=$1 n=$2 start=$3 limit=$4
  waits_for "$limit" bash -c "[ \$(wc -l <'$file' 2>/dev/null || echo 0) -ge $n ]" || { echo timeout; return; }
  echo "$(now) $start" | awk '{printf "%d", ($1 - $2) * 1000}'
}

echo "== class 4: stdin is read for one purpose only"
printf '%s\n' "$good" | "$VIT" classify -m "$MODEL" --files-from - - <"$good" >"$work/o" 2>"$work/e"; rc=$?
check_eq "--files-from - with '-': refused, nothing on stdout" "$rc:$(lines "$work/o"):$(cat "$work/e")" \
  "1:0:vit: error: stdin cannot be both the --files-from list and an image ('-'): give the image as a file"
"$VIT" classify -m "$MODEL" - "$good" - <"$good" >"$work/o" 2>"$work/e"; rc=$?
check_eq "'-' twice: refused" "$rc:$(lines "$work/o"):$(cat "$work/e")" "1:0:vit: error: '-' (an image on stdin) can be given only once"
printf '%s\n' "$good" - "$good" | "$VIT" classify -m "$MODEL" --format jsonl -b 1 --files-from - >"$work/o" 2>"$work/e"; rc=$?
check_eq "'-' as an entry of a list read from stdin: exit 1, the entry named, the record before it written" \
  "$rc:$(lines "$work/o"):$(cat "$work/e")" \
  "1:1:vit: error: stdin: list entry 2 is \"-\" (stdin), but stdin is the list itself"
printf '%s\n' "$good" - >"$work/list_dash.txt"
"$VIT" classify -m "$MODEL" --format jsonl --files-from "$work/list_dash.txt" <"$good" >"$work/o" 2>/dev/null; rc=$?
check_eq "'-' in a list read from a file: stdin is the image (one use)" "$rc:$(jq -r '.path + " " + (.top_k | length | tostring)' "$work/o" | tr '\n' ' ')" \
  "0:$good 5 - 5 "
"$VIT" classify -m "$MODEL" --format jsonl - <&- >"$work/o" 2>"$work/e"; rc=$?
check_eq "'-' with stdin closed: refused" "$rc:$(cat "$work/e")" "1:vit: error: stdin is closed, but '-' or --files-from - reads it"

echo "== class 6: signals stop a waiting run within a second"
# stops_quickly WHAT SIGNAL VIT_ARGS...: runs vit classify in the background (stdin from $STDIN_FROM), sends SIGNAL
# once it waits, expects it gone within 1.5 s with exit 1.
stops_quickly() {
  local what=$1 sig=$2 t0 pid rc took
  shift 2
  "$VIT" classify -m "$MODEL" --format jsonl "$@" <"${STDIN_FROM:-/dev/null}" >"$work/o" 2>"$work/e" &
  pid=$!
  track_pid $pid
  waits_for 30 handles_term $pid   # vit's handlers are in place (a loaded machine can take seconds to start)
  sleep 1
  t0=$(now)
  kill -"$sig" $pid
  waits_for 3 bash -c "! kill -0 $pid 2>/dev/null"
  took=$(elapsed "$t0")
  if kill -0 $pid 2>/dev/null; then
    bad "$what: still running 3 s after SIG$sig"
    kill -9 $pid
    wait $pid 2>/dev/null
    return
  fi
  wait $pid; rc=$?
  check "$what: SIG$sig ends it within 1.5 s (took ${took} s)" awk "BEGIN {exit !($took < 1.5)}"
  check_eq "$what: exit 1 (interrupted)" "$rc" 1
}
# A producer that says one path, then nothing, and never closes.
mkfifo "$work/feed1"
(echo "$good"; exec sleep 60) >"$work/feed1" &
feeder=$!
track_pid $feeder
STDIN_FROM=$work/feed1 stops_quickly "--files-from - with a silent producer" TERM -b 4 --files-from - -o "$work/silent.jsonl"
kill $feeder 2>/dev/null
check_eq "... the finished record committed to -o" "$(lines "$work/silent.jsonl")" 1
check "... no temporary left" bash -c "! ls -a '$work' | grep -q vit-tmp"
mkfifo "$work/list.fifo" "$work/image.fifo.png"
stops_quickly "a FIFO list with no writer" TERM --files-from "$work/list.fifo"
stops_quickly "a FIFO image input with no writer" TERM "$good" "$work/image.fifo.png"
check_eq "... the image before it written" "$(jq -r .path "$work/o")" "$good"
stops_quickly "--files-from /dev/urandom -0 (endless random names)" TERM -0 --files-from /dev/urandom
stops_quickly "SIGINT while waiting" INT --files-from "$work/list.fifo"
stops_quickly "SIGHUP while waiting" HUP --files-from "$work/list.fifo"
t0=$(now)
timeout 20 "$VIT" classify -m "$MODEL" -0 --files-from /dev/zero >/dev/null 2>"$work/e"; rc=$?
check_eq "-0 --files-from /dev/zero: refused (no spinning), exit 1" "$rc:$(cat "$work/e")" \
  "1:vit: error: /dev/zero: 65536 empty entries in a row (not a list of paths?)"
check "... at once (under 5 s)" awk "BEGIN {exit !($(elapsed "$t0") < 5)}"
timeout 20 "$VIT" classify -m "$MODEL" --files-from /dev/zero >/dev/null 2>"$work/e"; rc=$?
check_eq "--files-from /dev/zero: a NUL in a text list" "$rc:$(cat "$work/e")" \
  "1:vit: error: /dev/zero: line 1 contains a NUL byte: a NUL-separated list (find -print0) needs -0"
head -c 10000 /dev/zero | tr '\0' x >"$work/long.txt"
"$VIT" classify -m "$MODEL" --files-from "$work/long.txt" >/dev/null 2>"$work/e"; rc=$?
check_eq "an entry longer than PATH_MAX: refused" "$rc:$(cat "$work/e")" \
  "1:vit: error: $work/long.txt: entry 1 is longer than 4096 bytes without a newline (not a list of paths?)"
# A second signal while the first is being handled: the run dies of it, and no temporary is left.
for i in $(seq 1 200); do echo "$good"; done >"$work/many.txt"
mkfifo "$work/feed2"
(cat "$work/many.txt"; exec sleep 60) >"$work/feed2" &
feeder=$!
track_pid $feeder
"$VIT" classify -m "$MODEL" --format jsonl -b 1 --files-from - -o "$work/twice.jsonl" <"$work/feed2" 2>/dev/null &
pid=$!
track_pid $pid
if waits_for 10 bash -c "ls -a '$work' | grep -q '^\.twice\.jsonl\.vit-tmp-'"; then
  kill -INT $pid; kill -INT $pid
  waits_for 5 bash -c "! kill -0 $pid 2>/dev/null"
  check "two SIGINTs: no temporary left behind" bash -c "! ls -a '$work' | grep -q 'twice.jsonl.vit-tmp'"
  check "... and no half-written output (absent, or whole records)" \
    bash -c "[ ! -e '$work/twice.jsonl' ] || jq -e '.top_k | length == 5' '$work/twice.jsonl' >/dev/null"
else
  bad "two SIGINTs: the run never started writing"
fi
kill $feeder $pid 2>/dev/null

echo "== class 7: records are live"
for b in 1 8; do
  for f in jsonl csv text; do
    rm -f "$work/live.out"
    t0=$(now)
    (echo "$good"; sleep 5; echo "$good") | "$VIT" classify -m "$MODEL" --format $f -b $b --files-from - >"$work/live.out" 2>/dev/null &
    track_pid $!
    want=1
    [[ $f == csv ]] && want=2   # the header
    ms=$(time_to_lines "$work/live.out" $want "$t0" 4)
    check "-b $b --format $f: the first record appears while the producer is still silent (${ms} ms)" \
      bash -c "[[ '$ms' != timeout ]]"
  done
done
wait   # the producers above (5 s each)
# --batch-wait 0: a partial batch waits for its block (bit-exact batches); records come at the end of input.
rm -f "$work/live.out"
(echo "$good"; sleep 3; echo "$good") | "$VIT" classify -m "$MODEL" --format jsonl -b 8 --batch-wait 0 --files-from - >"$work/live.out" 2>/dev/null &
track_pid $!
sleep 2
check_eq "--batch-wait 0: no record before the block is complete" "$(lines "$work/live.out")" 0
wait
check_eq "... both records at the end" "$(lines "$work/live.out")" 2
# tail -f: every appended path gets its record without more input behind it.
: >"$work/growing.txt"
mkfifo "$work/feed3"
tail -f "$work/growing.txt" >"$work/feed3" &
track_pid $!
"$VIT" classify -m "$MODEL" --format jsonl -b 4 --files-from - <"$work/feed3" >"$work/tail.out" 2>/dev/null &
track_pid $!
for n in 1 2 3; do
  echo "$good" >>"$work/growing.txt"
  check "tail -f list | vit classify --files-from -: record $n appears" waits_for 8 bash -c "[ \$(wc -l <'$work/tail.out') -ge $n ]"
done
# A stall-free run (a list in a file) is bit-exact with the unsharded, whole-batch run from a pipe.
cp "$PRE/exif_o1.jpg" "$work/b.jpg"
for i in $(seq 1 5); do printf '%s\n' "$good" "$work/b.jpg"; done >"$work/ten.txt"
a=$("$VIT" classify -m "$MODEL" --format jsonl --logits -b 4 --files-from "$work/ten.txt" 2>/dev/null | jq -c .logits)
b=$(cat "$work/ten.txt" | "$VIT" classify -m "$MODEL" --format jsonl --logits -b 4 --batch-wait 0 --files-from - 2>/dev/null | jq -c .logits)
check "a list file and a pipe with --batch-wait 0 give bit-identical logits" test "$a" == "$b"

finish
