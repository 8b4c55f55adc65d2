# Shared setup and assertion helpers of the CLI tests (sourced as `. "$SRC/tests/cli/lib.sh"` after VIT and SRC
# are set from the script's two arguments: VIT_BINARY SOURCE_DIR; a script without a vit binary leaves VIT unset).
# Each test script runs with `set -u`, counts failures and ends with `finish`.
[[ -n ${VIT:-} ]] && VIT=$(realpath "$VIT")
SRC=$(realpath "$SRC")
MODEL=$SRC/tests/fixtures/tiny_rgb_p16        # a 32x32 RGB ViT with ten classes: fast
PRE=$SRC/tests/fixtures/preprocess            # small images of every format

# The one temp-dir helper: $work, removed however the script ends (permissions restored first, so files a test
# locked away go too), after stopping every background process registered with track_pid.
work=$(mktemp -d "${TMPDIR:-/tmp}/vit-cli.XXXXXX")
tracked_pids=()
track_pid() { tracked_pids+=("$1"); }
cleanup() {
  local p
  for p in "${tracked_pids[@]}"; do kill -9 "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  chmod -R u+rwX "$work" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
good=$work/good.bmp   # a small valid image of the tests' own, which they may lock away, rename or list
cp "$PRE/conv_rgb.bmp" "$good"

fails=0
ok() { printf '  ok   %s\n' "$1"; }
bad() { printf '  FAIL %s\n' "$1"; fails=$((fails + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
check_eq() { if [[ "$2" == "$3" ]]; then ok "$1"; else bad "$1: got [$2], expected [$3]"; fi; }
finish() { if ((fails)); then echo "$fails check(s) failed"; exit 1; fi; echo "all checks passed"; }

# lines FILE: its line count, 0 when there is no FILE.
lines() { if [[ -e $1 ]]; then wc -l <"$1" | tr -d ' '; else echo 0; fi; }

# The record of PATH in a jsonl result: its error text, or "ok" when it was classified.
record_of() { jq -r --arg p "$2" 'select(.path == $p) | if .error then .error else (if .top_k then "ok" else "?" end) end' "$1"; }

# True when vit is built with AddressSanitizer (scripts/sanitize.sh): its shadow memory rules out `ulimit -v`
# and its quarantine makes peak RSS meaningless.
under_asan() { ldd "$VIT" 2>/dev/null | grep -q libasan || nm -D "$VIT" 2>/dev/null | grep -q __asan_init; }

# waits_for SECONDS COMMAND...: polls COMMAND every 0.05 s until it succeeds; false after SECONDS of wall time
# (counted by the clock, not by polls: each poll forks, and on a loaded machine 20 polls took far more than a second).
waits_for() {
  local end=$((SECONDS + $1))
  shift
  while ((SECONDS < end)); do "$@" && return 0; sleep 0.05; done
  "$@"
}

# True once process PID catches SIGTERM (bit 15 of SigCgt in /proc/PID/status).
# The process must be vit itself (the forked shell, before exec, catches it too: bash with an EXIT trap).
handles_term() {
  local m
  [[ $(readlink "/proc/$1/exe") == "$VIT" ]] && m=$(awk '/^SigCgt:/ {print $2}' "/proc/$1/status" 2>/dev/null) &&
    (((16#$m >> 14) & 1))
}
