#!/usr/bin/env bash
# CLI tests of the built-in default model (models/deit-tiny-imagenet): used when no model is given, README
# quick-start output reproduced, VIT_DEFAULT_MODEL, the Fashion-MNIST model by directory, `vit classify` with no
# inputs on a terminal. Usage: test_default_model.sh VIT_BINARY SOURCE_DIR
set -u
VIT=$1
SRC=$2
. "$(dirname "$0")/lib.sh"
. "$SRC/tests/cli/readme_output.sh"

echo "== no --model: the built-in ImageNet model"
cfg=$("$VIT" info --format json 2>/dev/null | jq -r .config)
check_eq "default model is models/deit-tiny-imagenet" "$cfg" "$SRC/models/deit-tiny-imagenet/config.json"
top1() { "$VIT" classify --format jsonl -k 1 "$@" 2>/dev/null | jq -r '.top_k[0].label'; }
check_eq "a cat is a cat" "$(top1 "$SRC/samples/chelsea.png")" "Egyptian cat"
check_eq "an espresso is an espresso" "$(top1 "$SRC/samples/coffee.png")" "espresso"
for cmd in info bench eval; do
  "$VIT" $cmd --help 2>/dev/null | grep -q "default: the built-in deit-tiny-imagenet" && ok "$cmd --help names the default" \
    || bad "$cmd --help names the default"
done

echo "== README quick start output (labels exact, probabilities within 5e-4)"
readme_block "$SRC/README.md" "$work/readme.txt"
(cd "$SRC" && "$VIT" classify samples/) > "$work/run.txt" 2>"$work/run.err"; rc=$?
check_eq "quick start exits 0" "$rc" 0
check_eq "quick start writes nothing on stderr" "$(cat "$work/run.err")" ""
check "README block found" test -s "$work/readme.txt"
check "vit classify samples/ prints the README's output" same_output "$work/readme.txt" "$work/run.txt"

echo "== VIT_DEFAULT_MODEL and the Fashion-MNIST model"
check_eq "VIT_DEFAULT_MODEL overrides the default" \
  "$(VIT_DEFAULT_MODEL="$SRC/models/fashion-vit" "$VIT" classify --format jsonl -k 1 "$SRC/samples/fashion/bag.png" 2>/dev/null | jq -r '.top_k[0].label')" "Bag"
check_eq "--model models/fashion-vit" "$(top1 --model "$SRC/models/fashion-vit" "$SRC/samples/fashion/sneaker.png")" "Sneaker"

echo "== vit classify with no inputs"
# On a terminal (script(1) gives it a pseudo-terminal): usage on stderr, exit 1, no wait for input.
if command -v script >/dev/null; then
  timeout 20 script -qec "'$VIT' classify 2>'$work/usage'" /dev/null >/dev/null; rc=$?
  check_eq "no inputs on a terminal -> exit 1, no hang" "$rc" 1
  check "usage on stderr" grep -q "^Usage: vit classify \[OPTIONS\]" "$work/usage"
else
  bad "script(1) (bsdutils) is needed for the terminal test"
fi
"$VIT" classify </dev/null >"$work/o" 2>"$work/e"; rc=$?
check_eq "no inputs, stdin not a terminal -> exit 1" "$rc" 1
check "names the problem" grep -q "no inputs" "$work/e"
check_eq "nothing on stdout" "$(cat "$work/o")" ""
finish
