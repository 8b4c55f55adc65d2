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

echo "== embed: classify's input options"
a=$PRE/exif_o1.jpg b=$PRE/conv_rgb.bmp c=$PRE/exif_o2.jpg
"$VIT" embed -m "$MODEL" "$a" "$b" "$c" > "$work/all.jsonl" 2>/dev/null
out=$("$VIT" embed -m "$MODEL" --fail-fast "$a" "$work/bad.jpg" "$b" 2>"$work/err"); rc=$?
check_eq "--fail-fast: exit 2" "$rc" 2
check_eq "--fail-fast: stops after the bad input's record" "$(printf '%s\n' "$out" | jq -r 'if .error then "error" else "ok" end' | tr '\n' ' ')" "ok error "
check "--fail-fast: says why on stderr" grep -q "stopping at the first bad input (--fail-fast): $work/bad.jpg" "$work/err"
"$VIT" embed -m "$MODEL" --fail-fast --format npy -o "$work/ff.npy" "$a" "$work/bad.jpg" "$b" 2>/dev/null; rc=$?
check_eq "--fail-fast npy: exit 2, the rows before the stop kept" "$rc:$(cat "$work/ff.npy.paths.txt")" "2:$a"
check "--fail-fast npy: header holds shape (1, $dim)" grep -aq "'shape': ( *1, $dim)" "$work/ff.npy"
out=$("$VIT" embed -m "$MODEL" --max-pixels 383 "$a" "$b" 2>/dev/null); rc=$?
check_eq "--max-pixels: a 24x16 image over 383 pixels -> error record, exit 2" "$rc:$(printf '%s\n' "$out" | head -1 | jq -r .error)" \
  "2:image is 24x16 = 384 pixels, over the limit of 383"
check_eq "--max-pixels: the smaller image embedded" "$(printf '%s\n' "$out" | tail -1 | jq 'has("embedding")')" true
"$VIT" embed -m "$MODEL" --max-pixels 0 "$a" >/dev/null 2>&1; check_eq "--max-pixels 0 refused" "$?" 1
out=$("$VIT" embed -m "$MODEL" --decode-threads 3 "$a" "$b" "$c" 2>/dev/null)
check_eq "--decode-threads 3: the same embeddings" "$out" "$(cat "$work/all.jsonl")"
"$VIT" embed -m "$MODEL" --decode-threads -1 "$a" >/dev/null 2>&1; check_eq "--decode-threads -1 refused" "$?" 1
s0=$("$VIT" embed -m "$MODEL" --shard 0/2 --shard-block 1 "$a" "$b" "$c" 2>/dev/null | jq -r .path | tr '\n' ' ')
s1=$("$VIT" embed -m "$MODEL" --shard 1/2 --shard-block 1 "$a" "$b" "$c" 2>/dev/null | jq -r .path | tr '\n' ' ')
check_eq "--shard 0/2 --shard-block 1: inputs 0 and 2" "$s0" "$a $c "
check_eq "--shard 1/2 --shard-block 1: input 1" "$s1" "$b "
"$VIT" embed -m "$MODEL" --shard 2/2 "$a" >/dev/null 2>"$work/err"; rc=$?
check_eq "--shard 2/2 refused" "$rc:$(cat "$work/err")" '1:vit: error: --shard "2/2" is not K/N with 0 <= K < N'
"$VIT" embed -m "$MODEL" --shard-block 0 "$a" >/dev/null 2>&1; check_eq "--shard-block 0 refused" "$?" 1
out=$(printf '%s\n' "$a" "$b" | "$VIT" embed -m "$MODEL" --files-from - --batch-wait 0 2>/dev/null)
check_eq "--batch-wait 0 with a piped list: the same embeddings" "$out" "$(head -2 "$work/all.jsonl")"
"$VIT" embed -m "$MODEL" --batch-wait -5 "$a" >/dev/null 2>&1; check_eq "--batch-wait -5 refused" "$?" 1
"$VIT" embed -m "$MODEL" -o "$work/app.jsonl" "$a" 2>/dev/null
"$VIT" embed -m "$MODEL" -o "$work/app.jsonl" --append --skip-done "$work/app.jsonl" "$a" "$b" 2>/dev/null; rc=$?
check_eq "--append --skip-done: resumes where the first run stopped" "$rc:$(jq -r .path "$work/app.jsonl" | tr '\n' ' ')" "0:$a $b "
"$VIT" embed -m "$MODEL" -o "$work/app.csv" -f csv "$a" 2>/dev/null
"$VIT" embed -m "$MODEL" -o "$work/app.csv" -f csv --append "$b" 2>/dev/null
check_eq "--append csv: one header" "$(grep -c '^path,error' "$work/app.csv"):$(wc -l < "$work/app.csv")" "1:3"
"$VIT" embed -m "$MODEL" --append "$a" >/dev/null 2>"$work/err"; rc=$?
check_eq "--append without -o refused" "$rc:$(cat "$work/err")" "1:vit: error: --append needs -o FILE"
"$VIT" embed -m "$MODEL" --append -f npy -o "$work/e.npy" "$a" >/dev/null 2>"$work/err"; rc=$?
check_eq "--append npy refused" "$rc:$(cat "$work/err")" "1:vit: error: --append cannot add to a --format npy file: use jsonl or csv"
cp "$work/app.jsonl" "$work/keep.jsonl"
"$VIT" embed -m "$MODEL" -o "$work/app.jsonl" --files-from "$work/app.jsonl" >/dev/null 2>"$work/err"; rc=$?
check_eq "--output = --files-from refused, the file intact" "$rc:$(cmp -s "$work/app.jsonl" "$work/keep.jsonl" && echo same)" "1:same"
cp "$a" "$work/in.jpg"
"$VIT" embed -m "$MODEL" -o "$work/in.jpg" "$work/in.jpg" >/dev/null 2>"$work/err"; rc=$?
check_eq "--output that is also an input refused, the image intact" "$rc:$(cmp -s "$a" "$work/in.jpg" && echo same)" "1:same"
"$VIT" embed -m "$MODEL" - - < "$a" >/dev/null 2>"$work/err"; rc=$?
check_eq "'-' twice refused" "$rc:$(cat "$work/err")" "1:vit: error: '-' (an image on stdin) can be given only once"
# Interrupted while a producer is silent: what is finished is committed (jsonl records; npy rows, header patched).
sig_caught() {  # true once vit itself (not the forked shell) catches SIGTERM
  [[ $(readlink "/proc/$1/exe") == "$VIT" ]] && (((16#$(awk '/^SigCgt:/ {print $2}' "/proc/$1/status") >> 14) & 1))
}
for fmt in jsonl npy; do
  rm -f "$work/feed"; mkfifo "$work/feed"
  (echo "$a"; exec sleep 60) >"$work/feed" &
  feeder=$!
  track_pid $feeder
  "$VIT" embed -m "$MODEL" -b 4 -f $fmt --files-from "$work/feed" -o "$work/int.$fmt" 2>/dev/null &
  pid=$!
  track_pid $pid
  waits_for 30 sig_caught $pid
  # the partial batch runs after --batch-wait (250 ms): wait for its record (or row path) in the temporary
  rec=$work/.int.jsonl.vit-tmp-*
  [[ $fmt == npy ]] && rec=$work/.int.npy.paths.txt.vit-tmp-*
  waits_for 30 bash -c "compgen -G '$rec' >/dev/null && test -s $rec"
  kill -TERM $pid; wait $pid; rc=$?
  kill $feeder 2>/dev/null
  check_eq "$fmt: SIGTERM while the list is silent -> exit 1" "$rc" 1
  if [[ $fmt == jsonl ]]; then
    check_eq "  the finished record committed" "$(jq -r .path "$work/int.jsonl")" "$a"
  else
    check_eq "  the finished row committed" "$(cat "$work/int.npy.paths.txt")" "$a"
    check "  header holds shape (1, $dim)" grep -aq "'shape': ( *1, $dim)" "$work/int.npy"
  fi
done

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

echo "== fit: unreadable images, a moved or missing backbone, atomic --output"
cp -r "$work/train" "$work/train_bad"
echo "not an image" > "$work/train_bad/photos/broken.jpg"
"$VIT" fit -m "$MODEL" -o "$work/fit_bad" "$work/train_bad" >/dev/null 2>"$work/err"; rc=$?
check_eq "unreadable image: skipped, fit succeeds" "$rc" 0
check "  counted on stderr" grep -q "1 unreadable image(s) skipped (--verbose lists them)" "$work/err"
check_eq "  counted in fit_report.json" "$(jq .unreadable "$work/fit_bad/fit_report.json"):$(jq -c .counts "$work/fit_bad/fit_report.json")" '1:[6,6]'
"$VIT" fit -m "$MODEL" -o "$work/fit_bad_v" --verbose "$work/train_bad" >/dev/null 2>"$work/err"
check "  listed with --verbose" grep -q "^  $work/train_bad/photos/broken.jpg: not an image" "$work/err"
mkdir -p "$work/few/a" "$work/few/b"
cp "$PRE/conv_gray.png" "$work/few/a/x.png"; cp "$PRE/conv_gray.png" "$work/few/a/y.png"
cp "$PRE/exif_o1.jpg" "$work/few/b/x.jpg"; echo "not an image" > "$work/few/b/y.jpg"
"$VIT" fit -m "$MODEL" -o "$work/o4" "$work/few" 2>"$work/err"; rc=$?
check_eq "a class left with 1 readable image refused" "$rc" 1
check "  names it" grep -q "few/b: 1 readable image(s); a class needs at least 2" "$work/err"
# The backbone is stored relative to the fitted directory: moving both together keeps them working.
mkdir -p "$work/proj"
cp -r "$MODEL" "$work/proj/backbone"
"$VIT" fit -m "$work/proj/backbone" -o "$work/proj/fitted" "$work/train" >/dev/null 2>&1
check_eq "backbone stored relative to the fitted directory" "$(jq -r .backbone "$work/proj/fitted/config.json")" "../backbone"
want=$("$VIT" classify -m "$work/proj/fitted" -k 1 --format jsonl "$PRE/exif_o8.jpg" 2>/dev/null | jq -c '.top_k[0]')
mv "$work/proj" "$work/moved"
got=$(cd / && "$VIT" classify -m "$work/moved/fitted" -k 1 --format jsonl "$PRE/exif_o8.jpg" 2>/dev/null | jq -c '.top_k[0]')
check_eq "moved together (run from another directory): the same result" "$got" "$want"
rm -rf "$work/moved/backbone"
"$VIT" classify -m "$work/moved/fitted" "$PRE/exif_o8.jpg" >/dev/null 2>"$work/err"; rc=$?
check_eq "backbone gone: exit 1" "$rc" 1
check "  the error names the config and the missing backbone" \
  grep -q "$work/moved/fitted/config.json: backbone \"../backbone\": no model directory at $work/moved/fitted/../backbone" "$work/err"
# Written through a symlinked parent: the relative reference is computed from the real directory.
ln -s "$work" "$work/link"
"$VIT" fit -m "$MODEL" -o "$work/link/fit_abs" "$work/train" >/dev/null 2>&1
check_eq "through a symlinked parent: a working reference" \
  "$("$VIT" classify -m "$work/fit_abs" -k 1 --format jsonl "$PRE/exif_o8.jpg" 2>/dev/null | jq -r '.top_k[0].label')" photos
# --output is written atomically: a write error (file size limit 0) leaves neither the directory nor a temporary.
# (stderr goes through a pipe: the limit applies to files only)
msg=$( (ulimit -f 0; "$VIT" fit -m "$MODEL" -o "$work/fit_efbig" "$work/train" 2>&1 >/dev/null) ); rc=$?
check_eq "write error (ulimit -f 0): exit 1, named" "$rc:$msg" \
  "1:vit: error: $work/fit_efbig: write error on config.json (nothing written)"
check "  no output directory, no temporary" bash -c "test ! -e '$work/fit_efbig' && ! ls -a '$work' | grep -q vit-tmp"
finish
