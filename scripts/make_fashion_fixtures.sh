#!/usr/bin/env bash
# Regenerates tests/fixtures/fashion_subset: the first 300 Fashion-MNIST test images as an ImageFolder of PNGs
# and PyTorch's predictions for them with models/fashion-vit (Debian's /usr/bin/python3 with python3-torch).
set -euo pipefail
cd "$(dirname "$0")/.."
out=tests/fixtures/fashion_subset
rm -rf "$out"
/usr/bin/python3 scripts/fashion_mnist_to_folder.py --out "$out/images" --split test --limit 300
/usr/bin/python3 scripts/fashion_mnist_predictions.py --model models/fashion-vit --folder "$out/images" \
    --out "$out/expected_predictions.txt"
