#!/usr/bin/env bash
# Embedding parity on real images: `vit embed` with DeiT-tiny (../shared's float32 weights and the built-in
# float16 model) on six ../shared ImageNet images against the float64 PyTorch + PIL reference of
# scripts/make_embed_reference.py (tests/fixtures/deit_tiny/embeddings.jsonl), for the model's own pooling and
# --pool cls / mean: relative L2 error <= 1e-4 per image and pool; --normalize gives unit vectors in the reference's
# direction. Skipped (with a message) when ../shared is absent. Usage: test_embed_deit.sh VIT_BINARY SOURCE_DIR
set -u
VIT=$1
SRC=$2
. "$SRC/tests/cli/lib.sh"
SHARED=$SRC/../shared
REF=$SRC/tests/fixtures/deit_tiny/embeddings.jsonl
if [[ ! -f $SHARED/models/deit-tiny-imagenet/model.safetensors || ! -d $SHARED/data/imagenet-sample ]]; then
  echo "skipped: $SHARED (DeiT-tiny weights and the ImageNet sample) is absent"
  exit 0
fi
mapfile -t images < <(jq -r 'select(.model == "shared" and .pool == "head") | .image' "$REF")
check_eq "the reference has 6 images" "${#images[@]}" 6
paths=()
for f in "${images[@]}"; do paths+=("$SHARED/data/imagenet-sample/$f"); done

# rel_l2 GOT_JSONL MODEL POOL [normalized]: "max" relative L2 error over the images, after one line per image.
rel_l2() {
  jq -rn --slurpfile got "$1" --slurpfile ref "$REF" --arg model "$2" --arg pool "$3" --arg norm "${4:-}" '
    def norm2(v): v | map(. * .) | add | sqrt;
    [ $got[] | . as $g | ($g.path | split("/") | last) as $img
      | ($ref[] | select(.model == $model and .pool == $pool and .image == $img) | .embedding) as $r0
      | (if $norm == "" then $r0 else (norm2($r0)) as $n | $r0 | map(. / $n) end) as $r
      | {img: $img, e: (norm2([range(0; $r | length) as $i | $g.embedding[$i] - $r[$i]]) / norm2($r)),
         n: ($g.embedding | length), want: ($r | length)} ] as $rows
    | if ($rows | length) != ($got | length) or ($rows | length) == 0 then "error: unmatched records"
      elif any($rows[]; .n != .want) then "error: wrong length"
      else ($rows[] | "    \(.img) \(.e)"), "max \([$rows[].e] | max)" end'
}

declare -A MODELS=([shared]="--config $SRC/configs/deit_tiny_patch16_224.json --weights $SHARED/models/deit-tiny-imagenet/model.safetensors"
                   [builtin]="-m $SRC/models/deit-tiny-imagenet")
for model in shared builtin; do
  for pool in head cls mean; do
    # shellcheck disable=SC2086
    "$VIT" embed ${MODELS[$model]} --pool "$pool" "${paths[@]}" > "$work/$model.$pool.jsonl" 2>"$work/err"
    check_eq "$model --pool $pool: exit 0" "$?" 0
    res=$(rel_l2 "$work/$model.$pool.jsonl" "$model" "$pool")
    printf '%s\n' "$res" | grep '^    '
    max=$(printf '%s\n' "$res" | sed -n 's/^max //p')
    check "$model --pool $pool: relative L2 error <= 1e-4 on every image (max ${max:-$res})" \
      awk -v e="${max:-1}" 'BEGIN { exit !(e <= 1e-4) }'
  done
done

# shellcheck disable=SC2086
"$VIT" embed ${MODELS[builtin]} --normalize --pool mean "${paths[@]}" > "$work/norm.jsonl" 2>/dev/null
lengths=$(jq -r '.embedding | map(. * .) | add | sqrt | . * 1e6 | round' "$work/norm.jsonl" | sort -u | tr '\n' ' ')
check_eq "--normalize: every vector has unit length (x 1e6)" "$lengths" "1000000 "
res=$(rel_l2 "$work/norm.jsonl" builtin mean normalized)
max=$(printf '%s\n' "$res" | sed -n 's/^max //p')
check "--normalize: the reference's direction (max relative L2 error ${max:-$res})" \
  awk -v e="${max:-1}" 'BEGIN { exit !(e <= 1e-4) }'
finish
