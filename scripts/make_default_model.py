#!/usr/bin/python3
"""Builds the built-in default model directory models/deit-tiny-imagenet from the DeiT-tiny weights in ../shared.

    /usr/bin/python3 scripts/make_default_model.py [--weights ../shared/models/deit-tiny-imagenet/model.safetensors]
                                                   [--out models/deit-tiny-imagenet] [--dtype F16|F32]

Writes config.json (configs/deit_tiny_patch16_224.json with the labels file inside the directory), labels.txt
(configs/imagenet_labels.txt) and model.safetensors with every tensor cast to --dtype (default F16: round to
nearest, the same rounding torch's .half() does). The tensor names and shapes are kept; the metadata records the
source file's sha256 and the cast. README.md (provenance, licence, accuracy) is written by hand.
"""
import argparse
import hashlib
import json
import os
import shutil
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from safetensors_io import load_file, save_file     # noqa: E402

DTYPES = {"F16": torch.float16, "F32": torch.float32}


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=os.path.join(ROOT, "../shared/models/deit-tiny-imagenet/model.safetensors"))
    ap.add_argument("--out", default=os.path.join(ROOT, "models/deit-tiny-imagenet"))
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="F16")
    args = ap.parse_args()

    tensors = load_file(args.weights)
    bad = [n for n, t in tensors.items() if t.dtype != torch.float32]
    if bad:
        sys.exit(f"{args.weights}: expected float32 tensors, got {tensors[bad[0]].dtype} for '{bad[0]}'")
    out = {n: t.to(DTYPES[args.dtype]) for n, t in tensors.items()}
    if args.dtype == "F16":
        finite = [n for n, t in out.items() if not torch.isfinite(t).all()]
        if finite:
            sys.exit(f"tensor '{finite[0]}' overflows float16")
        worst = max((tensors[n] - out[n].float()).abs().max().item() for n in out)
        print(f"F16 cast: max abs rounding error {worst:.3g}", file=sys.stderr)

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(ROOT, "configs/deit_tiny_patch16_224.json")) as f:
        config = json.load(f)
    config["labels"] = "labels.txt"
    config["weights"] = "model.safetensors"
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    shutil.copyfile(os.path.join(ROOT, "configs/imagenet_labels.txt"), os.path.join(args.out, "labels.txt"))
    metadata = {"source_sha256": sha256(args.weights), "dtype": args.dtype,
                "source": "DeiT-tiny (facebookresearch/deit), float32 export of wvfunc/matlab-bit_true-deit_tiny-fix"}
    save_file(out, os.path.join(args.out, "model.safetensors"), metadata)
    print(f"wrote {args.out} ({args.dtype}, {sum(t.numel() for t in out.values())} parameters)", file=sys.stderr)


if __name__ == "__main__":
    main()
