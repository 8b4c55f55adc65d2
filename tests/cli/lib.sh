# Tiny assertion helpers for the CLI tests (sourced). Each test script runs with `set -u` and counts failures.
fails=0
ok() { printf '  ok   %s\n' "$1"; }
bad() { printf '  FAIL %s\n' "$1"; fails=$((fails + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
check_eq() { if [[ "$2" == "$3" ]]; then ok "$1"; else bad "$1: got [$2], expected [$3]"; fi; }
finish() { if ((fails)); then echo "$fails check(s) failed"; exit 1; fi; echo "all checks passed"; }
