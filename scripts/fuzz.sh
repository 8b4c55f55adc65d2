#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (clang, -fsanitize=fuzzer,address,undefined) into build-fuzz/ and
# runs each for a bounded time on its committed seed corpus. Fails (non-zero) on any crash, uncaught
# exception, leak, timeout, out-of-memory or sanitizer report; the input that did it is left in
# build-fuzz/artifacts/ (reproduce: build-fuzz/fuzz_TARGET build-fuzz/artifacts/TARGET-crash-...).
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET|ci] [TARGET...]
#   ci (the default): each target for its share of CI's budget below; SECONDS: every target for that long.
#   Targets: safetensors config image gif hdr (default: all).
# Env: CXX (default clang++-14 or clang++), VIT_FUZZ_BUILD (default build-fuzz), VIT_FUZZ_JOBS (default 2),
#   VIT_CMAKE_ARGS (extra cmake arguments: CI's -DVIT_STRICT_WARNINGS=ON).
set -euo pipefail
cd "$(dirname "$0")/.."
# CI's budget, seconds per target, 330 s in all: the most to the decoders vit wrote itself (GIF, Radiance HDR:
# fuzzed directly, many more runs a second than through the whole image path); image covers them too, behind
# the probes, with OpenCV's decoders; the JSON and safetensors parsers stand on nlohmann-json and are small.
declare -A ci_budget=([gif]=90 [hdr]=90 [image]=75 [safetensors]=45 [config]=30)
mode=${1:-ci}
shift || true
if [[ $mode != ci && ! $mode =~ ^[0-9]+$ ]]; then
  echo "fuzz.sh: the first argument is SECONDS_PER_TARGET or ci, got '$mode'" >&2
  exit 1
fi
targets=("$@")
((${#targets[@]})) || targets=(safetensors config image gif hdr)
build=${VIT_FUZZ_BUILD:-build-fuzz}
cxx=${CXX:-$(command -v clang++-14 || command -v clang++ || true)}
if [[ -z $cxx ]]; then
  echo "fuzz.sh: clang++ not found (Debian: apt-get install clang-14 libclang-rt-14-dev llvm-14)" >&2
  exit 1
fi

# shellcheck disable=SC2086  # VIT_CMAKE_ARGS: extra cmake arguments, as in setup.sh (CI: -DVIT_STRICT_WARNINGS=ON)
cmake -S tests/fuzz -B "$build" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo ${VIT_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j"${VIT_FUZZ_JOBS:-2}"

symbolizer=$(command -v llvm-symbolizer-14 || command -v llvm-symbolizer || true)
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:allocator_may_return_null=0${symbolizer:+:external_symbolizer_path=$symbolizer}
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# The targets write each input to a scratch file (and OpenCV's EXR reader goes through a temporary file):
# on tmpfs that is ~10x faster than on disk.
if [[ -z ${TMPDIR:-} && -d /dev/shm && -w /dev/shm ]]; then export TMPDIR=/dev/shm; fi

failed=()
for t in "${targets[@]}"; do
  [[ -d tests/fuzz/corpus/$t ]] || { echo "fuzz.sh: unknown target $t" >&2; exit 1; }
  # New inputs go to the build folder's corpus (kept between runs); the committed seeds stay read-only.
  mkdir -p "$build/corpus/$t" "$build/artifacts"
  dict=()
  [[ -f tests/fuzz/$t.dict ]] && dict=(-dict="tests/fuzz/$t.dict")
  secs=$mode
  [[ $mode == ci ]] && secs=${ci_budget[$t]}
  echo "== fuzz_$t for ${secs}s"
  # -timeout: one input may take at most 20 s (a hang is a bug); -rss_limit_mb/-malloc_limit_mb: one
  # allocation or the process above 2 GB is a bug (the targets decode at most 4M pixels).
  if ! "$build/fuzz_$t" "$build/corpus/$t" "tests/fuzz/corpus/$t" "${dict[@]}" \
      -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -malloc_limit_mb=2048 -max_len=8192 \
      -artifact_prefix="$build/artifacts/$t-" -print_final_stats=1 </dev/null 2>"$build/fuzz_$t.log"; then
    failed+=("$t")
    tail -60 "$build/fuzz_$t.log" >&2
  fi
  grep -E "^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb)" "$build/fuzz_$t.log" || true
done
if ((${#failed[@]})); then
  echo "fuzz.sh: FAILED: ${failed[*]} (inputs in $build/artifacts/, logs in $build/fuzz_*.log)" >&2
  exit 1
fi
if [[ $mode == ci ]]; then
  echo "fuzz.sh: no crash, leak or sanitizer report in ${targets[*]} (CI budget: $(for t in "${targets[@]}"; do printf '%s %ss ' "$t" "${ci_budget[$t]}"; done))"
else
  echo "fuzz.sh: no crash, leak or sanitizer report in ${targets[*]} (${mode}s each)"
fi
