#!/usr/bin/env bash
# Soak run (issue 15): 20,000 inputs through --files-from (the sample images repeated, every tenth path missing):
# exactly one record each, in input order, exit 2, and flat memory: the peak RSS of 20,000 inputs within 6 MB of
# that of 2,000 (GNU time; skipped under AddressSanitizer, whose quarantine grows by design).
# Usage: test_soak.sh VIT_BINARY SOURCE_DIR [N]
set -u
VIT=$1
SRC=$2
N=${3:-20000}
. "$(dirname "$0")/lib.sh"

imgs=("$SRC"/samples/fashion/*.png)
make_list() {
  local n=$1 i
  for ((i = 0; i < n; i++)); do
    if ((i % 10 == 9)); then echo "$work/missing-$i.png"; else echo "${imgs[i % ${#imgs[@]}]}"; fi
  done
}
make_list "$N" >"$work/big.txt"
make_list $((N / 10)) >"$work/small.txt"
run() { # LIST OUT: the peak RSS in KB on stdout (GNU time), vit's exit status in $work/rc
  /usr/bin/time -f %M -o "$work/rss" "$VIT" classify -m "$SRC/models/fashion-vit" --format jsonl -b 16 -k 1 \
    --files-from "$1" >"$2" 2>"$work/err"
  echo $? >"$work/rc"
  tail -1 "$work/rss"   # GNU time notes a non-zero exit status on the line before
}
rss_small=$(run "$work/small.txt" "$work/small.jsonl")
rss_big=$(run "$work/big.txt" "$work/big.jsonl")
check_eq "exit 2 (every tenth input missing)" "$(cat "$work/rc")" 2
check_eq "exactly one record per input, in input order" "$(jq -r .path "$work/big.jsonl" | cmp - "$work/big.txt" && echo same)" same
check_eq "every tenth record an error, the others classified" \
  "$(jq -r 'if .error then "e" else "c" end' "$work/big.jsonl" | sort | uniq -c | awk '{printf "%s=%s ", $2, $1}')" \
  "c=$((N - N / 10)) e=$((N / 10)) "
check_eq "the errors say why" "$(jq -r 'select(.error) | .error' "$work/big.jsonl" | sort -u)" "no such file"
check_eq "stderr quiet" "$(cat "$work/err")" ""
echo "  peak RSS: $((N / 10)) inputs $rss_small KB, $N inputs $rss_big KB"
if under_asan; then
  echo "  skip the memory check under AddressSanitizer"
else
  check "flat memory: peak RSS of $N inputs within 6 MB of $((N / 10)) ($rss_big vs $rss_small KB)" \
    test $((rss_big - rss_small)) -le 6144
fi

finish
