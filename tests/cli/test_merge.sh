#!/usr/bin/env bash
# Tests of scripts/slurm/merge.sh on real vit shards: input order restored, missing / duplicate / foreign records
# named with the exit status, malformed parts refused, nothing written on failure.
# Usage: test_merge.sh VIT_BINARY SOURCE_DIR
set -u
VIT=$1
SRC=$2
. "$(dirname "$0")/lib.sh"
MERGE=$SRC/scripts/slurm/merge.sh

# 11 inputs (one unreadable, one path with a space and a quote), 3 shards of blocks of 2.
mkdir -p "$work/img"
i=0
for f in conv_rgb.bmp exif_o1.jpg conv_rgb.webp conv_gray.png conv_rgba.png; do
    cp "$PRE/$f" "$work/img/$i-$f"; cp "$PRE/$f" "$work/img/$((i + 5))-$f"; i=$((i + 1))
done
cp "$PRE/exif_o1.jpg" "$work/img/odd \"name\".jpg"
echo "not an image" >"$work/img/text.jpg"
find "$work/img" -type f | sort >"$work/list.txt"
printf '\n' >>"$work/list.txt"   # an empty line, skipped as vit skips it
run() { "$VIT" classify -m "$MODEL" --format jsonl -b 2 --shard-block 2 --files-from "$work/list.txt" "$@" 2>/dev/null; }
run >"$work/full.jsonl"
for k in 2 0 1; do run --shard "$k/3" >"$work/part-$k.jsonl"; done

echo "== a complete set of parts"
"$MERGE" -o "$work/merged.jsonl" "$work/list.txt" "$work"/part-{2,0,1}.jsonl 2>"$work/err"; rc=$?
check_eq "exit 0" "$rc" 0
check "merged = the unsharded run, byte for byte, in list order" cmp -s "$work/merged.jsonl" "$work/full.jsonl"
check "summary names the counts" grep -q "ok: 12 inputs, each with exactly one record (1 error records), from 3 parts" "$work/err"
out=$("$MERGE" "$work/list.txt" "$work"/part-*.jsonl 2>/dev/null)
check_eq "stdout without -o" "$out" "$(cat "$work/full.jsonl")"

echo "== a record missing"
head -n -1 "$work/part-1.jsonl" >"$work/short-1.jsonl"
lost=$(tail -n 1 "$work/part-1.jsonl" | jq -r .path)
"$MERGE" -o "$work/m2.jsonl" "$work/list.txt" "$work/part-0.jsonl" "$work/short-1.jsonl" "$work/part-2.jsonl" 2>"$work/err"; rc=$?
check_eq "exit 1" "$rc" 1
check "the missing input is named" grep -qF "missing: $(jq -Rn --arg p "$lost" '$p | tojson' -r) has no record" "$work/err"
check "nothing written" test ! -e "$work/m2.jsonl"

echo "== a record twice (an input done by two attempts)"
tail -n 1 "$work/part-2.jsonl" >"$work/again-2.jsonl"
twice=$(jq -r .path "$work/again-2.jsonl")
"$MERGE" "$work/list.txt" "$work"/part-*.jsonl "$work/again-2.jsonl" >"$work/out" 2>"$work/err"; rc=$?
check_eq "exit 1" "$rc" 1
check "the duplicate is named with both files" grep -qF "duplicate: $(jq -Rn --arg p "$twice" '$p | tojson' -r) has 2 records (in $work/part-2.jsonl, $work/again-2.jsonl), expected 1" "$work/err"
check "nothing on stdout" test ! -s "$work/out"

echo "== a record of a path not in the list, a path listed twice"
sed 1d "$work/list.txt" >"$work/list-short.txt"
"$MERGE" "$work/list-short.txt" "$work"/part-*.jsonl >/dev/null 2>"$work/err"; rc=$?
check_eq "exit 1" "$rc" 1
check "the foreign record is named" grep -q "not in the list: " "$work/err"
{ cat "$work/list.txt"; head -n 1 "$work/list.txt"; } >"$work/list-dup.txt"
"$MERGE" "$work/list-dup.txt" "$work"/part-*.jsonl >/dev/null 2>"$work/err"; rc=$?
check_eq "a path listed twice needs two records: exit 1" "$rc" 1
check "  named" grep -q "is listed 2 times but has 1 record(s)" "$work/err"

echo "== malformed input"
{ head -n 2 "$work/part-0.jsonl"; echo '{"path": "x", "top_k": [{"ind'; } >"$work/cut.jsonl"
"$MERGE" "$work/list.txt" "$work/cut.jsonl" >/dev/null 2>"$work/err"; rc=$?
check_eq "a cut line: exit 2" "$rc" 2
check "  names the part" grep -q "cut.jsonl: not a vit jsonl result" "$work/err"
echo '{"no_path": 1}' >"$work/np.jsonl"
"$MERGE" "$work/list.txt" "$work/np.jsonl" >/dev/null 2>"$work/err"; rc=$?
check_eq "a record without a path: exit 2" "$rc" 2
"$MERGE" "$work/list.txt" "$work/nonexistent.jsonl" >/dev/null 2>"$work/err"; rc=$?
check_eq "an unreadable part: exit 2" "$rc" 2
check "  named" grep -q "nonexistent.jsonl: cannot read this part" "$work/err"
"$MERGE" "$work/list.txt" >/dev/null 2>&1; rc=$?
check_eq "no parts: usage, exit 2" "$rc" 2

finish
