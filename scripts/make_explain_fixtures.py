#!/usr/bin/python3
"""Reference attention maps for `vit explain`, written from the papers' definitions in float64.

    /usr/bin/python3 scripts/make_explain_fixtures.py [--shared ../shared] [--out tests/fixtures/explain]

Definitions (independent of lib/explain.cpp, which multiplies a row vector through the layers instead):
  rollout (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers"): per block l, fuse the heads of
      A_l [H, T, T] (mean/max/min over H); zero the floor(T*T*ratio) smallest entries of the flattened fused matrix
      (stable order: value, then position), except entry [0, 0] (the class token's own, as jacobgil/vit-explain);
      A'_l = (A_l + I) / 2, rows divided by their sums; R = A'_L @ ... @ A'_1 (full matrices); the map is
      R[0, Nx:] / max (left at 0 when the discarding left the class token no path to a patch).
  attention (DINO, Caron et al. 2021, the last layer's class-token attention): A_L[:, 0, Nx:] fused over the
      heads (or one head), / max.

Attention probabilities come from scripts/vit_torch.py's model run in float64 (weights and inputs as stored).
Writes, for each CASE (name -> method, fusion, discard ratio, head):
  tiny_rgb_p16.safetensors, tiny_gray_p8.safetensors: CASE [3, Np] f32, on the reference inputs of
      tests/fixtures/<model>/reference.safetensors
  deit_tiny.safetensors: CASE [4, 196] f32 for DEIT_IMAGES (preprocessed with PIL/torchvision as timm does)
  hub_<case>.safetensors: CASE [2, Np] f32 for Hub-layout fixtures with prefix tokens (tests/fixtures/hub/<case>,
      run by scripts/hub_reference.py on the "pixels" of <case>.reference.safetensors): timm_deit_distilled and
      hf_deit_distilled ([class][distillation]), timm_reg_dinov2 and hf_dinov2_registers ([class][4 registers]).
  synthetic.safetensors: probs [L=3, B=2, H=2, T=12] f32 (random softmax rows) and CASE [2, 9] f32 for a token
      layout [class][distillation][1 register][3x3 patches] (Nx = 3): the prefix tokens are left out of the map.
"""
import argparse
import math
import os
import sys

import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import vit_torch                                    # noqa: E402
from make_deit_reference import pil_transform       # noqa: E402
from safetensors_io import load_file, save_file     # noqa: E402

F64 = torch.float64
# name -> (method, head fusion, discard ratio, head); lib tests use the same table (tests/test_explain.cpp).
CASES = {
    "rollout_mean": ("rollout", "mean", 0.0, -1),
    "rollout_max_d0.9": ("rollout", "max", 0.9, -1),
    "rollout_min_d0.5": ("rollout", "min", 0.5, -1),
    "rollout_mean_d0.3": ("rollout", "mean", 0.3, -1),
    "attention_mean": ("attention", "mean", 0.0, -1),
    "attention_max": ("attention", "max", 0.0, -1),
    "attention_min": ("attention", "min", 0.0, -1),
    "attention_head1": ("attention", "mean", 0.0, 1),
}
DEIT_IMAGES = ["samples/chelsea.png", "samples/coffee.png"]   # + the first two of ../shared/data/imagenet-sample


def fuse(a, fusion):                                # [H, T, T] -> [T, T]
    return {"mean": lambda: a.mean(0), "max": lambda: a.max(0).values, "min": lambda: a.min(0).values}[fusion]()


def rollout(layers, prefix, fusion, ratio):         # layers: list of [H, T, T] float64
    T = layers[0].shape[-1]
    eye = torch.eye(T, dtype=F64)
    R = eye.clone()
    for a in layers:
        f = fuse(a, fusion).clone()
        n = int(math.floor(T * T * ratio))
        if n > 0:
            flat = f.reshape(-1)
            order = sorted(range(T * T), key=lambda i: (flat[i].item(), i))[:n]
            for i in order:
                if i != 0:
                    flat[i] = 0.0
        a2 = (f + eye) / 2
        a2 = a2 / a2.sum(dim=-1, keepdim=True)
        R = a2 @ R                                  # R = A'_l ... A'_1
    m = R[0, prefix:]
    return m / m.max() if m.max() > 0 else m        # everything discarded: an all-zero map


def class_attention(last, prefix, fusion, head):    # last: [H, T, T]
    row = last[head, 0] if head >= 0 else fuse(last, fusion)[0]
    m = row[prefix:]
    return m / m.max() if m.max() > 0 else m


def maps_for(attn_per_image, prefix):               # attn_per_image: list over images of list over layers [H,T,T]
    out = {}
    for name, (method, fusion, ratio, head) in CASES.items():
        rows = []
        for layers in attn_per_image:
            if method == "rollout":
                rows.append(rollout(layers, prefix, fusion, ratio))
            else:
                rows.append(class_attention(layers[-1], prefix, fusion, head if head < layers[-1].shape[0] else -1))
        out[name] = torch.stack(rows).to(torch.float32)
    return out


def record_attention(model, x):
    """Runs the model, returning per image the list over blocks of the softmax probabilities [H, T, T]."""
    store = []

    def forward(self, t):
        B, T, D = t.shape
        H = self.num_heads
        qkv = self.qkv(t).reshape(B, T, 3, H, D // H).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(D // H))).softmax(dim=-1)
        store.append(attn.detach())
        return self.proj((attn @ v).transpose(1, 2).reshape(B, T, D))

    for blk in model.blocks:
        blk.attn.forward = forward.__get__(blk.attn)
    with torch.no_grad():
        model(x)
    return [[layer[b] for layer in store] for b in range(x.shape[0])]


def tiny(out, name):
    model, config, _ = vit_torch.load_model_dir(os.path.join(ROOT, "tests/fixtures", name), dtype=F64)
    x = load_file(os.path.join(ROOT, "tests/fixtures", name, "reference.safetensors"))["input"].to(F64)
    save_file(maps_for(record_attention(model, x), 1), os.path.join(out, name + ".safetensors"))


def deit(out, shared):
    config = vit_torch.load_config(os.path.join(ROOT, "configs/deit_tiny_patch16_224.json"))
    sd = load_file(os.path.join(shared, "models/deit-tiny-imagenet/model.safetensors"))
    model = vit_torch.from_state_dict(config["model"], sd, F64)
    sample = os.path.join(shared, "data/imagenet-sample")
    files = [os.path.join(ROOT, f) for f in DEIT_IMAGES] + \
        [os.path.join(sample, f) for f in sorted(os.listdir(sample)) if f.endswith(".JPEG")][:2]
    tf = pil_transform(config["preprocess"])
    x = torch.stack([tf(Image.open(f).convert("RGB")) for f in files]).to(F64)
    maps = maps_for(record_attention(model, x), 1)
    save_file(maps, os.path.join(out, "deit_tiny.safetensors"),
              metadata={"images": ",".join(os.path.relpath(f, sample) if f.startswith(sample) else os.path.relpath(f, ROOT)
                                           for f in files)})


HUB_CASES = ["timm_deit_distilled", "hf_deit_distilled", "timm_reg_dinov2", "hf_dinov2_registers"]


def hub(out):
    import hub_reference
    store = []
    plain = hub_reference.attention

    def attention(q, k, v, heads):                  # hub_reference.attention, keeping the probabilities
        B, T, D = q.shape
        split = lambda t: t.reshape(B, T, heads, D // heads).transpose(1, 2)
        a = (split(q) @ split(k).transpose(-2, -1)) / math.sqrt(D // heads)
        store.append(a.softmax(-1).detach())
        return plain(q, k, v, heads)

    hub_reference.attention = attention
    for case in HUB_CASES:
        root = os.path.join(ROOT, "tests/fixtures/hub")
        model = hub_reference.load_model_dir(os.path.join(root, case))
        x = load_file(os.path.join(root, case + ".reference.safetensors"))["pixels"].to(F64)
        store.clear()
        with torch.no_grad():
            model.forward(x)
        T = store[0].shape[-1]
        grid = int(round(math.sqrt(T)))
        while grid * grid > T - 1:
            grid -= 1
        prefix = T - grid * grid
        per_image = [[layer[b] for layer in store] for b in range(x.shape[0])]
        save_file(maps_for(per_image, prefix), os.path.join(out, "hub_" + case + ".safetensors"),
                  metadata={"prefix_tokens": str(prefix)})
        print(f"{case}: T {T}, prefix tokens {prefix}")
    hub_reference.attention = plain


def synthetic(out):
    g = torch.Generator().manual_seed(1201)
    L, B, H, T, prefix = 3, 2, 2, 12, 3
    probs = (torch.randn(L, B, H, T, T, generator=g, dtype=F64) * 2).softmax(-1).to(torch.float32)
    per_image = [[probs[l, b].to(F64) for l in range(L)] for b in range(B)]
    maps = maps_for(per_image, prefix)
    maps["probs"] = probs
    save_file(maps, os.path.join(out, "synthetic.safetensors"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=os.path.join(ROOT, "../shared"))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests/fixtures/explain"))
    ap.add_argument("--skip-deit", action="store_true", help="leave deit_tiny.safetensors as it is (slow)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name in ("tiny_rgb_p16", "tiny_gray_p8"):
        tiny(args.out, name)
    synthetic(args.out)
    hub(args.out)
    if not args.skip_deit:
        deit(args.out, args.shared)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
