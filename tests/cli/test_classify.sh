#!/usr/bin/env bash
# CLI tests of `vit classify`: formats, error records, exit codes, pipelines, sharding, resume, atomic output,
# progress bar. Usage: test_classify.sh VIT_BINARY SOURCE_DIR
set -u
VIT=$1
SRC=$2
. "$(dirname "$0")/lib.sh"

# A fixture folder with good images, a corrupt one, a zero-byte one, a non-image and a directory named like an image.
d=$work/imgs
mkdir -p "$d/sub" "$d/dir.jpg"
cp "$PRE/conv_rgb.bmp" "$d/a.bmp"
cp "$PRE/exif_o1.jpg" "$d/b.jpg"
cp "$PRE/conv_rgb.webp" "$d/c.webp"
head -c 300 "$PRE/exif_o1.jpg" > "$d/d_truncated.jpg"
: > "$d/e_empty.png"
echo "not an image" > "$d/f_text.jpg"
cp "$PRE/conv_gray.png" "$d/g.png"
echo "notes" > "$d/readme.txt"
cp "$PRE/conv_rgba.png" "$d/sub/h.png"

echo "== formats and exit codes"
out=$("$VIT" classify -m "$MODEL" --format jsonl "$d/a.bmp" "$d/b.jpg" 2>/dev/null); rc=$?
check_eq "all good -> exit 0" "$rc" 0
check_eq "one record per input" "$(printf '%s\n' "$out" | wc -l)" 2
check_eq "records in input order" "$(printf '%s\n' "$out" | jq -r .path | tr '\n' ' ')" "$d/a.bmp $d/b.jpg "
check_eq "top-5 by default" "$(printf '%s\n' "$out" | head -1 | jq '.top_k | length')" 5
check "probabilities sorted and in [0,1]" bash -c "printf '%s\n' '$out' | jq -e '.top_k | (map(.prob) | . == (sort | reverse)) and all(.[]; .prob >= 0 and .prob <= 1)' >/dev/null"
out=$("$VIT" classify -m "$MODEL" --format jsonl --logits -k 2 "$d/a.bmp" 2>/dev/null)
check_eq "--logits gives all classes" "$(printf '%s\n' "$out" | jq '.logits | length')" 10
check_eq "-k 2" "$(printf '%s\n' "$out" | jq '.top_k | length')" 2

out=$("$VIT" classify -m "$MODEL" --format jsonl "$d" 2>/dev/null); rc=$?
check_eq "folder with bad files -> exit 2" "$rc" 2
check_eq "folder listing: sorted, image extensions only, no recursion" "$(printf '%s\n' "$out" | jq -r '.path | sub(".*/"; "")' | tr '\n' ' ')" \
  "a.bmp b.jpg c.webp d_truncated.jpg e_empty.png f_text.jpg g.png "
check_eq "error records for the three bad files" "$(printf '%s\n' "$out" | jq -r 'select(.error) | .path | sub(".*/"; "")' | tr '\n' ' ')" \
  "d_truncated.jpg e_empty.png f_text.jpg "
check "error text names the problem" bash -c "printf '%s\n' '$out' | jq -r 'select(.path|endswith(\"e_empty.png\")) | .error' | grep -qi empty"
out=$("$VIT" classify -m "$MODEL" --format jsonl -r "$d" 2>/dev/null)
check_eq "-r descends, still sorted" "$(printf '%s\n' "$out" | jq -r '.path | sub(".*/imgs/"; "")' | tail -1)" "sub/h.png"
check_eq "--ext" "$("$VIT" classify -m "$MODEL" --format jsonl --ext png,bmp "$d" 2>/dev/null | jq -r '.path | sub(".*/"; "")' | tr '\n' ' ')" "a.bmp e_empty.png g.png "

for f in csv tsv; do
  out=$("$VIT" classify -m "$MODEL" --format $f -k 2 "$d/a.bmp" "$d/e_empty.png" 2>/dev/null)
  sep=','; [[ $f == tsv ]] && sep=$'\t'
  check_eq "$f header" "$(printf '%s\n' "$out" | head -1)" "path${sep}error${sep}label_1${sep}index_1${sep}prob_1${sep}label_2${sep}index_2${sep}prob_2${sep}warning"
  check_eq "$f rows" "$(printf '%s\n' "$out" | wc -l)" 3
done
out=$("$VIT" classify -m "$MODEL" --format json "$d/a.bmp" "$d/b.jpg" 2>/dev/null)
check_eq "json is one array" "$(printf '%s\n' "$out" | jq length)" 2
out=$("$VIT" classify -m "$MODEL" "$d/a.bmp" 2>/dev/null)
check "text format names the file" bash -c "printf '%s\n' '$out' | head -1 | grep -qF '$d/a.bmp'"

echo "== stdout carries results only"
"$VIT" classify -m "$MODEL" --format jsonl "$d" >"$work/o" 2>"$work/e"
check "every stdout line is a JSON record" bash -c "jq -e 'has(\"path\")' '$work/o' >/dev/null"

echo "== model problems are fatal (exit 1) with one message"
"$VIT" classify -m "$work/nope" "$d/a.bmp" >"$work/o" 2>"$work/e"; rc=$?
check_eq "missing model dir -> exit 1" "$rc" 1
check "message names the directory" grep -q "$work/nope: not a model directory" "$work/e"
check_eq "nothing on stdout" "$(wc -c <"$work/o")" 0
"$VIT" classify -m "$MODEL" --weights "$MODEL/config.json" "$d/a.bmp" >/dev/null 2>"$work/e"; rc=$?
check_eq "bad weights -> exit 1" "$rc" 1
"$VIT" classify -m "$MODEL" --format xml "$d/a.bmp" >/dev/null 2>&1; rc=$?
check_eq "bad option -> exit 1" "$rc" 1

echo "== pipeline: find -print0 | vit classify -0 --files-from -"
out=$(cd "$d" && find . -type f -print0 | sort -z | "$VIT" classify -m "$MODEL" -0 --files-from - --format jsonl 2>/dev/null); rc=$?
check_eq "exit 2 (bad inputs present)" "$rc" 2
check_eq "one record per listed file" "$(printf '%s\n' "$out" | wc -l)" "$(find "$d" -type f | wc -l)"
check_eq "order follows the list" "$(printf '%s\n' "$out" | jq -r .path | tr '\n' ' ')" "$(cd "$d" && find . -type f -print0 | sort -z | tr '\0' ' ')"
check_eq "good count (5 images; 3 bad files and readme.txt give error records)" "$(printf '%s\n' "$out" | jq -r 'select(.top_k) | .path' | wc -l)" 5
out=$("$VIT" classify -m "$MODEL" --format jsonl - < "$d/b.jpg" 2>/dev/null)
check_eq "'-' reads one image from stdin" "$(printf '%s\n' "$out" | jq -r '.path')" "-"
check "stdin image classified like the file" test "$(printf '%s\n' "$out" | jq -c .top_k)" == "$("$VIT" classify -m "$MODEL" --format jsonl "$d/b.jpg" 2>/dev/null | jq -c .top_k)"

echo "== --fail-fast"
"$VIT" classify -m "$MODEL" --format jsonl --fail-fast -b 1 "$d" >"$work/o" 2>/dev/null; rc=$?
check_eq "stops at the first bad input with exit 2" "$rc" 2
check_eq "records up to and including it" "$(jq -r '.path | sub(".*/"; "")' "$work/o" | tr '\n' ' ')" "a.bmp b.jpg c.webp d_truncated.jpg "

echo "== shards"
full=$("$VIT" classify -m "$MODEL" --format jsonl --logits -b 2 -r "$d" 2>/dev/null | jq -c . | sort)
shards=$(for k in 0 1 2; do "$VIT" classify -m "$MODEL" --format jsonl --logits -b 2 -r --shard $k/3 "$d" 2>/dev/null; done | jq -c . | sort)
check "shards 0/3 1/3 2/3 together equal the unsharded run exactly (logits included)" test "$full" == "$shards"
s0=$("$VIT" classify -m "$MODEL" --format jsonl -b 2 -r --shard 0/3 --shard-block 2 "$d" 2>/dev/null | jq -r '.path | sub(".*/imgs/"; "")' | tr '\n' ' ')
check_eq "shard 0/3 --shard-block 2 takes blocks 0 and 3 (of 2 inputs each)" "$s0" "a.bmp b.jpg g.png sub/h.png "
"$VIT" classify -m "$MODEL" --shard 3/3 "$d" >/dev/null 2>&1; rc=$?
check_eq "bad --shard -> exit 1" "$rc" 1

echo "== --skip-done resumes"
# Exact equality needs equal batches: -b 1 (a resumed run batches the remaining inputs differently).
"$VIT" classify -m "$MODEL" --format jsonl -b 1 "$d/a.bmp" "$d/b.jpg" >"$work/done.jsonl" 2>/dev/null
out=$("$VIT" classify -m "$MODEL" --format jsonl -b 1 --skip-done "$work/done.jsonl" "$d/a.bmp" "$d/b.jpg" "$d/c.webp" "$d/g.png" 2>/dev/null)
check_eq "only the remaining inputs" "$(printf '%s\n' "$out" | jq -r '.path | sub(".*/"; "")' | tr '\n' ' ')" "c.webp g.png "
both=$(cat "$work/done.jsonl"; printf '%s\n' "$out")
check "first run + resume = one full run" test "$(printf '%s\n' "$both" | jq -c . | sort)" == \
  "$("$VIT" classify -m "$MODEL" --format jsonl -b 1 "$d/a.bmp" "$d/b.jpg" "$d/c.webp" "$d/g.png" 2>/dev/null | jq -c . | sort)"

echo "== --output is atomic"
# The inputs arrive slowly through a pipe, so the run is surely mid-way when it is killed, however fast the machine.
slow_feed() { for i in $(seq 1 400); do echo "$d/b.jpg"; sleep 0.05; done; }
# Waits until the run's temporary output holds a record (at most ~20 s).
wait_for_tmp() { for i in $(seq 1 200); do [ -n "$(find "$work" -maxdepth 1 -name '.out.jsonl.vit-tmp-*' -size +0 2>/dev/null)" ] && return 0; sleep 0.1; done; return 1; }
for i in $(seq 1 3000); do echo "$d/b.jpg"; done > "$work/many.txt"
slow_feed | "$VIT" classify -m "$MODEL" --format jsonl -b 1 --files-from - -o "$work/out.jsonl" 2>/dev/null &
pid=$!
check "a record reaches the temporary output while the run goes on" wait_for_tmp
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
check "SIGKILL mid-run leaves no output file" test ! -e "$work/out.jsonl"
rm -f "$work"/.out.jsonl.vit-tmp-*
slow_feed | "$VIT" classify -m "$MODEL" --format jsonl -b 1 --files-from - -o "$work/out.jsonl" 2>/dev/null &
pid=$!
wait_for_tmp
kill -TERM $pid; wait $pid; rc=$?
check "SIGTERM mid-run commits what is done" test -s "$work/out.jsonl"
check "every line a complete record" bash -c "jq -e '.top_k | length == 5' '$work/out.jsonl' >/dev/null"
check "interrupted run reported as not complete (exit != 0)" test "$rc" -ne 0
check "no temporary left behind" bash -c "! ls -a '$work' | grep -q vit-tmp"
# SIGTERM while the third input of a batch of 4 is awaited (--batch-wait 0: whole batches from a pipe): the run
# still reads the batch's third and fourth inputs, arriving 0.2 s after the signal, runs the batch whole and stops
# before the next one, so the results hold whole batches and a resume batches like an uninterrupted run.
mkfifo "$work/list.fifo"
"$VIT" classify -m "$MODEL" --format jsonl -b 4 --batch-wait 0 --files-from "$work/list.fifo" -o "$work/blk.jsonl" 2>/dev/null &
pid=$!
exec 3<>"$work/list.fifo"   # read-write: never blocks, even when vit died before opening it
printf '%s\n' "$d/a.bmp" "$d/b.jpg" >&3
blk_tmp() { [[ -n $(find "$work" -maxdepth 1 -name '.blk.jsonl.vit-tmp-*' 2>/dev/null) ]]; }
waits_for 30 blk_tmp   # the temporary output exists: vit's signal handlers are in place
sleep 1
kill -TERM $pid
sleep 0.2
for i in $(seq 1 10); do echo "$d/g.png"; done >&3
exec 3>&-
wait $pid; rc=$?
check_eq "SIGTERM inside a batch: the batch is finished, the next not started" "$(wc -l <"$work/blk.jsonl")" 4
check_eq "  and the run says it was interrupted (exit 1)" "$rc" 1
# A producer that stays silent after the signal: the batch is cut to what arrived, within a second.
rm -f "$work/list.fifo"
mkfifo "$work/list.fifo"
"$VIT" classify -m "$MODEL" --format jsonl -b 4 --batch-wait 0 --files-from "$work/list.fifo" -o "$work/blk.jsonl" 2>/dev/null &
pid=$!
exec 3<>"$work/list.fifo"
printf '%s\n' "$d/a.bmp" "$d/b.jpg" >&3
waits_for 30 blk_tmp   # the temporary output exists: vit's signal handlers are in place
sleep 1
t0=$(date +%s.%N)
kill -TERM $pid
wait $pid; rc=$?
took=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
exec 3>&-
check_eq "SIGTERM inside a batch whose producer is silent: the 2 inputs that arrived are written" "$(wc -l <"$work/blk.jsonl")" 2
check "  within 1.5 s (took $took s)" awk "BEGIN {exit !($took < 1.5)}"
check_eq "  exit 1" "$rc" 1
# SIGTERM in the middle of a run over a folder: whole batches are kept, and the resume (--skip-done) writes the
# rest with the logits of an uninterrupted run, bit for bit (DeiT-tiny, ~20 ms an image: surely mid-run).
big=$SRC/models/deit-tiny-imagenet
mkdir -p "$work/many"
i=0
for r in $(seq 1 15); do
  for f in "$PRE"/conv_rgb.bmp "$PRE"/exif_o1.jpg "$PRE"/conv_rgb.webp "$PRE"/conv_gray.png "$PRE"/conv_rgba.png \
    "$SRC"/samples/chelsea.png "$SRC"/samples/coffee.png "$SRC"/samples/rocket.jpg; do
    i=$((i + 1))
    cp "$f" "$work/many/$(printf '%03d' $i).${f##*.}"
  done
done
run_many() { "$VIT" classify -m "$big" --format jsonl --logits -b 8 -t 1 "$work/many" "$@" 2>/dev/null; }
run_many -o "$work/full.jsonl"
"$VIT" classify -m "$big" --format jsonl --logits -b 8 -t 1 "$work/many" -o "$work/part1.jsonl" 2>/dev/null &
pid=$!
track_pid $pid
for _ in $(seq 1 300); do [[ -n $(find "$work" -maxdepth 1 -name '.part1.jsonl.vit-tmp-*' -size +0 2>/dev/null) ]] && break; sleep 0.05; done
kill -TERM $pid; wait $pid; rc=$?
kept=$(wc -l <"$work/part1.jsonl")
check_eq "SIGTERM mid-folder: exit 1" "$rc" 1
check "  whole batches of 8 kept ($kept of $i records)" test $((kept % 8)) -eq 0 -a "$kept" -gt 0 -a "$kept" -lt "$i"
run_many --skip-done "$work/part1.jsonl" -o "$work/part2.jsonl"
check "  first run + resume = the uninterrupted run, byte for byte" cmp <(cat "$work/part1.jsonl" "$work/part2.jsonl") "$work/full.jsonl"
"$VIT" classify -m "$MODEL" --format jsonl "$d/a.bmp" -o "$work/one.jsonl" 2>/dev/null
check_eq "--output holds the records" "$(jq -r .path "$work/one.jsonl")" "$d/a.bmp"

echo "== progress bar only on a terminal"
script -qec "'$VIT' classify -m '$MODEL' --format jsonl -b 1 --files-from '$work/many.txt' -o '$work/p.jsonl'" /dev/null >"$work/tty.txt" 2>&1
check "progress bar under a pseudo-terminal" grep -q "img/s" "$work/tty.txt"
"$VIT" classify -m "$MODEL" --format jsonl "$d/a.bmp" "$d/b.jpg" >/dev/null 2>"$work/e"
check "no progress bar when stderr is not a terminal" bash -c "! grep -q 'img/s' '$work/e'"
"$VIT" classify -m "$MODEL" --format jsonl --progress "$d/a.bmp" >/dev/null 2>"$work/e"
check "--progress forces it" grep -q "img/s" "$work/e"
script -qec "'$VIT' classify -m '$MODEL' --no-progress --format jsonl '$d/a.bmp'" /dev/null >"$work/tty.txt" 2>&1
check "--no-progress suppresses it" bash -c "! grep -q 'img/s' '$work/tty.txt'"

finish
