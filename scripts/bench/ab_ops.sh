#!/usr/bin/env bash
# A/B of two vit builds by `vit bench --ops`, alternating processes so that a shared machine's load falls on both:
# per round and build, the median pass, the time of the ops whose name starts with each given prefix, the linear
# layers' time and the whole pass over its linear layers (the load-robust figure).
#   scripts/bench/ab_ops.sh OLD_VIT NEW_VIT [ROUNDS] -- [vit bench options]
#   e.g. scripts/bench/ab_ops.sh /tmp/vit-before build/vit 3 -- -m /tmp/vit-bench/models/vit_b_16 -t 2 -p bf16
# OPS="attention,layer norm" picks the op prefixes. Needs jq.
set -euo pipefail
[[ $# -ge 2 ]] || { sed -n '2,7p' "$0" >&2; exit 2; }
old=$1 new=$2 rounds=3
shift 2
if [[ $# -gt 0 && $1 != -- ]]; then rounds=$1; shift; fi
[[ $# -gt 0 && $1 == -- ]] && shift
IFS=, read -r -a prefixes <<<"${OPS:-attention,layer norm}"
for ((r = 1; r <= rounds; r++)); do
    for side in old new; do
        bin=$old
        [[ $side == new ]] && bin=$new
        json=$("$bin" bench --ops --format json "$@")
        line="round $r $side: pass median $(jq -r '.median_ms * 100 | round / 100' <<<"$json") ms"
        for p in "${prefixes[@]}"; do
            ms=$(jq -r --arg p "$p" '[.ops[] | select(.op | startswith($p)) | .ms_per_pass] | add // 0 | . * 100 | round / 100' <<<"$json")
            line+=", $p $ms ms"
        done
        line+=", linear layers $(jq -r '.linear_ms_per_pass * 100 | round / 100' <<<"$json") ms"
        line+=", pass / linears $(jq -r '.pass_over_linear_median * 1000 | round / 1000' <<<"$json")"
        echo "$line"
    done
done
