#!/usr/bin/env bash
# CLI tests of `vit bench --ops`: every op of the timed passes is listed with its calls per pass, which follow from
# the architecture (tests/fixtures/tiny_rgb_p16: depth 2, so 1 patch embedding + 4 linears per block + the head =
# 10 linear calls, 2 attentions, 2 norms per block + the final one = 5 layer norms), a pass is never shorter than
# its linear layers, and without --ops nothing of it is printed; the CPU ISA it reports, also with AVX-512 hidden.
# Usage: test_bench.sh VIT_BINARY SOURCE_DIR
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
echo "== the CPU ISA it ran, and an AVX2-only view of the CPU (scripts/bench/hide_avx512.c, run.py's AVX2-CPU rows)"
isa=$("$VIT" bench -m "$MODEL" -n 1 --warmup 0 --format json 2>/dev/null | jq -r .cpu_isa)
check "JSON cpu_isa names an instruction set ($isa)" grep -qE '^(SSE4.1|AVX|AVX2|AVX2 VNNI|AVX-512.*|generic x86-64)$' <<<"$isa"
avx2=$(ONEDNN_MAX_CPU_ISA=AVX2 "$VIT" bench -m "$MODEL" -n 1 --warmup 0 --format json 2>/dev/null | jq -r .cpu_isa)
if grep -qw avx2 /proc/cpuinfo; then
  check_eq "ONEDNN_MAX_CPU_ISA=AVX2 runs AVX2 code" "$avx2" AVX2
fi
# (not under ASan: its own SIGSEGV handler would take the CPUID faults)
if grep -qw avx512f /proc/cpuinfo && grep -qw cpuid_fault /proc/cpuinfo && command -v cc >/dev/null && ! under_asan; then
  cc -O2 -shared -fPIC "$SRC/scripts/bench/hide_avx512.c" -o "$work/hide_avx512.so"
  out=$(LD_AUDIT="$work/hide_avx512.so" "$VIT" bench -m "$MODEL" -n 1 --warmup 0 -p int8 2>&1)
  check "AVX-512 hidden: vit runs its AVX2 code, int8 with 7-bit weights" \
    grep -q "int8 (7-bit weights: no AVX-512 VNNI), .*, CPU ISA AVX2$" <<<"$out"
  out=$(LD_AUDIT="$work/hide_avx512.so" "$VIT" bench -m "$MODEL" -n 1 --warmup 0 -p bf16 2>&1)
  check_eq "AVX-512 hidden: bf16 refused, saying why" "$out" \
    "vit: error: precision bf16 is not supported by oneDNN on this CPU (AVX2; bf16 needs AVX-512)"
else
  echo "  (no AVX-512, no CPUID faulting or an ASan build here: the hide_avx512 checks do not apply)"
fi

finish
