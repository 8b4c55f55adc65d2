#!/usr/bin/python3
"""Writes a Fashion-MNIST split as an ImageFolder of 28x28 8-bit grayscale PNGs: DIR/<class>/<NNNNN>.png.

<class> is the label from models/fashion-vit/labels.txt with '/' replaced by '_' (so "T-shirt/top" is the
folder "T-shirt_top"; every other class name is used as is, e.g. "Ankle boot"); <NNNNN> is the image's
index in the split, zero-padded to 5 digits. PNG is lossless, so the files hold exactly the dataset's bytes.

    /usr/bin/python3 scripts/fashion_mnist_to_folder.py --out /tmp/fmnist-test [--split test] [--limit 1000]

--limit N writes the first N images of the split (in dataset order).
"""
import argparse
import os
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_fashion_mnist import DATA_DIR, LABELS, folder_name, load_split   # noqa: E402


def write_folder(out_dir, split="test", limit=None, data_dir=DATA_DIR):
    """Writes the images; returns [(relative path, label index)] in dataset order."""
    images, labels = load_split(split, data_dir)
    n = images.shape[0] if limit is None else min(limit, images.shape[0])
    for name in LABELS:
        os.makedirs(os.path.join(out_dir, folder_name(name)), exist_ok=True)
    written = []
    for i in range(n):
        rel = os.path.join(folder_name(LABELS[labels[i]]), f"{i:05d}.png")
        Image.fromarray(np.ascontiguousarray(images[i]), mode="L").save(os.path.join(out_dir, rel))
        written.append((rel, int(labels[i])))
    return written


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="directory to write the class folders into")
    ap.add_argument("--split", choices=["test", "train"], default="test")
    ap.add_argument("--limit", type=int, help="write only the first N images")
    ap.add_argument("--data", default=DATA_DIR, help="directory of the Fashion-MNIST idx .gz files")
    a = ap.parse_args(argv)
    if a.limit is not None and a.limit < 0:
        ap.error("--limit must be >= 0")
    written = write_folder(a.out, a.split, a.limit, a.data)
    print(f"fashion_mnist_to_folder: wrote {len(written)} {a.split} images to {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
