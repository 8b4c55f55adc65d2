#!/usr/bin/python3
"""Embedding reference: DeiT-tiny's pooled pre-logits features of a few ../shared ImageNet images (for `vit embed`).

    /usr/bin/python3 scripts/make_embed_reference.py [--shared ../shared] [--out tests/fixtures/deit_tiny/embeddings.jsonl]

Two models, both through scripts/vit_torch.py in float64: "shared" (../shared's float32 weights with
configs/deit_tiny_patch16_224.json) and "builtin" (models/deit-tiny-imagenet, float16 weights widened to float32).
Images go through the PIL/torchvision pipeline of scripts/make_deit_reference.py (resize shorter side, bicubic,
antialiased -> centre crop -> normalise). Pools, as `vit embed --pool` names them:
    head  what the classifier sees (VisionTransformer.forward_pre_logits: the class token for DeiT-tiny)
    cls   the final-normed class token
    mean  the mean of the final-normed patch tokens (class token excluded)
Writes one jsonl record per (model, pool, image): {"model", "pool", "image", "embedding": [D floats]}; `image` is
the file name under ../shared/data/imagenet-sample. tests/cli/test_embed_deit.sh compares `vit embed` with it.
"""
import argparse
import json
import os
import sys

import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import vit_torch                                    # noqa: E402
from make_deit_reference import pil_transform       # noqa: E402
from safetensors_io import load_file                # noqa: E402

N_IMAGES = 6


def pools(model, x):
    """{pool name: (B, D) float64} for a float64 model and input batch."""
    with torch.no_grad():
        t = model.forward_features(x)               # (B, T, D), after the final norm
        return {"head": model.forward_pre_logits(t), "cls": t[:, 0], "mean": model.fc_norm(t[:, 1:].mean(dim=1))}


def main():
    root = os.path.normpath(os.path.join(HERE, ".."))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", default=os.path.join(root, "..", "shared"))
    ap.add_argument("--out", default=os.path.join(root, "tests", "fixtures", "deit_tiny", "embeddings.jsonl"))
    a = ap.parse_args()
    torch.set_num_threads(2)

    cfg = vit_torch.load_config(os.path.join(root, "configs", "deit_tiny_patch16_224.json"))
    shared_sd = load_file(os.path.join(a.shared, "models", "deit-tiny-imagenet", "model.safetensors"))
    builtin, builtin_cfg, _ = vit_torch.load_model_dir(os.path.join(root, "models", "deit-tiny-imagenet"))
    models = {"shared": (vit_torch.from_state_dict(cfg["model"], shared_sd, torch.float64), cfg["preprocess"]),
              "builtin": (builtin.to(torch.float64), builtin_cfg["preprocess"])}

    img_dir = os.path.join(a.shared, "data", "imagenet-sample")
    files = sorted(f for f in os.listdir(img_dir) if f.endswith(".JPEG"))
    files = files[::len(files) // N_IMAGES][:N_IMAGES]   # spread over the classes, deterministic
    lines = []
    for name, (model, pre) in models.items():
        tf = pil_transform(pre)
        x = torch.stack([tf(Image.open(os.path.join(img_dir, f)).convert("RGB")) for f in files]).to(torch.float64)
        for pool, feats in pools(model, x).items():
            for f, v in zip(files, feats):
                lines.append(json.dumps({"model": name, "pool": pool, "image": f,
                                         "embedding": [float(f"{e:.9g}") for e in v.tolist()]}))
        print(f"{name}: {len(files)} images, D = {feats.shape[1]}", file=sys.stderr)
    with open(a.out, "w") as out:
        out.write("\n".join(lines) + "\n")
    print(f"wrote {a.out} ({len(lines)} records)", file=sys.stderr)


if __name__ == "__main__":
    main()
