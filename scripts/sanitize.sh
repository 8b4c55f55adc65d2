#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer build of the whole project and test suite (-DVIT_SANITIZE=ON,
# into build-asan/), with libstdc++'s own precondition checks on as well (-DVIT_GLIBCXX_ASSERTIONS=ON:
# -D_GLIBCXX_ASSERTIONS, bounds-checked vector/string/array operator[], front/back on empty containers, ...),
# then the CTest suite under it. Any sanitizer report or failed assertion fails the test that triggered it:
# the doctest suites abort, and the CLI tests see the vit binary's exit status change.
# Usage: scripts/sanitize.sh [CTEST_ARGS...]   e.g. scripts/sanitize.sh -L unit, scripts/sanitize.sh -E test_deit
# Env: VIT_ASAN_BUILD (default build-asan), VIT_JOBS (build jobs, default 2), VIT_CMAKE_ARGS (extra cmake arguments).
# Takes ~10 min on 2 cores from scratch (build ~5, tests ~5; test_deit's 1000 images are ~4.5 min of it).
# No suppressions are needed with Debian 12's GCC 12, libgomp and oneDNN 2.6 (uninstrumented system libraries:
# oneDNN's JIT code and OpenMP's thread pool produced no reports); add an LSAN_OPTIONS=suppressions=FILE here,
# with the reason for each entry, if a third-party false positive ever shows up.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${VIT_ASAN_BUILD:-build-asan}

# RelWithDebInfo: optimised like the real build (keeps the DeiT and CLI tests fast), line numbers in reports.
# shellcheck disable=SC2086  # VIT_CMAKE_ARGS: extra cmake arguments, as in setup.sh (CI: -DVIT_STRICT_WARNINGS=ON)
cmake -S . -B "$build" -DVIT_SANITIZE=ON -DVIT_GLIBCXX_ASSERTIONS=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo ${VIT_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j"${VIT_JOBS:-2}"

# The first report ends the process; leak checking at exit is on (ASan's default on Linux). exitcode=86: a
# report must not pass for vit's own exit status 1 (fatal) in the CLI tests that expect it.
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:exitcode=86:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=86
ctest --test-dir "$build" --output-on-failure "$@"
