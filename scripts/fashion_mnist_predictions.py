#!/usr/bin/python3
"""Runs a vit model directory (default models/fashion-vit) with the reference PyTorch ViT over an ImageFolder
and writes one line per image: `<relative path> <predicted class index>`, sorted by path ('/' separators).
The index is the last space-separated field (class folders such as "Ankle boot" contain spaces).

    /usr/bin/python3 scripts/fashion_mnist_predictions.py --folder /tmp/fmnist-test --limit 200 \
        --out /tmp/expected_predictions.txt

Preprocessing follows the config's "preprocess" section as vit does it (timm's eval transform): convert to
grayscale / RGB for in_chans, resize the shorter side to `resize` (PIL, antialiased), centre-crop `crop`,
scale to [0, 1], normalise with mean/std. For Fashion-MNIST's 28x28 PNGs and the 28/28 config the resize and
crop are the identity. --limit N keeps the first N images in sorted path order.
"""
import argparse
import os
import sys

import numpy as np
import torch
from PIL import Image

SCRIPTS_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, SCRIPTS_DIR)
import vit_torch   # noqa: E402

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")
RESAMPLE = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "nearest": Image.NEAREST}


def list_images(folder):
    """Relative paths ('/'-separated) of the image files under folder's class subfolders, sorted."""
    out = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for f in files:
            if f.lower().endswith(IMAGE_EXTS):
                out.append(os.path.relpath(os.path.join(root, f), folder).replace(os.sep, "/"))
    return sorted(out)


def preprocess(path, pre, in_chans):
    """Image file -> float32 tensor [C, crop, crop]."""
    img = Image.open(path)
    img = img.convert("L" if in_chans == 1 else "RGB")
    w, h = img.size
    r = pre["resize"]
    if min(w, h) != r:                          # torchvision Resize(int): long side int(r * long / short)
        if w <= h:
            nw, nh = r, max(1, int(r * h / w))
        else:
            nw, nh = max(1, int(r * w / h)), r
        img = img.resize((nw, nh), RESAMPLE[pre.get("interpolation", "bilinear")])
    c = pre["crop"]
    w, h = img.size
    left, top = int(round((w - c) / 2.0)), int(round((h - c) / 2.0))
    if (w, h) != (c, c):
        img = img.crop((left, top, left + c, top + c))
    a = np.asarray(img, dtype=np.float32) / 255.0
    a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
    mean = np.asarray(pre["mean"], dtype=np.float32)[:, None, None]
    std = np.asarray(pre["std"], dtype=np.float32)[:, None, None]
    return torch.from_numpy((a - mean) / std)


def predict(model_dir, folder, limit=None, batch=256):
    """Returns [(relative path, predicted index)] in sorted path order."""
    model, cfg, _ = vit_torch.load_model_dir(model_dir)
    m, pre = cfg["model"], cfg["preprocess"]
    paths = list_images(folder)
    if limit is not None:
        paths = paths[:limit]
    out = []
    with torch.no_grad():
        for i in range(0, len(paths), batch):
            chunk = paths[i:i + batch]
            x = torch.stack([preprocess(os.path.join(folder, p), pre, m["in_chans"]) for p in chunk])
            pred = model(x).argmax(1).tolist()
            out.extend(zip(chunk, pred))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=os.path.join(os.path.dirname(SCRIPTS_DIR), "models", "fashion-vit"),
                    help="model directory (config.json, model.safetensors, labels.txt)")
    ap.add_argument("--folder", required=True, help="ImageFolder root: FOLDER/<class>/<image>")
    ap.add_argument("--limit", type=int, help="only the first N images in sorted path order")
    ap.add_argument("--out", required=True, help="file to write ('-' for stdout)")
    a = ap.parse_args(argv)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    preds = predict(a.model, a.folder, a.limit)
    text = "".join(f"{p} {k}\n" for p, k in preds)
    if a.out == "-":
        sys.stdout.write(text)
    else:
        with open(a.out, "w") as f:
            f.write(text)
    print(f"fashion_mnist_predictions: {len(preds)} images -> {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
