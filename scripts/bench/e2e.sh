#!/usr/bin/env bash
# End-to-end throughput of `vit classify` on a folder against pure inference (`vit bench`) at the same batch
# size, alternately for R rounds. Default: DeiT-tiny on ../shared/data/imagenet-sample, batch 32.
# Usage: scripts/bench/e2e.sh [ROUNDS] [BATCH]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
batch=${2:-32}
vit=build/vit
model=(--config configs/deit_tiny_patch16_224.json --weights ../shared/models/deit-tiny-imagenet/model.safetensors)
folder=../shared/data/imagenet-sample
n=$(find "$folder" -maxdepth 1 -name '*.JPEG' | wc -l)
echo "end-to-end: $vit classify -b $batch $folder ($n images) vs $vit bench -b $batch, $rounds rounds" >&2
for r in $(seq 1 "$rounds"); do
  bench=$("$vit" bench "${model[@]}" -b "$batch" -n 5 --warmup 1 --format json)
  pure=$(printf '%s' "$bench" | jq .images_per_s)
  load_ms=$(printf '%s' "$bench" | jq .load_ms)
  t0=$(date +%s.%N)
  "$vit" classify "${model[@]}" -b "$batch" --format jsonl "$folder" > /dev/null
  t1=$(date +%s.%N)
  # The wall time includes loading the model once; take it out with bench's own load time.
  awk -v r="$r" -v n="$n" -v t0="$t0" -v t1="$t1" -v load="$load_ms" -v pure="$pure" 'BEGIN {
    e2e = n / (t1 - t0 - load / 1000)
    printf "round %d: pure inference %.1f images/s, end-to-end %.1f images/s, ratio %.3f\n", r, pure, e2e, e2e / pure }' 
done
