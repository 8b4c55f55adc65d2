#!/usr/bin/env bash
# CLI tests of `vit embed` and `vit fit`: record formats, the .npy matrix and its paths file, --normalize, error
# records; fit on a small ImageFolder recovers separable classes, writes a model directory that classify reads,
# is deterministic, and refuses bad folders. Usage: test_embed.sh VIT_BINARY SOURCE_DIR
set -u
VIT=$(realpath "$1")
SRC=$(realpath "$2")
. "$SRC/tests/cli/lib.sh"
MODEL=$SRC/tests/fixtures/hub/timm_vit
PRE=$SRC/tests/fixtures/preprocess

echo "== embed"
out=$("$VIT" embed -m "$MODEL" "$PRE/exif_o1.jpg" "$PRE/conv_rgb.bmp" 2>/dev/null); rc=$?
check_eq "exit 0" "$rc" 0
check_eq "one jsonl record per input" "$(printf '%s\n' "$out" | wc -l)" 2
dim=$("$VIT" info -m "$MODEL" --format json | jq '.model.embed_dim')
check_eq "embedding length = the head's input features" "$(printf '%s\n' "$out" | head -1 | jq '.embedding | length')" "$dim"
n=$("$VIT" embed -m "$MODEL" --normalize "$PRE/exif_o1.jpg" 2>/dev/null | jq '[.embedding[] | . * .] | add')
check "--normalize gives unit length ($n)" awk -v n="$n" 'BEGIN { exit !(n > 0.99999 && n < 1.00001) }'
echo "not an image" > "$work/bad.jpg"
out=$("$VIT" embed -m "$MODEL" "$PRE/exif_o1.jpg" "$work/bad.jpg" 2>/dev/null); rc=$?
check_eq "a bad input -> exit 2" "$rc" 2
check_eq "error record for it" "$(printf '%s\n' "$out" | tail -1 | jq -r 'has("error")')" true
"$VIT" embed -m "$MODEL" --format npy -o "$work/e.npy" "$PRE/exif_o1.jpg" "$work/bad.jpg" "$PRE/conv_rgb.bmp" 2>"$work/err"; rc=$?
check_eq "npy with a bad input -> exit 2" "$rc" 2
check_eq "npy: rows listed in FILE.paths.txt (errors have none)" "$(cat "$work/e.npy.paths.txt" | tr '\n' ' ')" "$PRE/exif_o1.jpg $PRE/conv_rgb.bmp "
check "npy: the error named on stderr" grep -q "bad.jpg" "$work/err"
check_eq "npy: magic" "$(head -c 6 "$work/e.npy" | tail -c 5)" "NUMPY"
check "npy: header holds shape (2, $dim)" grep -aq "'shape': ( *2, $dim)" "$work/e.npy"
hlen=$(od -An -tu2 -j8 -N2 "$work/e.npy" | tr -d ' ')
check_eq "npy: size = header + 2 x $dim float32" "$(stat -c %s "$work/e.npy")" $((10 + hlen + 2 * dim * 4))
if [[ -x /usr/bin/python3 ]] && /usr/bin/python3 -c "import numpy" 2>/dev/null; then
  shape=$(/usr/bin/python3 -c "import numpy; a = numpy.load('$work/e.npy'); print(a.shape, a.dtype)")
  check_eq "numpy.load reads it" "$shape" "(2, $dim) float32"
  first=$("$VIT" embed -m "$MODEL" "$PRE/exif_o1.jpg" 2>/dev/null | jq -c '.embedding[:3] | map(. * 10000 | round)')
  fromnpy=$(/usr/bin/python3 -c "import numpy; a = numpy.load('$work/e.npy'); print('[' + ','.join(str(round(float(v) * 10000)) for v in a[0, :3]) + ']')")
  check_eq "npy row 0 = the jsonl embedding" "$fromnpy" "$first"
fi
"$VIT" embed -m "$MODEL" "$PRE/exif_o1.jpg" > "$work/done.jsonl" 2>/dev/null
out=$("$VIT" embed -m "$MODEL" --skip-done "$work/done.jsonl" "$PRE/exif_o1.jpg" "$PRE/conv_rgb.bmp" 2>/dev/null)
check_eq "--skip-done: only the input without an embedding" "$(printf '%s\n' "$out" | jq -r .path)" "$PRE/conv_rgb.bmp"
"$VIT" embed -m "$MODEL" --format npy "$PRE/exif_o1.jpg" 2>"$work/err"; rc=$?
check_eq "npy without -o -> exit 1" "$rc" 1

echo "== fit"
# Two visually distinct classes: the photo fixtures and flat colour images made here.
for c in photos flat; do mkdir -p "$work/train/$c" "$work/val/$c"; done
for k in 1 2 3 4 5 6; do cp "$PRE/exif_o$k.jpg" "$work/train/photos/"; done
cp "$PRE/exif_o7.jpg" "$PRE/exif_o8.jpg" "$work/val/photos/"
for k in 1 2 3 4 5 6; do cp "$PRE/conv_gray.png" "$work/train/flat/g$k.png"; done
cp "$PRE/conv_gray16.png" "$work/val/flat/g.png"
"$VIT" fit -m "$MODEL" -o "$work/fit1" --val "$work/val" "$work/train" > "$work/report1" 2>"$work/err"; rc=$?
check_eq "fit exit 0" "$rc" 0
check "fit wrote config, head and report" test -f "$work/fit1/config.json" -a -f "$work/fit1/head.safetensors" -a -f "$work/fit1/fit_report.json"
check_eq "training classes recovered (train accuracy)" "$(jq .train_accuracy "$work/fit1/fit_report.json")" 1
check_eq "validation accuracy" "$(jq .val_accuracy "$work/fit1/fit_report.json")" 1
check_eq "classes from folder names" "$(jq -c .labels "$work/fit1/config.json")" '["flat","photos"]'
top=$("$VIT" classify -m "$work/fit1" -k 1 --format jsonl "$PRE/exif_o8.jpg" 2>/dev/null | jq -r '.top_k[0].label')
check_eq "classify with the fitted model" "$top" photos
"$VIT" fit -m "$MODEL" -o "$work/fit2" --val "$work/val" "$work/train" >/dev/null 2>&1
check "same folder, same seed: bit-identical head" cmp -s "$work/fit1/head.safetensors" "$work/fit2/head.safetensors"
"$VIT" fit -m "$MODEL" -o "$work/fit1" "$work/train" >/dev/null 2>"$work/err"; rc=$?
check_eq "existing output refused" "$rc" 1
mkdir -p "$work/one/a" "$work/empty/a" "$work/empty/b" "$work/single/a" "$work/single/b"
cp "$PRE/conv_gray.png" "$work/one/a/"
cp "$PRE/conv_gray.png" "$work/empty/a/x.png"; cp "$PRE/conv_gray.png" "$work/empty/a/y.png"
cp "$PRE/conv_gray.png" "$work/single/a/x.png"; cp "$PRE/conv_gray.png" "$work/single/a/y.png"; cp "$PRE/conv_gray.png" "$work/single/b/x.png"
"$VIT" fit -m "$MODEL" -o "$work/o1" "$work/one" 2>"$work/err"; check_eq "1 class refused" "$?" 1
check "  says it needs 2" grep -q "at least 2" "$work/err"
"$VIT" fit -m "$MODEL" -o "$work/o2" "$work/empty" 2>"$work/err"; check_eq "empty class refused" "$?" 1
check "  names the empty class" grep -q "empty/b: no images" "$work/err"
"$VIT" fit -m "$MODEL" -o "$work/o3" "$work/single" 2>"$work/err"; check_eq "1-image class refused" "$?" 1
check "  names it" grep -q "single/b: only 1 image" "$work/err"
check "nothing left behind by refused fits" bash -c "! ls -a '$work' | grep -q vit-tmp"
finish
