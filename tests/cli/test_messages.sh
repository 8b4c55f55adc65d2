#!/usr/bin/env bash
# CLI tests of failures and what vit says about them (issue 17, classes 1, 8 and 10): no abort (a thread that
# cannot start, memory that runs out: one "vit: error:" line, exit 1, finished records kept); exit codes and
# messages for lists, --skip-done, unreadable folders, folders with no images, a FIFO as weights, option ranges,
# --fail-fast, `--`; shards in fixed blocks independent of -b. Usage: test_messages.sh VIT_BINARY SOURCE_DIR
set -u
VIT=$1
SRC=$2
. "$(dirname "$0")/lib.sh"

# fatal WHAT EXPECTED_STDERR VIT_ARGS...: exit 1, one line on stderr, as expected.
fatal() {
  local what=$1 want=$2
  shift 2
  timeout 60 "$VIT" "$@" >"$work/o" 2>"$work/e"
  local rc=$?
  check_eq "$what: exit 1, one line" "$rc:$(lines "$work/e")" "1:1"
  check_eq "$what: message" "$(cat "$work/e")" "$want"
}

# usage_error WHAT EXPECTED_FIRST_LINE VIT_ARGS...: a command-line error: exit 1, CLI11's two lines (the message,
# then the --help hint), nothing on stdout.
usage_error() {
  local what=$1 want=$2
  shift 2
  "$VIT" "$@" >"$work/o" 2>"$work/e"
  local rc=$?
  check_eq "$what: exit 1, nothing on stdout" "$rc:$(wc -c <"$work/o")" "1:0"
  check_eq "$what: message" "$(head -1 "$work/e"):$(sed -n 2p "$work/e")" "$want:Run with --help for more information."
}

echo "== class 1: no abort"
usage_error "--decode-threads 5000 (over the bound)" \
  "--decode-threads: Value 5000 not in range 0 to 1024" classify -m "$MODEL" --decode-threads 5000 "$good"
if under_asan; then
  echo "  skip ulimit -v cases: AddressSanitizer reserves terabytes of address space"
else
  # Thread stacks (8 MiB each) cannot all be mapped under a 600 MB address-space limit.
  (ulimit -v 600000 && exec "$VIT" classify -m "$MODEL" --format jsonl --decode-threads 1000 "$good" "$good") >"$work/o" 2>"$work/e"; rc=$?
  check_eq "decoder threads that cannot start: exit 1, one line" "$rc:$(lines "$work/e")" "1:1"
  check "... naming the thread and the reason" grep -Eq '^vit: error: cannot start decoder thread [0-9]+ of 1000: Resource temporarily unavailable$' "$work/e"
  check "... no 'terminate called'" bash -c "! grep -q terminate '$work/e'"
  # A batch of 2048 DeiT-tiny inputs needs more than 1.5 GB: out of memory is a message, not SIGABRT.
  deit=$SRC/models/deit-tiny-imagenet
  for cmd in classify eval; do
    mkdir -p "$work/ev/x"
    cp "$good" "$work/ev/x/a.bmp"
    args=("$good")
    [[ $cmd == eval ]] && args=("$work/ev")
    (ulimit -v 1500000 && exec "$VIT" $cmd -m "$deit" -b 2048 "${args[@]}") >"$work/o" 2>"$work/e"; rc=$?
    check_eq "$cmd -b 2048 under ulimit -v 1500000: exit 1, one line" "$rc:$(lines "$work/e")" "1:1"
    check "... saying out of memory" grep -Eq '^vit: error: .*out of memory' "$work/e"
  done
fi
# A fatal error in the middle of a run keeps what was finished (the list turns out not to be a path list).
{ for i in 1 2 3 4 5; do echo "$good"; done; printf 'x\000y\n'; } >"$work/bad_list.txt"
"$VIT" classify -m "$MODEL" --format json -b 2 --files-from "$work/bad_list.txt" -o "$work/partial.json" 2>"$work/e"; rc=$?
check_eq "fatal mid-run: exit 1, one line" "$rc:$(lines "$work/e")" "1:1"
check_eq "... the finished records committed as a valid JSON array" "$(jq length "$work/partial.json")" 5

echo "== class 8: exit codes and messages"
mkdir -p "$work/dir"
fatal "--files-from DIR" "vit: error: $work/dir: is a directory, expected a file listing paths" \
  classify -m "$MODEL" --files-from "$work/dir"
fatal "--files-from missing" "vit: error: $work/nope.txt: cannot open the list of paths: no such file" \
  classify -m "$MODEL" --files-from "$work/nope.txt"
fatal "--files-from with a read error (EIO)" "vit: error: /proc/self/mem: read error: Input/output error" \
  classify -m "$MODEL" --files-from /proc/self/mem
fatal "--skip-done DIR" "vit: error: $work/dir: --skip-done is a directory, expected an earlier jsonl result" \
  classify -m "$MODEL" --skip-done "$work/dir" "$good"
mkfifo "$work/fifo"
fatal "--skip-done FIFO" "vit: error: $work/fifo: --skip-done is not a regular file, expected an earlier jsonl result" \
  classify -m "$MODEL" --skip-done "$work/fifo" "$good"
fatal "--skip-done missing" "vit: error: $work/nope.jsonl: cannot open the --skip-done file: no such file" \
  classify -m "$MODEL" --skip-done "$work/nope.jsonl" "$good"
fatal "--weights FIFO (no hang)" "vit: error: $work/fifo: not a regular file (a pipe or device?), expected a .safetensors file" \
  classify -m "$MODEL" --weights "$work/fifo" "$good"
fatal "--weights /dev/zero" "vit: error: /dev/zero: not a regular file (a pipe or device?), expected a .safetensors file" \
  classify -m "$MODEL" --weights /dev/zero "$good"
usage_error "--threads -3: a short range" "--threads: Value -3 not in range 0 to 4096" classify -m "$MODEL" --threads -3 "$good"
usage_error "--max-pixels 0" "--max-pixels: Value 0 not in range 1 to 9223372036854775807" classify -m "$MODEL" --max-pixels 0 "$good"
usage_error "--batch-size 0" "--batch-size: Value 0 not in range 1 to 4096" classify -m "$MODEL" -b 0 "$good"
usage_error "eval --limit -1" "--limit: Value -1 not in range 0 to 9223372036854775807" eval -m "$MODEL" --limit -1 "$work/dir"
fatal "--shard with a non-ASCII digit" "vit: error: --shard \"$(printf '\xd9\xa1')/2\" is not K/N with 0 <= K < N" \
  classify -m "$MODEL" --shard $'\xd9\xa1/2' "$good"

# Folders: an unreadable one is an error record (exit 2), an empty one is said on stderr.
mkdir -p "$work/tree/locked" "$work/tree/ok" "$work/empty/sub"
cp "$good" "$work/tree/ok/a.bmp"
cp "$good" "$work/tree/locked/b.bmp"
chmod 000 "$work/tree/locked"
if ((EUID == 0)); then
  as_nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
  cp -r "$MODEL" "$work/model"
  m=$work/model
  chmod -R a+rX "$work"
  chmod 000 "$work/tree/locked"
else
  as_nobody=()
  m=$MODEL
fi
if command -v setpriv >/dev/null || ((EUID != 0)); then
  "${as_nobody[@]}" "$VIT" classify -m "$m" --format jsonl -r "$work/tree" >"$work/o" 2>"$work/e"; rc=$?
  check_eq "-r over an unreadable folder: exit 2" "$rc" 2
  check_eq "... an error record for the folder" "$(record_of "$work/o" "$work/tree/locked")" "cannot read directory: permission denied"
  check_eq "... the readable one still classified" "$(record_of "$work/o" "$work/tree/ok/a.bmp")" "ok"
  "${as_nobody[@]}" "$VIT" classify -m "$m" --format jsonl "$work/tree/locked" >"$work/o" 2>"$work/e"; rc=$?
  check_eq "an unreadable folder as the input: exit 2, its record" "$rc:$(record_of "$work/o" "$work/tree/locked")" \
    "2:cannot read directory: permission denied"
  cp "$good" "$work/list_locked.bmp"
  chmod 000 "$work/list_locked.bmp"
  echo "$good" >"$work/unreadable_list.txt"
  chmod 000 "$work/unreadable_list.txt"
  "${as_nobody[@]}" "$VIT" classify -m "$m" --files-from "$work/unreadable_list.txt" >"$work/o" 2>"$work/e"; rc=$?
  check_eq "an unreadable --files-from: exit 1, said" "$rc:$(cat "$work/e")" \
    "1:vit: error: $work/unreadable_list.txt: cannot open the list of paths: permission denied"
else
  echo "  skip unreadable-folder cases: cannot run as an unprivileged user"
fi
chmod -R u+rwX "$work/tree"
"$VIT" classify -m "$MODEL" --format jsonl "$work/empty" >"$work/o" 2>"$work/e"; rc=$?
check_eq "a folder with no images: exit 0, nothing on stdout, said on stderr" "$rc:$(lines "$work/o"):$(cat "$work/e")" \
  "0:0:vit: warning: $work/empty: no image files found (1 sub-folder not searched: not recursive)"
"$VIT" classify -m "$MODEL" --format jsonl -r "$work/empty" >"$work/o" 2>"$work/e"; rc=$?
check_eq "... with -r" "$rc:$(cat "$work/e")" "0:vit: warning: $work/empty: no image files found"

mkdir -p "$work/ff"
cp "$good" "$work/ff/a.bmp"
: >"$work/ff/b.png"
cp "$good" "$work/ff/c.bmp"
"$VIT" classify -m "$MODEL" --format jsonl --fail-fast -b 1 "$work/ff" >"$work/o" 2>"$work/e"; rc=$?
check_eq "--fail-fast names the file and the problem" "$rc:$(cat "$work/e")" \
  "2:vit: warning: stopping at the first bad input (--fail-fast): $work/ff/b.png: empty file (0 bytes)"
cp "$good" "$work/-dash.bmp"
out=$(cd "$work" && "$VIT" classify -m "$MODEL" --format jsonl good.bmp -- -dash.bmp 2>/dev/null | jq -r .path | tr '\n' ' ')
check_eq "'--' after an input: what follows is an input too" "$out" "good.bmp -dash.bmp "
out=$(cd "$work" && "$VIT" classify -m "$MODEL" --format jsonl -- -dash.bmp good.bmp 2>/dev/null | jq -r .path | tr '\n' ' ')
check_eq "'--' before every input" "$out" "-dash.bmp good.bmp "

echo "== class 10: shards in fixed blocks, whatever -b"
cp "$PRE/exif_o1.jpg" "$work/b.jpg"
for i in $(seq 1 300); do
  if ((i % 2)); then echo "$good"; else echo "$work/b.jpg"; fi
done | awk '{print $0 "\t" NR}' | cut -f1 >"$work/600.txt"
for i in $(seq 1 300); do echo "$good"; done >>"$work/600.txt"
total=$(lines "$work/600.txt")
# Records are told apart by their line number: the nth record of a run of the whole list is line n.
"$VIT" classify -m "$MODEL" --format jsonl --logits --shard 0/2 -b 8 --files-from "$work/600.txt" >"$work/s0.jsonl" 2>/dev/null
"$VIT" classify -m "$MODEL" --format jsonl --logits --shard 1/2 -b 16 --files-from "$work/600.txt" >"$work/s1.jsonl" 2>/dev/null
check_eq "--shard 0/2 -b 8 + --shard 1/2 -b 16: every input exactly once" "$(($(lines "$work/s0.jsonl") + $(lines "$work/s1.jsonl")))" "$total"
check_eq "... shard 0 is blocks 0 and 2 of 256" "$(lines "$work/s0.jsonl")" $((256 + total - 512))
"$VIT" classify -m "$MODEL" --format jsonl --logits --shard 1/2 -b 3 --files-from "$work/600.txt" >"$work/s1b3.jsonl" 2>/dev/null
check_eq "... shard 1 with -b 3 takes the same inputs" "$(lines "$work/s1b3.jsonl")" "$(lines "$work/s1.jsonl")"
# With equal -b, the shards' logits are those of the unsharded run, bit for bit, for a -b that divides nothing.
for b in 3 7; do
  for blk in 10 256; do
    full=$("$VIT" classify -m "$MODEL" --format jsonl --logits -b $b --shard-block $blk --files-from "$work/600.txt" 2>/dev/null | jq -c .logits)
    parts=$(for k in 0 1 2; do "$VIT" classify -m "$MODEL" --format jsonl --logits -b $b --shard-block $blk --shard $k/3 \
      --files-from "$work/600.txt" 2>/dev/null; done | jq -c .logits)
    check "-b $b --shard-block $blk: shards 0-2/3 hold the unsharded run's logits bit for bit" \
      test "$(sort <<<"$full")" == "$(sort <<<"$parts")"
  done
done

finish
