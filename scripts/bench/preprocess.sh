#!/usr/bin/env bash
# Image-side timings (decode, PIL-exact resize, preprocess), one thread, as a markdown table on stdout: the
# figures that used to be wall-clock asserts in tests/test_preprocess.cpp. Compare runs on the same machine.
# Usage: scripts/bench/preprocess.sh [REPS]   (default 20; builds build/tests/bench_preprocess if needed)
# Env: VIT_BUILD_DIR (default build).
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${VIT_BUILD_DIR:-build}
cmake --build "$build" --target bench_preprocess -j2 >&2
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p')" >&2
"$build/tests/bench_preprocess" "${1:-20}"
