#!/usr/bin/env bash
# CLI tests of where results go (issue 17, classes 2, 3 and 5): every write is checked (a full device, a closed
# stdout, a file size limit, a full filesystem: exit 1 with the reason, never a cut record); -o never clobbers (a
# symlink is written through, a FIFO or device written directly, the mode of a replaced file kept, an output that
# is also an input, the list or the --skip-done file refused, unique mkstemp temporaries, long names); paths
# round-trip byte for byte in every format (non-UTF-8 bytes, newlines, tabs, backslashes, quotes, commas), and
# --skip-done matches them. Usage: test_output.sh VIT_BINARY SOURCE_DIR
set -u
VIT=$1
SRC=$2
. "$(dirname "$0")/lib.sh"

for i in $(seq 1 40); do echo "$good"; done >"$work/list40.txt"

echo "== class 2: write failures are reported (exit 1), never silent"
for f in jsonl json csv tsv text; do
  "$VIT" classify -m "$MODEL" --format $f "$good" >/dev/full 2>"$work/e"; rc=$?
  check_eq "$f > /dev/full: exit 1, one line naming the reason" "$rc:$(lines "$work/e"):$(cat "$work/e")" \
    "1:1:vit: error: stdout: write error: No space left on device"
done
"$VIT" classify -m "$MODEL" --format jsonl --files-from "$work/list40.txt" >/dev/full 2>"$work/e"; rc=$?
check_eq "40 inputs > /dev/full: the first failed write stops the run" "$rc:$(lines "$work/e")" "1:1"
"$VIT" classify -m "$MODEL" --format jsonl "$good" >&- 2>"$work/e"; rc=$?
check_eq "closed stdout (>&-): exit 1 before any work" "$rc:$(cat "$work/e")" \
  "1:vit: error: stdout is closed: nowhere to write the results (give -o FILE)"
"$VIT" classify -m "$MODEL" --format jsonl "$good" -o "$work/closed.jsonl" >&- 2>"$work/e"; rc=$?
check_eq "closed stdout with -o: the file gets the record, exit 0" "$rc:$(jq -r .path "$work/closed.jsonl")" "0:$good"
"$VIT" classify -m "$MODEL" --format jsonl "$good" -o /dev/full 2>"$work/e"; rc=$?
check_eq "-o /dev/full (a device, written through): exit 1 with the reason" "$rc:$(cat "$work/e")" \
  "1:vit: error: /dev/full: write error: No space left on device"
(ulimit -f 1 && "$VIT" classify -m "$MODEL" --format jsonl --files-from "$work/list40.txt" -o "$work/big.jsonl" 2>"$work/e"); rc=$?
check_eq "-o over the file size limit (ulimit -f): exit 1, the reason" "$rc:$(cat "$work/e")" \
  "1:vit: error: $work/big.jsonl: write error: File too large"
check "... no output file, no temporary" bash -c "! ls -a '$work' | grep -Eq 'big.jsonl'"
(ulimit -f 1 && "$VIT" classify -m "$MODEL" --format jsonl --files-from "$work/list40.txt" >"$work/big_stdout.jsonl" 2>"$work/e"); rc=$?
check_eq "stdout over the file size limit: exit 1, the reason" "$rc:$(cat "$work/e")" \
  "1:vit: error: stdout: write error: File too large"
check "... every line written is a whole record" bash -c "head -c 1024 '$work/big_stdout.jsonl' | head -n -0 | grep -c . >/dev/null"
mkdir -p "$work/small"
if mount -t tmpfs -o size=8k tmpfs "$work/small" 2>/dev/null; then
  "$VIT" classify -m "$MODEL" --format jsonl --files-from "$work/list40.txt" -o "$work/small/out.jsonl" 2>"$work/e"; rc=$?
  check_eq "-o on a full filesystem: exit 1, the reason" "$rc:$(cat "$work/e")" \
    "1:vit: error: $work/small/out.jsonl: write error: No space left on device"
  check_eq "... nothing left on it" "$(ls -A "$work/small")" ""
  umount "$work/small"
else
  echo "  skip full-filesystem case: cannot mount a tmpfs here"
fi
mkdir -p "$work/ev/a" "$work/ev/b"
cp "$good" "$work/ev/a/"
cp "$good" "$work/ev/b/"
"$VIT" eval -m "$MODEL" "$work/ev" >/dev/full 2>"$work/e"; rc=$?
check_eq "eval > /dev/full: exit 1, the reason" "$rc:$(grep -c 'stdout: write error: No space left on device' "$work/e")" "1:1"
"$VIT" eval -m "$MODEL" "$work/ev" >&- 2>"$work/e"; rc=$?
check_eq "eval with a closed stdout: exit 1" "$rc:$(cat "$work/e")" "1:vit: error: stdout is closed: nowhere to write the report"

echo "== class 3: -o never clobbers"
echo old >"$work/real.jsonl"
ln -s real.jsonl "$work/link.jsonl"
"$VIT" classify -m "$MODEL" --format jsonl "$good" -o "$work/link.jsonl" 2>/dev/null
check "a symlink stays a symlink" test -L "$work/link.jsonl"
check_eq "... and the file it points to gets the records" "$(jq -r .path "$work/real.jsonl")" "$good"
mkdir -p "$work/elsewhere"
ln -s "$work/elsewhere/new.jsonl" "$work/dangling.jsonl"
"$VIT" classify -m "$MODEL" --format jsonl "$good" -o "$work/dangling.jsonl" 2>/dev/null
check "a dangling symlink: its target is created, the link kept" bash -c "test -L '$work/dangling.jsonl' && test -s '$work/elsewhere/new.jsonl'"
echo old >"$work/mode.jsonl"
chmod 640 "$work/mode.jsonl"
"$VIT" classify -m "$MODEL" --format jsonl "$good" -o "$work/mode.jsonl" 2>/dev/null
check_eq "the mode of a replaced file is kept" "$(stat -c %a "$work/mode.jsonl")" 640
chmod 604 "$work/mode.jsonl"
"$VIT" classify -m "$MODEL" --format csv "$good" -o "$work/mode.jsonl" 2>/dev/null
check_eq "... any mode (604)" "$(stat -c %a "$work/mode.jsonl")" 604
(umask 027 && "$VIT" classify -m "$MODEL" --format jsonl "$good" -o "$work/new.jsonl" 2>/dev/null)
check_eq "a new file: 0666 less the umask" "$(stat -c %a "$work/new.jsonl")" 640
mkfifo "$work/out.fifo"
cat "$work/out.fifo" >"$work/from_fifo.jsonl" &
track_pid $!
"$VIT" classify -m "$MODEL" --format jsonl "$good" "$good" -o "$work/out.fifo" 2>/dev/null; rc=$?
wait
check_eq "-o FIFO: written through, exit 0, two records" "$rc:$(lines "$work/from_fifo.jsonl")" "0:2"
check "... the FIFO is still a FIFO" test -p "$work/out.fifo"
"$VIT" classify -m "$MODEL" --format jsonl "$good" -o /dev/null 2>/dev/null; rc=$?
check_eq "-o /dev/null: exit 0, still a character device" "$rc:$(stat -c %F /dev/null)" "0:character special file"
"$VIT" classify -m "$MODEL" --format jsonl "$good" -o /dev/stdout >"$work/devstdout.jsonl" 2>/dev/null
check_eq "-o /dev/stdout writes to stdout" "$(jq -r .path "$work/devstdout.jsonl")" "$good"
mkdir -p "$work/odir"
"$VIT" classify -m "$MODEL" "$good" -o "$work/odir" >/dev/null 2>"$work/e"; rc=$?
check_eq "-o DIR: refused" "$rc:$(cat "$work/e")" "1:vit: error: $work/odir: --output is a directory"

# An output that is also an input, however it is named: refused, the input untouched.
cp "$good" "$work/in.bmp"
cp "$good" "$work/in_copy.bmp"
ln -s in.bmp "$work/alias.bmp"
ln "$work/in.bmp" "$work/hardlink.bmp"
refused() {
  local what=$1 want=$2
  shift 2
  "$VIT" classify -m "$MODEL" --format jsonl "$@" >"$work/o" 2>"$work/e"
  local rc=$?
  check_eq "$what: exit 1, one line" "$rc:$(lines "$work/e")" "1:1"
  check_eq "$what: message" "$(cat "$work/e")" "$want"
  check "$what: the input is untouched" cmp -s "$work/in.bmp" "$work/in_copy.bmp"
  check "$what: no temporary left" bash -c "! ls -a '$work' | grep -q vit-tmp"
}
refused "-o X with X an input" "vit: error: $work/in.bmp: is also the --output file (refusing to overwrite an input)" \
  "$work/in.bmp" -o "$work/in.bmp"
refused "-o X with X an input after another" "vit: error: $work/in.bmp: is also the --output file (refusing to overwrite an input)" \
  "$good" "$work/in.bmp" -o "$work/in.bmp"
refused "-o through a symlink to an input" "vit: error: $work/in.bmp: is also the --output file (refusing to overwrite an input)" \
  "$work/in.bmp" -o "$work/alias.bmp"
refused "-o a hard link of an input" "vit: error: $work/in.bmp: is also the --output file (refusing to overwrite an input)" \
  "$work/in.bmp" -o "$work/hardlink.bmp"
mkdir -p "$work/folder"
cp "$good" "$work/folder/a.bmp"
cp "$work/folder/a.bmp" "$work/folder_a_copy.bmp"
"$VIT" classify -m "$MODEL" --format jsonl "$work/folder" -o "$work/folder/a.bmp" >/dev/null 2>"$work/e"; rc=$?
check_eq "-o a file of an input folder: refused" "$rc:$(cat "$work/e")" \
  "1:vit: error: $work/folder/a.bmp: is also the --output file (refusing to overwrite an input)"
check "... untouched" cmp -s "$work/folder/a.bmp" "$work/folder_a_copy.bmp"
printf '%s\n' "$good" "$good" "$work/in.bmp" "$good" >"$work/list_in.txt"
"$VIT" classify -m "$MODEL" --format jsonl -b 1 --files-from "$work/list_in.txt" -o "$work/in.bmp" >/dev/null 2>"$work/e"; rc=$?
check_eq "-o a file named by a streamed list: refused when it comes" "$rc:$(tail -1 "$work/e")" \
  "1:vit: error: $work/in.bmp: is also the --output file (refusing to overwrite an input)"
check "... untouched" cmp -s "$work/in.bmp" "$work/in_copy.bmp"
cp "$work/list_in.txt" "$work/list_copy.txt"
"$VIT" classify -m "$MODEL" --format jsonl --files-from "$work/list_in.txt" -o "$work/list_in.txt" >/dev/null 2>"$work/e"; rc=$?
check_eq "-o the --files-from list: refused" "$rc:$(cat "$work/e")" \
  "1:vit: error: $work/list_in.txt: --output is also the --files-from list (it would be overwritten)"
check "... untouched" cmp -s "$work/list_in.txt" "$work/list_copy.txt"

echo "== --skip-done F -o F: refused, unless --append"
"$VIT" classify -m "$MODEL" --format jsonl -b 1 "$good" -o "$work/done.jsonl" 2>/dev/null
cp "$work/done.jsonl" "$work/done_copy.jsonl"
"$VIT" classify -m "$MODEL" --format jsonl --skip-done "$work/done.jsonl" "$good" "$work/in.bmp" -o "$work/done.jsonl" 2>"$work/e"; rc=$?
check_eq "refused" "$rc:$(cat "$work/e")" \
  "1:vit: error: $work/done.jsonl: --output is also the --skip-done file: its records would be lost (--append adds the new records after them)"
check "... the earlier records kept" cmp -s "$work/done.jsonl" "$work/done_copy.jsonl"
"$VIT" classify -m "$MODEL" --format jsonl -b 1 --skip-done "$work/done.jsonl" --append "$good" "$work/in.bmp" "$work/in_copy.bmp" \
  -o "$work/done.jsonl" 2>/dev/null; rc=$?
check_eq "--append: earlier records first, then only the new inputs, once each" \
  "$rc:$(jq -r '.path | sub(".*/"; "")' "$work/done.jsonl" | tr '\n' ' ')" "0:good.bmp in.bmp in_copy.bmp "
"$VIT" classify -m "$MODEL" --format jsonl -b 1 --skip-done "$work/done.jsonl" --append "$good" "$work/in.bmp" "$work/in_copy.bmp" \
  -o "$work/done.jsonl" 2>/dev/null
check_eq "--append again with nothing left: unchanged" "$(lines "$work/done.jsonl")" 3
"$VIT" classify -m "$MODEL" --format csv -k 1 "$good" -o "$work/a.csv" 2>/dev/null
"$VIT" classify -m "$MODEL" --format csv -k 1 --append "$good" -o "$work/a.csv" 2>/dev/null
check_eq "--append csv: one header, two rows" "$(grep -c '^path,' "$work/a.csv"):$(lines "$work/a.csv")" "1:3"
printf 'no newline at the end' >"$work/nonl.txt"
"$VIT" classify -m "$MODEL" --format text --append "$good" -o "$work/nonl.txt" 2>/dev/null
check_eq "--append after a last line without newline: a newline is added first" "$(head -2 "$work/nonl.txt")" "no newline at the end
$good"
"$VIT" classify -m "$MODEL" --format json --append "$good" -o "$work/a.json" 2>"$work/e"; rc=$?
check_eq "--append --format json: refused" "$rc:$(cat "$work/e")" \
  "1:vit: error: --append cannot add to a --format json array: use jsonl, csv, tsv or text"

echo "== temporaries: unique (mkstemp), short enough for any name"
slow() { for i in $(seq 1 "$1"); do echo "$good"; sleep 0.05; done; }
slow 30 | "$VIT" classify -m "$MODEL" --format jsonl -b 1 --files-from - -o "$work/shared.jsonl" 2>/dev/null &
p1=$!
track_pid $p1
slow 20 | "$VIT" classify -m "$MODEL" --format jsonl -b 1 --files-from - -o "$work/shared.jsonl" 2>/dev/null &
p2=$!
track_pid $p2
check "two runs on one -o: two distinct temporaries at once" \
  waits_for 20 bash -c "[ \$(ls -a '$work' | grep -c '^\.shared\.jsonl\.vit-tmp-') -eq 2 ]"
wait $p1 $p2
check "... the file is one run's whole output (every line a record, 20 or 30 of them)" \
  bash -c "jq -e '.top_k | length == 5' '$work/shared.jsonl' >/dev/null && [[ \$(wc -l <'$work/shared.jsonl') =~ ^(20|30)$ ]]"
for len in 251 255; do
  name=$(printf 'o%.0s' $(seq 1 $len))
  "$VIT" classify -m "$MODEL" --format jsonl "$good" -o "$work/$name" 2>"$work/e"; rc=$?
  check_eq "-o with a $len-byte name: exit 0, written" "$rc:$(jq -r .path "$work/$name" 2>/dev/null)" "0:$good"
done

echo "== class 5: paths round-trip byte for byte"
r=$work/names
mkdir -p "$r"
names=($'a\xff.bmp' $'a\xfe.bmp' $'nl\nname.bmp' $'tab\tname.bmp' 'back\slash.bmp' 'quote".bmp' 'comma,name.bmp'
  $'caf\xc3\xa9.bmp' $'cr\rname.bmp' $'lat1\xe9.bmp' $'over\xc0\xafl.bmp' $'sur\xed\xa0\x80.bmp')
for n in "${names[@]}"; do cp "$good" "$r/$n"; done
for n in "${names[@]}"; do printf '%s\0' "$r/$n"; done >"$work/names0.txt"
"$VIT" classify -m "$MODEL" --format jsonl -k 1 -0 --files-from "$work/names0.txt" >"$work/n.jsonl" 2>/dev/null; rc=$?
check_eq "all ${#names[@]} odd names classified" "$rc:$(jq -s 'map(select(.top_k)) | length' "$work/n.jsonl")" "0:${#names[@]}"
check_eq "jsonl: two non-UTF-8 names, two distinct paths" \
  "$(grep -c 'a\\udcff.bmp' "$work/n.jsonl"):$(grep -c 'a\\udcfe.bmp' "$work/n.jsonl")" "1:1"
check "jsonl: Latin-1 byte, overlong form and encoded surrogate escaped byte by byte" \
  grep -qF 'lat1\udce9.bmp' "$work/n.jsonl"
check "... overlong" grep -qF 'over\udcc0\udcafl.bmp' "$work/n.jsonl"
check "... surrogate" grep -qF 'sur\udced\udca0\udc80.bmp' "$work/n.jsonl"
check "jsonl: valid UTF-8 as is" grep -qF $'caf\xc3\xa9.bmp' "$work/n.jsonl"
jq -sj '.[2:9][] | .path + "\u0000"' "$work/n.jsonl" >"$work/jq_paths0"
for n in "${names[@]:2:7}"; do printf '%s\0' "$r/$n"; done >"$work/want_paths0"
check "jsonl: newline/tab/backslash/quote/comma/UTF-8/CR names read back exactly (jq)" cmp -s "$work/jq_paths0" "$work/want_paths0"
# Resume matches every name, the non-UTF-8 ones included: nothing is left to do.
"$VIT" classify -m "$MODEL" --format jsonl -0 --files-from "$work/names0.txt" --skip-done "$work/n.jsonl" >"$work/again.jsonl" 2>/dev/null; rc=$?
check_eq "--skip-done matches every odd name (nothing left)" "$rc:$(lines "$work/again.jsonl")" "0:0"
"$VIT" classify -m "$MODEL" --format jsonl -0 --files-from "$work/names0.txt" --skip-done "$work/n.jsonl" "$r/"$'a\xfd.bmp' >"$work/again.jsonl" 2>/dev/null
check_eq "... but not a third non-UTF-8 name" "$(lines "$work/again.jsonl")" 1
if command -v python3 >/dev/null; then
  check "Python reads the bytes back (os.fsencode of the json path)" python3 -c '
import json, os, sys
want = open(sys.argv[1], "rb").read().split(b"\0")[:-1]
got = [os.fsencode(json.loads(l)["path"]) for l in open(sys.argv[2], encoding="utf-8", errors="surrogatepass")]
sys.exit(0 if got == want else 1)' "$work/names0.txt" "$work/n.jsonl"
fi
# tsv: \\ \t \n \r escaped; unescaping (printf %b) gives the bytes back.
"$VIT" classify -m "$MODEL" --format tsv -k 1 -0 --files-from "$work/names0.txt" >"$work/n.tsv" 2>/dev/null
check_eq "tsv: one line per record (newlines escaped)" "$(lines "$work/n.tsv")" $((${#names[@]} + 1))
tail -n +2 "$work/n.tsv" | cut -f1 | while IFS= read -r f; do printf '%b\0' "$f"; done >"$work/tsv_paths0"
check "tsv: the escaped paths unescape to the exact bytes" cmp -s "$work/tsv_paths0" "$work/names0.txt"
# csv: raw bytes, RFC 4180 quotes; the first field of each record, unquoted, gives the bytes back.
"$VIT" classify -m "$MODEL" --format csv -k 1 -0 --files-from "$work/names0.txt" >"$work/n.csv" 2>/dev/null
check "csv: a quoted field for a name with a newline" grep -qF "\"$r/nl" "$work/n.csv"
check "csv: a quote doubled" grep -qF "\"$r/quote\"\".bmp\"" "$work/n.csv"
check "csv: non-UTF-8 bytes raw" grep -qaF "$r/"$'a\xff.bmp,' "$work/n.csv"
# text: the path line with \\ \n \t \r and control bytes escaped.
"$VIT" classify -m "$MODEL" --format text -k 1 -0 --files-from "$work/names0.txt" >"$work/n.txt" 2>/dev/null
check_eq "text: one path line per record" "$(grep -avc '^  ' "$work/n.txt")" "${#names[@]}"
grep -av '^  ' "$work/n.txt" | while IFS= read -r f; do printf '%b\0' "$f"; done >"$work/text_paths0"
check "text: the escaped paths unescape to the exact bytes" cmp -s "$work/text_paths0" "$work/names0.txt"

echo "== class 5: a NUL in a newline-separated list is an error, not a path"
printf '%s\n' "$good" "$good" >"$work/nul.txt"
printf 'abc\000def\n' >>"$work/nul.txt"
printf '%s\n' "$good" >>"$work/nul.txt"
"$VIT" classify -m "$MODEL" --format jsonl -b 1 --files-from "$work/nul.txt" >"$work/o" 2>"$work/e"; rc=$?
check_eq "exit 1, the list and line named" "$rc:$(cat "$work/e")" \
  "1:vit: error: $work/nul.txt: line 3 contains a NUL byte: a NUL-separated list (find -print0) needs -0"
check_eq "... the records before it written" "$(lines "$work/o")" 2
"$VIT" classify -m "$MODEL" --format jsonl -b 1 --files-from "$work/nul.txt" -o "$work/nul_out.jsonl" 2>/dev/null; rc=$?
check_eq "... and with -o, committed" "$rc:$(lines "$work/nul_out.jsonl")" "1:2"
(cd "$work" && find names -type f -print0 | "$VIT" classify -m "$MODEL" --format jsonl --files-from - >"$work/o" 2>"$work/e"); rc=$?
check_eq "a find -print0 list read without -0: exit 1, not a silent single record" "$rc:$(lines "$work/o"):$(grep -c 'line 1 contains a NUL byte' "$work/e")" "1:0:1"
printf '%s\n' "$good" | "$VIT" classify -m "$MODEL" --format jsonl -0 --files-from - >"$work/o" 2>/dev/null; rc=$?
check_eq "a newline list read with -0 (one entry, newline included): one error record" "$rc:$(jq -r .error "$work/o")" "2:no such file"

finish
