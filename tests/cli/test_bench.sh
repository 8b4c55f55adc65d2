#!/usr/bin/env bash
# CLI tests of `vit bench --ops`: every op of the timed passes is listed with its calls per pass, which follow from
# the architecture (tests/fixtures/tiny_rgb_p16: depth 2, so 1 patch embedding + 4 linears per block + the head =
# 10 linear calls, 2 attentions, 2 norms per block + the final one = 5 layer norms), a pass is never shorter than
# its linear layers, and without --ops nothing of it is printed. Usage: test_bench.sh VIT_BINARY SOURCE_DIR
set -u
VIT=$(realpath "$1")
SRC=$(realpath "$2")
. "$SRC/tests/cli/lib.sh"
MODEL="$SRC/tests/fixtures/tiny_rgb_p16"

echo "== --ops, JSON"
"$VIT" bench -m "$MODEL" -n 3 --warmup 0 --ops --format json >"$work/ops.json" 2>"$work/err"
check_eq "exit 0" "$?" 0
check_eq "nothing on stderr" "$(cat "$work/err")" ""
calls() { jq "[.ops[] | select(.op | startswith(\"$1\")) | .calls_per_pass] | add" "$work/ops.json"; }
check_eq "10 linear calls per pass" "$(calls linear)" 10
check_eq "2 attention calls per pass" "$(calls attention)" 2
check_eq "5 layer norm calls per pass" "$(calls "layer norm")" 5
check_eq "every op has a time >= 0" "$(jq '[.ops[] | select(.ms_per_pass < 0)] | length' "$work/ops.json")" 0
check_eq "the linear layers' time is the sum of theirs" \
  "$(jq '([.ops[] | select(.op | startswith("linear")) | .ms_per_pass] | add) - .linear_ms_per_pass | fabs < 1e-9' \
    "$work/ops.json")" true
check_eq "a pass takes at least its linear layers' time" "$(jq '.pass_over_linear_median >= 1' "$work/ops.json")" true

echo "== --ops, text"
out=$("$VIT" bench -m "$MODEL" -n 2 --warmup 0 --ops 2>"$work/err")
check_eq "exit 0" "$?" 0
check "a line per op, e.g. the qkv projection" grep -q "linear 32->96 fp32 \[5 rows\]" <<<"$out"
check "the ratio line" grep -q "^whole pass / its linear layers: [0-9.]*x (median over the passes)$" <<<"$out"

echo "== without --ops"
check_eq "no ops in the JSON" "$("$VIT" bench -m "$MODEL" -n 1 --warmup 0 --format json | jq 'has("ops")')" false
check "no ops in the text" bash -c "! '$VIT' bench -m '$MODEL' -n 1 --warmup 0 | grep -q 'linear layers'"
finish
