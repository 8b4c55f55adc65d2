#!/usr/bin/env bash
# CLI tests of `vit explain`: records, overlays (real PNGs at the input's size, decoded back), name clashes, no
# silent overwrite, error records and exit codes, refusals. Usage: test_explain.sh VIT_BINARY SOURCE_DIR
set -u
VIT=$(realpath "$1")
SRC=$(realpath "$2")
. "$SRC/tests/cli/lib.sh"
MODEL=$SRC/tests/fixtures/tiny_rgb_p16
PRE=$SRC/tests/fixtures/preprocess

# Width and height from a PNG's IHDR chunk (bytes 16..23, big-endian), after checking the signature.
png_size() {
    [[ "$(od -An -tx1 -N8 "$1" | tr -d ' \n')" == "89504e470d0a1a0a" ]] || { echo "not a PNG"; return; }
    od -An -tu1 -j16 -N8 "$1" | awk '{ printf "%dx%d", (($1*256+$2)*256+$3)*256+$4, (($5*256+$6)*256+$7)*256+$8 }'
}

mkdir -p "$work/a" "$work/b"
cp "$SRC/samples/chelsea.png" "$work/a/cat.png"          # 451x300
cp "$PRE/exif_o1.jpg" "$work/b/cat.jpg"                  # same stem, other folder
head -c 300 "$PRE/exif_o1.jpg" > "$work/a/truncated.jpg"

echo "== records and overlays"
out=$("$VIT" explain -m "$MODEL" -f jsonl -d "$work/out" "$work/a/cat.png" "$work/a/truncated.jpg" "$work/b/cat.jpg" 2>/dev/null); rc=$?
check_eq "a bad input -> exit 2" "$rc" 2
check_eq "one record per input, in order" "$(printf '%s\n' "$out" | jq -r '.path | sub(".*/"; "")' | tr '\n' ' ')" "cat.png truncated.jpg cat.jpg "
r1=$(printf '%s\n' "$out" | sed -n 1p)
check_eq "method" "$(jq -r .method <<<"$r1")" rollout
check_eq "grid" "$(jq -c .grid <<<"$r1")" "[2,2]"
check_eq "map: gh*gw floats in [0,1], max 1" "$(jq '.map | (length == 4) and all(.[]; . >= 0 and . <= 1) and (max == 1)' <<<"$r1")" true
check_eq "top_k" "$(jq '.top_k | length' <<<"$r1")" 5
check_eq "overlay path" "$(jq -r .overlay <<<"$r1")" "$work/out/cat.png"
check_eq "error record" "$(printf '%s\n' "$out" | sed -n 2p | jq -c 'keys')" '["error","path"]'
check_eq "name clash: -2 for the second stem" "$(printf '%s\n' "$out" | sed -n 3p | jq -r .overlay)" "$work/out/cat-2.png"
check_eq "overlay is a PNG at the input's size" "$(png_size "$work/out/cat.png")" 451x300
check_eq "overlay of the JPEG at its size" "$(png_size "$work/out/cat-2.png")" 24x16
check "overlays decode (vit classify reads them back)" "$VIT" classify -m "$MODEL" "$work/out/cat.png" "$work/out/cat-2.png" -f jsonl -o "$work/decoded.jsonl"
check_eq "no overlay for the bad input, no temporaries" "$(ls -A "$work/out" | tr '\n' ' ')" "cat-2.png cat.png "

echo "== never overwritten silently"
before=$(cksum < "$work/out/cat.png")
out=$("$VIT" explain -m "$MODEL" -f jsonl -d "$work/out" --side-by-side "$work/a/cat.png" 2>/dev/null); rc=$?
check_eq "existing overlay -> error record, exit 2" "$rc" 2
check_eq "error names the file" "$(jq -r .error <<<"$out")" "overlay $work/out/cat.png already exists (not replaced; --overwrite replaces it)"
check_eq "file untouched" "$(cksum < "$work/out/cat.png")" "$before"
"$VIT" explain -m "$MODEL" -d "$work/out" --side-by-side --overwrite "$work/a/cat.png" >/dev/null 2>&1; rc=$?
check_eq "--overwrite -> exit 0" "$rc" 0
check_eq "--side-by-side doubles the width" "$(png_size "$work/out/cat.png")" 902x300

echo "== text, methods, inputs"
out=$("$VIT" explain -m "$MODEL" --method attention --head 1 -d "$work/t" "$work/a/cat.png" 2>/dev/null)
check_eq "text: top-1 and the overlay" "$(printf '%s\n' "$out" | wc -l)" 3
check_eq "text: overlay line" "$(printf '%s\n' "$out" | sed -n 3p)" "  overlay: $work/t/cat.png"
out=$(printf '%s\0' "$work/a/cat.png" "$work/b/cat.jpg" | "$VIT" explain -m "$MODEL" -f json --files-from - -0 2>/dev/null); rc=$?
check_eq "--files-from -0, no --output-dir: exit 0" "$rc" 0
check_eq "json array, overlay null without --output-dir" "$(jq -c 'map(.overlay)' <<<"$out")" "[null,null]"
out=$("$VIT" explain -m "$MODEL" -f jsonl -d "$work/s" - < "$work/a/cat.png" 2>/dev/null)
check_eq "stdin -> stdin.png" "$(jq -r .overlay <<<"$out")" "$work/s/stdin.png"
out=$("$VIT" explain -m "$MODEL" -f jsonl -r "$work" --ext png 2>/dev/null | jq -r '.path | sub(".*/"; "")' | tr '\n' ' ')
check "-r with --ext walks sub-folders" grep -q "cat.png" <<<"$out"
a=$("$VIT" explain -m "$MODEL" -f jsonl --head-fusion max --discard-ratio 0.5 "$work/a/cat.png" 2>/dev/null | jq -c .map)
b=$("$VIT" explain -m "$MODEL" -f jsonl "$work/a/cat.png" 2>/dev/null | jq -c .map)
check "options change the map" test "$a" != "$b"

echo "== refusals"
err=$("$VIT" explain -m "$SRC/tests/fixtures/tiny_noqkvbias" "$work/a/cat.png" 2>&1 >/dev/null); rc=$?
check_eq "no class token -> exit 1" "$rc" 1
check_eq "no class token message" "$err" "vit: error: --method rollout follows the class token's attention, but this model has no class token (global_pool avg): no map to show"
err=$("$VIT" explain -m "$SRC/tests/fixtures/tiny_noqkvbias" --method attention "$work/a/cat.png" 2>&1 >/dev/null); rc=$?
check_eq "attention needs one too" "$rc" 1
err=$("$VIT" explain -m "$SRC/tests/fixtures/hub/timm_reg" "$work/a/cat.png" 2>&1 >/dev/null); rc=$?
check_eq "timm registers model without a class token (reg4_gap) -> exit 1" "$rc:$err" "1:vit: error: --method rollout follows the class token's attention, but this model has no class token (global_pool avg): no map to show"
err=$("$VIT" explain -m "$MODEL" --head 0 "$work/a/cat.png" 2>&1 >/dev/null); rc=$?
check_eq "--head without --method attention -> exit 1" "$rc:$err" "1:vit: error: --head picks one head of the last layer: it needs --method attention"
err=$("$VIT" explain -m "$MODEL" --method attention --head 9 "$work/a/cat.png" 2>&1 >/dev/null); rc=$?
check_eq "--head past the heads" "$rc:$err" "1:vit: error: --head 9 is past the model's 4 heads (0..3)"
: > "$work/file"
err=$("$VIT" explain -m "$MODEL" -d "$work/file" "$work/a/cat.png" 2>&1 >/dev/null); rc=$?
check_eq "--output-dir is a file -> exit 1" "$rc" 1
"$VIT" explain -m "$MODEL" -f csv "$work/a/cat.png" >/dev/null 2>&1; rc=$?
check_eq "csv is not an explain format" "$rc" 1

finish
