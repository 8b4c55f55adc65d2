#!/usr/bin/env bash
# Real weights in Hub layouts: ../shared's DeiT-tiny rewritten into a transformers directory and a timm Hub
# directory by scripts/convert_layout.py (pure Python, no torch), each classified by `vit classify --model DIR` on
# the 1000 ImageNet samples, against the top-1 predictions of that layout's own PyTorch pipeline (processor +
# model, tests/fixtures/deit_tiny/<layout>_top1.txt from scripts/make_hub_deit_reference.py): >= 99.5% the same.
# Usage: test_hub_deit.sh VIT_BINARY SOURCE_DIR
set -u
VIT=$(realpath "$1")
SRC=$(realpath "$2")
. "$SRC/tests/cli/lib.sh"
SHARED=$SRC/../shared
WEIGHTS=$SHARED/models/deit-tiny-imagenet/model.safetensors
IMAGES=$SHARED/data/imagenet-sample

for layout in transformers timm; do
  echo "== DeiT-tiny as a $layout directory"
  python3 "$SRC/scripts/convert_layout.py" --to "$layout" --input "$WEIGHTS" --output "$work/$layout" >/dev/null
  check "$layout: directory written" test -f "$work/$layout/config.json"
  "$VIT" info -m "$work/$layout" > "$work/$layout.info"
  check_eq "$layout: detected format" "$(awk '/^format/ {print $2}' "$work/$layout.info")" "$layout,"
  want=$SRC/tests/fixtures/deit_tiny/${layout}_top1.txt
  find "$IMAGES" -name '*.JPEG' | sort > "$work/list"
  "$VIT" classify -m "$work/$layout" -k 1 -b 16 --format tsv --files-from "$work/list" 2>/dev/null |
    awk -F'\t' 'NR > 1 { n = split($1, p, "/"); print p[n], $4 }' > "$work/$layout.got"
  total=$(wc -l < "$want")
  same=$(join <(sort "$want") <(sort "$work/$layout.got") | awk '$2 == $3' | wc -l)
  echo "  $layout: $same / $total top-1 equal to the PyTorch pipeline"
  check_eq "$layout: every image classified" "$(wc -l < "$work/$layout.got")" "$total"
  check "$layout: >= 99.5% same top-1 as PyTorch ($same / $total)" test $((same * 1000)) -ge $((total * 995))
done
finish
