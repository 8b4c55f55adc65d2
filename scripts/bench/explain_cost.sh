#!/usr/bin/env bash
# Cost of `vit explain` against `vit classify` per image: the same N images (default 64 of ../shared's ImageNet
# sample) through classify, explain without overlays (maps only) and explain with overlays, per method; prints
# wall-clock ms per image, best of R runs (default 3). Usage: scripts/bench/explain_cost.sh [VIT] [N] [R]
set -eu
VIT=${1:-build/vit}
N=${2:-64}
R=${3:-3}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
list=$(mktemp)
out=$(mktemp -d)
trap 'rm -rf "$list" "$out"' EXIT
find "$SRC/../shared/data/imagenet-sample" -name '*.JPEG' | sort | head -n "$N" > "$list"
n=$(wc -l < "$list")
best() {   # best wall time in ms of R runs of "$@"
    local b=
    for _ in $(seq "$R"); do
        rm -rf "$out"/*
        local t0=$(date +%s%N)
        "$@" > /dev/null
        local ms=$((($(date +%s%N) - t0) / 1000000))
        if [[ -z "$b" || $ms -lt $b ]]; then b=$ms; fi
    done
    echo "$b"
}
printf '%-44s %10s %12s\n' "command ($n images, best of $R)" "total ms" "ms / image"
row() { local name=$1; shift; local t; t=$(best "$@"); printf '%-44s %10d %12.2f\n' "$name" "$t" "$(awk -v t="$t" -v n="$n" 'BEGIN { print t / n }')"; }
row "classify" "$VIT" classify -f jsonl --files-from "$list"
row "explain --method attention (records only)" "$VIT" explain --method attention -f jsonl --files-from "$list"
row "explain --method rollout (records only)" "$VIT" explain -f jsonl --files-from "$list"
row "explain --method attention -d DIR" "$VIT" explain --method attention -f jsonl -d "$out" --files-from "$list"
row "explain --method rollout -d DIR" "$VIT" explain -f jsonl -d "$out" --files-from "$list"
row "explain rollout --discard-ratio 0.9 -d DIR" "$VIT" explain --head-fusion max --discard-ratio 0.9 -f jsonl -d "$out" --files-from "$list"
