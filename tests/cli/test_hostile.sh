#!/usr/bin/env bash
# CLI tests of hostile inputs: broken, strange and malicious images, weights and configs, each with the exact
# message vit gives. Image problems: one error record each, the batch goes on, exit 2. Model problems: exit 1,
# nothing on stdout, ONE line on stderr naming the file and the problem. Every hostile file is made here at
# test time with bash, printf, head, dd, gzip and od (no python). Usage: test_hostile.sh VIT_BINARY SOURCE_DIR
set -u
VIT=$1
SRC=$2
. "$(dirname "$0")/lib.sh"

# ---- byte helpers
# Bytes of a little-endian u64.
u64le() {
  local v=$1 i
  for i in 0 1 2 3 4 5 6 7; do printf "\\$(printf %03o $(((v >> (8 * i)) & 255)))"; done
}
# Big-endian CRC-32 of the output of a command: gzip's trailer holds it little-endian.
crc32_be() {
  local b
  b=($("$@" | gzip -c | tail -c 8 | head -c 4 | od -An -tx1))
  printf "\\x${b[3]}\\x${b[2]}\\x${b[1]}\\x${b[0]}"
}
# Byte offset of the first occurrence of a hex string (e.g. ffc0) in FILE, -1 if none.
find_hex() {
  local hex p
  hex=$(od -An -v -tx1 "$1" | tr -d ' \n')
  for p in $(printf '%s' "$hex" | grep -bo "$2" | cut -d: -f1); do
    ((p % 2 == 0)) && { echo $((p / 2)); return; }
  done
  echo -1
}
# Writes BYTES (a printf escape string) into FILE at OFFSET; overwrite FILE OFFSET writes stdin there.
patch() { printf "$3" | overwrite "$1" "$2"; }
overwrite() { dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }
# Inverts the byte of FILE at OFFSET.
flip() { patch "$1" "$2" "\\$(printf %03o $((255 - $(od -An -tu1 -j "$2" -N1 "$1"))))"; }
# N deterministic pseudo-random bytes (an LCG), the first one 0x00 so no image signature matches by chance.
noise() {
  local x=12345 i s='\000'
  for ((i = 1; i < $1; i++)); do
    x=$(((x * 1103515245 + 12345) & 0x7fffffff))
    s+=$(printf '\\%03o' $(((x >> 16) & 255)))
  done
  printf "$s"
}
# st FILE HEADER DATA_BYTES: a safetensors file with that JSON header and DATA_BYTES zero bytes of data.
st() {
  { u64le ${#2}; printf '%s' "$2"; head -c "$3" /dev/zero; } >"$1"
}
# A tensor header entry: NAME DTYPE SHAPE BEGIN END.
entry() { printf '"%s":{"dtype":"%s","shape":[%s],"data_offsets":[%s,%s]}' "$@"; }

# ---- hostile images, each next to a good one in one batch
d=$work/imgs
mkdir -p "$d/dir.jpg"
cp "$PRE/conv_rgb.bmp" "$d/good.bmp"
head -c 300 "$PRE/exif_o1.jpg" >"$d/truncated.jpg"
png_size=$(wc -c <"$PRE/conv_rgba.png")
head -c $((png_size / 2)) "$PRE/conv_rgba.png" >"$d/truncated.png"
noise 1000 >"$d/random.jpg"
noise 600 >"$d/random.png"
: >"$d/empty.png"
cp "$PRE/conv_rgba.png" "$d/bitflip.png"               # one flipped byte inside IDAT
idat=$(find_hex "$d/bitflip.png" 49444154)
flip "$d/bitflip.png" $((idat + 10))
cp "$PRE/conv_cmyk.jpg" "$d/cmyk.jpg"
cp "$PRE/conv_rgb16.png" "$d/rgb16.png"
cp "$PRE/conv_gray16.png" "$d/gray16.png"
# 1x1 RGBA PNG, 1x1 PPM, 3000x2 PGM.
echo iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg== | base64 -d >"$d/one.png"
printf 'P6\n1 1\n255\n\200\100\040' >"$d/one.ppm"
{ printf 'P5\n3000 2\n255\n'; head -c 6000 /dev/zero | tr '\0' '\200'; } >"$d/wide.pgm"
# Headers that claim 60000x60000 (3.6 gigapixels) over a tiny file: PNG IHDR with a valid CRC, JPEG SOF0.
ihdr_60k() { printf 'IHDR\000\000\352\140\000\000\352\140\010\002\000\000\000'; }
{ head -c 16 "$d/one.png"; ihdr_60k | tail -c 13; crc32_be ihdr_60k; tail -c +34 "$d/one.png"; } >"$d/huge.png"
cp "$PRE/exif_o1.jpg" "$d/huge.jpg"
sof=$(find_hex "$d/huge.jpg" ffc0)
patch "$d/huge.jpg" $((sof + 5)) '\352\140\352\140'
# An animated GIF: two 1x1 frames with a NETSCAPE2.0 loop extension, the first black, the second white.
printf 'GIF89a\001\000\001\000\200\000\000\000\000\000\377\377\377!\377\013NETSCAPE2.0\003\001\000\000\000!\371\004\000\012\000\000\000,\000\000\000\000\001\000\001\000\000\002\002D\001\000!\371\004\000\012\000\000\000,\000\000\000\000\001\000\001\000\000\002\002L\001\000;' >"$d/anim.gif"
# Corrupt EXIF: the IFD offset of exif_o6.jpg's APP1 points past the segment; an IFD entry is garbage; a WebP
# EXIF chunk with its IFD offset past the end.
exif=$(find_hex "$PRE/exif_o6.jpg" 457869660000)
cp "$PRE/exif_o6.jpg" "$d/exif_bad_offset.jpg"
patch "$d/exif_bad_offset.jpg" $((exif + 10)) '\377\377\377\360'
cp "$PRE/exif_o6.jpg" "$d/exif_bad_entry.jpg"
patch "$d/exif_bad_entry.jpg" $((exif + 16)) '\377\377\377\377\377\377\377\377\377\377\377\377'
cp "$PRE/exif_o6.webp" "$d/exif_bad.webp"
wexif=$(find_hex "$d/exif_bad.webp" 45584946)
patch "$d/exif_bad.webp" $((wexif + 12)) '\377\377\377\177'
# A JPEG whose entropy-coded data is damaged (header and EOI intact): libjpeg recovers, as in PIL.
cp "$PRE/exif_o1.jpg" "$d/corrupt_scan.jpg"
patch "$d/corrupt_scan.jpg" 600 '\022\064\126'
# A PNG with the ICC profile libpng calls a "known incorrect sRGB profile" (as in many photos): no libpng line.
cp "$PRE/conv_iccp_srgb.png" "$d/iccp.png"

echo "== hostile images: one record each, the batch goes on, exit 2"
names=(good.bmp truncated.jpg truncated.png random.jpg random.png empty.png dir.jpg bitflip.png cmyk.jpg rgb16.png
  gray16.png one.png one.ppm wide.pgm huge.png huge.jpg anim.gif exif_bad_offset.jpg exif_bad_entry.jpg exif_bad.webp
  corrupt_scan.jpg iccp.png missing.jpg)
for n in "${names[@]}"; do echo "$d/$n"; done >"$work/list.txt"
"$VIT" classify -m "$MODEL" --format jsonl -b 4 --files-from "$work/list.txt" >"$work/o" 2>"$work/e"; rc=$?
check_eq "exit 2 (some inputs failed)" "$rc" 2
check_eq "exactly one record per input" "$(wc -l <"$work/o")" "${#names[@]}"
check_eq "records in input order" "$(jq -r '.path | sub(".*/"; "")' "$work/o" | tr '\n' ' ')" "${names[*]} "
expect() { check_eq "$1 -> $2" "$(record_of "$work/o" "$d/$1")" "$2"; }
expect good.bmp "ok"
expect truncated.jpg "truncated JPEG data (no end-of-image marker)"
expect truncated.png "truncated PNG data (ends inside a chunk or before IEND)"
expect random.jpg "not an image (unrecognised or unsupported format)"
expect random.png "not an image (unrecognised or unsupported format)"
expect empty.png "empty file (0 bytes)"
expect dir.jpg "is a directory, not an image file"
expect bitflip.png "corrupt PNG data (CRC mismatch in chunk IDAT)"
expect cmyk.jpg "ok"
expect rgb16.png "ok"
expect gray16.png "ok"
expect one.png "ok"
expect one.ppm "ok"
expect wide.pgm "ok"
expect huge.png "image is 60000x60000 = 3600000000 pixels, over the limit of 100000000"
expect huge.jpg "image is 60000x60000 = 3600000000 pixels, over the limit of 100000000"
expect anim.gif "ok"
expect exif_bad_offset.jpg "ok"
expect exif_bad_entry.jpg "ok"
expect exif_bad.webp "ok"
expect corrupt_scan.jpg "ok"
expect iccp.png "ok"
expect missing.jpg "no such file"
check "no libpng/OpenCV noise on stderr" bash -c "! grep -Eq 'libpng|imdecode|OpenCV|ERROR' '$work/e'"
check_eq "stderr stays quiet" "$(wc -l <"$work/e")" 0

printf 'P6\n1 1\n255\n\000\000\000' >"$work/black.ppm"
printf 'P6\n1 1\n255\n\377\377\377' >"$work/white.ppm"
logits() { "$VIT" classify -m "$MODEL" --format jsonl --logits "$1" 2>/dev/null | jq -c .logits; }
check_eq "animated GIF: the first frame (black) is classified" "$(logits "$d/anim.gif")" "$(logits "$work/black.ppm")"
check "animated GIF: not the second frame (white)" test "$(logits "$d/anim.gif")" != "$(logits "$work/white.ppm")"
out=$("$VIT" classify -m "$MODEL" --format jsonl --max-pixels 5999 "$d/wide.pgm" "$d/one.png" 2>/dev/null); rc=$?
check_eq "--max-pixels is checked from the header" "$(printf '%s\n' "$out" | head -1 | jq -r .error)" \
  "image is 3000x2 = 6000 pixels, over the limit of 5999"
check_eq "--max-pixels: smaller images still classified, exit 2" "$(printf '%s\n' "$out" | tail -1 | jq -r '.top_k | length'):$rc" "5:2"

out=$("$VIT" classify -m "$MODEL" --format jsonl /dev/zero 2>/dev/null); rc=$?
check_eq "a device that never ends (/dev/zero) -> refused after its first bytes" "$(printf '%s\n' "$out" | jq -r .error):$rc" \
  "not an image (unrecognised or unsupported format):2"
out=$(timeout 60 "$VIT" classify -m "$MODEL" --format jsonl - </dev/zero 2>/dev/null); rc=$?
check_eq "an endless stdin (-) -> refused after its first bytes" "$(printf '%s\n' "$out" | jq -r .error):$rc" \
  "not an image (unrecognised or unsupported format):2"
# A JPEG signature followed by endless zeros on stdin: refused once past what a 1000-pixel image can need.
out=$({ printf '\377\330\377'; cat /dev/zero; } | timeout 60 "$VIT" classify -m "$MODEL" --format jsonl --max-pixels 1000 - 2>/dev/null)
check_eq "stdin (-) is read only up to the pixel limit's byte budget" "$(printf '%s\n' "$out" | jq -r .error | sed 's/file is [0-9]* bytes/file is N bytes/')" \
  "file is N bytes, more than an image of at most 1000 pixels needs (67140864)"
printf '\377\330\377' >"$work/sparse.jpg"
truncate -s 100M "$work/sparse.jpg"   # sparse: no disk used
out=$("$VIT" classify -m "$MODEL" --format jsonl --max-pixels 1000 "$work/sparse.jpg" 2>/dev/null)
check_eq "a file too big for the pixel limit is refused before reading" "$(printf '%s\n' "$out" | jq -r .error)" \
  "file is 104857600 bytes, more than an image of at most 1000 pixels needs (67140864)"

cp "$PRE/conv_rgb.bmp" "$work/"$'bad\377name.bmp'
out=$("$VIT" classify -m "$MODEL" --format jsonl "$work/"$'bad\377name.bmp' 2>/dev/null); rc=$?
check_eq "a file name that is not UTF-8: classified, U+FFFD in the record's path" \
  "$(printf '%s\n' "$out" | jq -r '(.path | sub(".*/"; "")) + " " + (.top_k | length | tostring)'):$rc" $'bad\xef\xbf\xbdname.bmp 5:0'

echo "== float formats: Radiance HDR and PFM"
h=$work/hdr
mkdir -p "$h"
printf '#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 1 +X 2\n\200\100\040\201\010\010\010\200' >"$h/good.hdr"
printf '#?RADIANCE\nEXPOSURE=1\n\n-Y 1 +X 2\n\200\100\040\201' >"$h/no_format.hdr"
printf '#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 2 +X 8\n\002\002\000\010\000\000' >"$h/bad_rle.hdr"
printf '#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 3 +X 2\n\200\100\040\201' >"$h/short.hdr"
printf '#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 60000 +X 60000\n' >"$h/huge.hdr"
printf 'Pf\n1 1\n-1.0\n\000\000\000\077' >"$h/good.pfm"
printf 'PF\n4  3\n-1.0\n' >"$h/bad.pfm"
# OpenCV 4.6's HDR reader leaks a file descriptor per malformed file: 200 of them under a limit of 32 open
# files must not starve the good image at the end (vit reads HDR itself).
for i in $(seq 1 100); do printf '%s\n' "$h/no_format.hdr" "$h/bad_rle.hdr"; done >"$work/hdr_list.txt"
printf '%s\n' "$h/short.hdr" "$h/huge.hdr" "$h/good.hdr" "$h/good.pfm" "$h/bad.pfm" "$d/good.bmp" >>"$work/hdr_list.txt"
(ulimit -n 32 && "$VIT" classify -m "$MODEL" --format jsonl --files-from "$work/hdr_list.txt" >"$work/o" 2>"$work/e"); rc=$?
check_eq "exit 2, one record per input" "$rc:$(wc -l <"$work/o")" "2:206"
check_eq "HDR without FORMAT line" "$(record_of "$work/o" "$h/no_format.hdr" | sort -u)" \
  "unsupported Radiance HDR data (no FORMAT=32-bit_rle_rgbe line)"
check_eq "HDR with a zero run length" "$(record_of "$work/o" "$h/bad_rle.hdr" | sort -u)" "corrupt Radiance HDR data (bad run length)"
check_eq "HDR shorter than its size" "$(record_of "$work/o" "$h/short.hdr")" "truncated Radiance HDR data"
check_eq "HDR claiming 60000x60000" "$(record_of "$work/o" "$h/huge.hdr")" \
  "image is 60000x60000 = 3600000000 pixels, over the limit of 100000000"
check_eq "valid HDR" "$(record_of "$work/o" "$h/good.hdr")" "ok"
check_eq "valid PFM" "$(record_of "$work/o" "$h/good.pfm")" "ok"
check_eq "PFM whose height OpenCV reads as 0" "$(record_of "$work/o" "$h/bad.pfm")" "corrupt PFM header"
check_eq "no descriptor leak: the last image still classified" "$(record_of "$work/o" "$d/good.bmp")" "ok"

echo "== unreadable file (run as nobody)"
cp "$PRE/conv_rgb.bmp" "$work/locked.bmp"
chmod 000 "$work/locked.bmp"
if ((EUID != 0)); then
  as_user=()
elif command -v setpriv >/dev/null; then
  as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
  cp -r "$MODEL" "$work/model"   # readable by nobody wherever the source tree lives
  chmod -R a+rX "$work/model"
  chmod 755 "$work"
else
  as_user=(none)
fi
if [[ ${as_user[0]:-} == none ]] || ! "${as_user[@]}" test -x "$VIT"; then
  echo "  skip unreadable-file case: cannot run $VIT as an unprivileged user"
else
  m=$MODEL
  ((EUID == 0)) && m=$work/model
  out=$("${as_user[@]}" "$VIT" classify -m "$m" --format jsonl "$work/locked.bmp" "$d/good.bmp" 2>/dev/null); rc=$?
  check_eq "unreadable file -> permission denied" "$(printf '%s\n' "$out" | head -1 | jq -r .error)" "permission denied"
  check_eq "the next input is still classified, exit 2" "$(printf '%s\n' "$out" | tail -1 | jq -r '.top_k | length'):$rc" "5:2"
fi

echo "== symlink loops in recursive mode"
l=$work/loop
mkdir -p "$l/sub"
cp "$PRE/conv_rgb.bmp" "$l/sub/x.bmp"
ln -s .. "$l/sub/up"                 # a directory loop
ln -s self.jpg "$l/self.jpg"         # a file symlink to itself
timeout 60 "$VIT" classify -m "$MODEL" --format jsonl -r "$l" >"$work/o" 2>"$work/e"; rc=$?
check "no hang (finished within 60 s)" test "$rc" -ne 124
check_eq "exit 2 (the self-link is an input that fails)" "$rc" 2
check_eq "the loop is entered once: one record per file" "$(jq -r '.path | sub(".*/loop/"; "")' "$work/o" | tr '\n' ' ')" "self.jpg sub/x.bmp "
check_eq "self-link -> error record" "$(record_of "$work/o" "$l/self.jpg")" "Too many levels of symbolic links"
check_eq "warning on stderr" "$(cat "$work/e")" "vit: warning: $l/sub/up: directory already visited (symlink loop?), skipped"

# ---- model problems: exit 1, nothing on stdout, one line on stderr
# fatal WHAT EXPECTED_STDERR VIT_ARGS...: vit classify on a good image with the args: exit 1, nothing on stdout,
# one line on stderr, the message expected; fatal_prefix compares only the start of the message (nlohmann's parse
# errors are long).
classify_fails() {
  local what=$1
  shift
  "$VIT" classify "$@" "$d/good.bmp" >"$work/o" 2>"$work/e"
  local rc=$?
  check_eq "$what: exit 1, one line on stderr, nothing on stdout" "$rc:$(lines "$work/e"):$(wc -c <"$work/o")" "1:1:0"
}
fatal() {
  local what=$1 want=$2
  shift 2
  classify_fails "$what" "$@"
  check_eq "$what: message" "$(cat "$work/e")" "$want"
}
fatal_prefix() {
  local what=$1 want=$2
  shift 2
  classify_fails "$what" "$@"
  check_eq "$what: message" "$(head -c ${#want} "$work/e")" "$want"
}

echo "== hostile safetensors"
s=$work/st
mkdir -p "$s"
w=$MODEL/model.safetensors
size=$(wc -c <"$w")
hl=$(od -An -tu8 -N8 "$w" | tr -d ' ')
cp "$w" "$s/past_eof.safetensors"
u64le "$size" | overwrite "$s/past_eof.safetensors" 0
fatal "header length past EOF" \
  "vit: error: $s/past_eof.safetensors: header length $size runs past the end of the $size-byte file (truncated?)" \
  -m "$MODEL" --weights "$s/past_eof.safetensors"
cp "$w" "$s/huge_header.safetensors"
u64le $((1 << 40)) | overwrite "$s/huge_header.safetensors" 0
fatal "header length over the limit" \
  "vit: error: $s/huge_header.safetensors: header length 1099511627776 exceeds the limit of 104857600 bytes (not a safetensors file?)" \
  -m "$MODEL" --weights "$s/huge_header.safetensors"
head -c 3 "$w" >"$s/short.safetensors"
fatal "3-byte file" "vit: error: $s/short.safetensors: not a safetensors file: 3 bytes, shorter than the 8-byte header length" \
  -m "$MODEL" --weights "$s/short.safetensors"
head -c $((size / 2)) "$w" >"$s/truncated.safetensors"
data=$((size / 2 - 8 - hl))
# The first tensor in name order (the reader's) that the cut removes.
cut=$(dd if="$w" bs=1 skip=8 count="$hl" status=none |
  jq -r --argjson n $data '. as $h | [keys[] | select(. != "__metadata__" and $h[.].data_offsets[1] > $n)][0] | "\(.) \($h[.].data_offsets[0]) \($h[.].data_offsets[1])"')
read -r cut_name cut_b cut_e <<<"$cut"
fatal "truncated data" \
  "vit: error: $s/truncated.safetensors: tensor \"$cut_name\": data_offsets [$cut_b, $cut_e] lie outside the $data-byte data section" \
  -m "$MODEL" --weights "$s/truncated.safetensors"
cp "$w" "$s/bad_json.safetensors"
patch "$s/bad_json.safetensors" 8 'x'
fatal_prefix "malformed header JSON" "vit: error: $s/bad_json.safetensors: malformed header JSON: [json.exception.parse_error.101]" \
  -m "$MODEL" --weights "$s/bad_json.safetensors"
st "$s/nested.safetensors" "$(printf '%.0s[' {1..5000})" 0
fatal "deeply nested header" "vit: error: $s/nested.safetensors: malformed header: nested deeper than 4 levels" \
  -m "$MODEL" --weights "$s/nested.safetensors"
st "$s/offsets.safetensors" "{$(entry a F32 3 0 400)}" 12
fatal "offsets out of range" "vit: error: $s/offsets.safetensors: tensor \"a\": data_offsets [0, 400] lie outside the 12-byte data section" \
  -m "$MODEL" --weights "$s/offsets.safetensors"
st "$s/overlap.safetensors" "{$(entry a F32 2 0 8),$(entry b F32 2 4 12)}" 12
fatal "overlapping offsets" "vit: error: $s/overlap.safetensors: tensors \"a\" and \"b\" overlap in the data section" \
  -m "$MODEL" --weights "$s/overlap.safetensors"
st "$s/overlap2.safetensors" "{$(entry a F32 4 0 16),$(entry b F32 0 4 4),$(entry c F32 1 8 12)}" 16
fatal "overlap behind an empty tensor" "vit: error: $s/overlap2.safetensors: tensors \"a\" and \"c\" overlap in the data section" \
  -m "$MODEL" --weights "$s/overlap2.safetensors"
st "$s/size.safetensors" "{$(entry a F32 3 0 8)}" 8
fatal "dtype/shape vs byte count" "vit: error: $s/size.safetensors: tensor \"a\": holds 8 bytes, but F32 [3] needs 12" \
  -m "$MODEL" --weights "$s/size.safetensors"
st "$s/dup.safetensors" "{$(entry a F32 1 0 4),$(entry a F32 1 4 8)}" 8
fatal "duplicate names" "vit: error: $s/dup.safetensors: tensor \"a\" appears more than once" \
  -m "$MODEL" --weights "$s/dup.safetensors"
st "$s/dtype.safetensors" "{$(entry a Q4 1 0 4)}" 4
fatal "unknown dtype" "vit: error: $s/dtype.safetensors: tensor \"a\": unknown dtype \"Q4\"" \
  -m "$MODEL" --weights "$s/dtype.safetensors"
st "$s/overflow.safetensors" "{$(entry a F32 4294967296,4294967296 0 0)}" 0
fatal "shape product overflow" "vit: error: $s/overflow.safetensors: tensor \"a\": shape [4294967296,4294967296] overflows" \
  -m "$MODEL" --weights "$s/overflow.safetensors"
# The model's own file with head.bias's dtype edited F32 -> I32 in place (same byte count).
cp "$w" "$s/i32.safetensors"
hb=$(find_hex "$s/i32.safetensors" "$(printf '"head.bias"' | od -An -v -tx1 | tr -d ' \n')")
rel=$(dd if="$s/i32.safetensors" bs=1 skip="$hb" count=80 status=none | grep -bo F32 | head -1 | cut -d: -f1)
patch "$s/i32.safetensors" $((hb + rel)) 'I'
fatal "dtype against the model" "vit: error: $s/i32.safetensors: tensor \"head.bias\" has dtype I32, expected F32, F16 or BF16" \
  -m "$MODEL" --weights "$s/i32.safetensors"
# NaN and Inf weights: a warning each, the run goes on (exit 0).
nan=$(dd if="$w" bs=1 skip=8 count="$hl" status=none | jq '."head.bias".data_offsets[0]')
inf=$(dd if="$w" bs=1 skip=8 count="$hl" status=none | jq '."norm.weight".data_offsets[0]')
cp "$w" "$s/nan.safetensors"
patch "$s/nan.safetensors" $((8 + hl + nan)) '\000\000\300\177'
patch "$s/nan.safetensors" $((8 + hl + inf)) '\000\000\200\177\000\000\200\377'
"$VIT" classify -m "$MODEL" --weights "$s/nan.safetensors" --format jsonl "$d/good.bmp" >"$work/o" 2>"$work/e"; rc=$?
check_eq "NaN/Inf weights: exit 0" "$rc" 0
check_eq "NaN/Inf weights: one record" "$(wc -l <"$work/o")" 1
check_eq "NaN/Inf weights: a warning per tensor" "$(cat "$work/e")" \
  "vit: warning: $s/nan.safetensors: tensor \"norm.weight\" has 2 NaN/Inf values
vit: warning: $s/nan.safetensors: tensor \"head.bias\" has 1 NaN/Inf value"

echo "== hostile configs"
c=$work/cfg
mkdir -p "$c"
cp "$MODEL/labels.txt" "$c/"
# config NAME SED_EXPR: the model's config edited with sed, weights pointing at the model's file.
config() {
  sed -e "$2" -e "s|\"model.safetensors\"|\"$w\"|" "$MODEL/config.json" >"$c/$1.json"
}
config missing '/"depth"/d'
fatal "missing key" "vit: error: $c/missing.json: model.depth is missing" --config "$c/missing.json"
config string 's/"depth": 2/"depth": "two"/'
fatal "wrong type (string)" "vit: error: $c/string.json: model.depth has the wrong type: got string \"two\"" --config "$c/string.json"
config float 's/"depth": 2/"depth": 2.5/'
fatal "wrong type (float for an integer)" "vit: error: $c/float.json: model.depth has the wrong type: got number 2.5" --config "$c/float.json"
config bool 's/"qkv_bias": true/"qkv_bias": 1/'
fatal "wrong type (number for a bool)" "vit: error: $c/bool.json: model.qkv_bias has the wrong type: got number 1" --config "$c/bool.json"
config range 's/"embed_dim": 32/"embed_dim": 4294967328/'
fatal "integer out of range" "vit: error: $c/range.json: model.embed_dim 4294967328 is out of range" --config "$c/range.json"
config overflow 's/"layer_norm_eps": 1e-06/"layer_norm_eps": 1e400/'
fatal_prefix "number overflow" "vit: error: $c/overflow.json: invalid JSON: [json.exception.out_of_range.406] number overflow" \
  --config "$c/overflow.json"
config heads 's/"num_heads": 4/"num_heads": 3/'
fatal "heads not dividing embed_dim" "vit: error: $c/heads.json: model.embed_dim 32 is not divisible by model.num_heads 3" \
  --config "$c/heads.json"
config patch 's/"patch_size": 16/"patch_size": 10/'
fatal "image not divisible by patch" "vit: error: $c/patch.json: model.image_size 32 is not divisible by model.patch_size 10" \
  --config "$c/patch.json"
config depth 's/"depth": 2/"depth": 2000000000/'
fatal "absurd depth" "vit: error: $c/depth.json: model.depth 2000000000 is too large (at most 1024)" --config "$c/depth.json"
config mlp 's/"mlp_dim": 64/"mlp_dim": 128/'
fatal "shape against the weights" \
  "vit: error: $w: tensor \"blocks.0.mlp.fc1.weight\" has shape [64, 32], expected [128, 32]" --config "$c/mlp.json"
config deeper 's/"depth": 2/"depth": 3/'
fatal "missing tensor" "vit: error: $w: tensor \"blocks.2.norm1.weight\" is missing (expected shape [32])" --config "$c/deeper.json"
config labels 's/"labels.txt"/"."/'
fatal "labels file is a directory" "vit: error: $c/labels.json: $c/.: is a directory, expected a labels file" --config "$c/labels.json"
head -c 100 "$MODEL/config.json" >"$c/cut.json"
fatal_prefix "truncated JSON" "vit: error: $c/cut.json: invalid JSON: [json.exception.parse_error.101]" --config "$c/cut.json"
printf '%.0s[' {1..100000} >"$c/nested.json"
fatal "deeply nested JSON" "vit: error: $c/nested.json: invalid JSON: nested deeper than 16 levels" --config "$c/nested.json"

finish
