#!/usr/bin/python3
"""Writes the PyTorch reference fixtures the C++ tests compare against (deterministic: fixed seeds).

    /usr/bin/python3 scripts/make_fixtures.py [--out tests/fixtures]

Every reference below is computed in float64 from float32 inputs and weights, then stored as float32.

tests/fixtures/<model>/ for model in tiny_rgb_p16, tiny_gray_p8, tiny_avg_fcnorm, tiny_noqkvbias:
    config.json, model.safetensors, labels.txt (tiny_gray_p8: inline "labels" list in config.json instead)
    reference.safetensors:
        input   [3, C, H, W]  f32, standard normal
        logits  [3, K]        f32

tests/fixtures/ops.safetensors (metadata: "layer_norm.eps" = "1e-06", "attention.num_heads" = "4"):
    layer_norm.x [5, 7, 32], layer_norm.weight [32], layer_norm.bias [32], layer_norm.y [5, 7, 32]
    gelu.x [1000] (linspace -6..6), gelu.y [1000]                     exact erf GELU
    softmax.x [4, 9] (large magnitudes), softmax.y [4, 9]             softmax over the last dim
    attention.x [2, 6, 32], attention.qkv.weight [96, 32], attention.qkv.bias [96],
    attention.proj.weight [32, 32], attention.proj.bias [32], attention.y [2, 6, 32]
                                                                      timm Attention, 4 heads
    mlp.x [2, 6, 32], mlp.fc1.weight [64, 32], mlp.fc1.bias [64], mlp.fc2.weight [32, 64],
    mlp.fc2.bias [32], mlp.y [2, 6, 32]                               fc1 -> GELU -> fc2

tests/fixtures/roundtrip/{timm,npz,hf,torchvision}/: the same random ViT (image 32, patch 16, dim 32, depth 2,
    heads 2, mlp 64, 5 classes) saved in each source layout and converted by export_weights.py --verify;
    the four directories are byte-identical. roundtrip/reference.safetensors: input [3, 3, 32, 32], logits [3, 5].
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import vit_torch                                    # noqa: E402
from export_weights import write_model_dir          # noqa: E402
from safetensors_io import save_file                # noqa: E402

F64 = torch.float64
META = {"reference": "computed in float64 from the stored float32 inputs/weights, stored as float32"}

TINY = {
    "tiny_rgb_p16": dict(seed=101, model=dict(image_size=32, patch_size=16, in_chans=3, embed_dim=32, depth=2,
                                              num_heads=4, mlp_dim=64, num_classes=10, global_pool="token"),
                         preprocess=dict(resize=36, crop=32, interpolation="bicubic", antialias=True,
                                         mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])),
    "tiny_gray_p8": dict(seed=102, model=dict(image_size=32, patch_size=8, in_chans=1, embed_dim=24, depth=2,
                                              num_heads=3, mlp_dim=48, num_classes=7, global_pool="token"),
                         preprocess=dict(resize=32, crop=32, interpolation="bilinear", antialias=True,
                                         mean=[0.5], std=[0.25]),
                         inline_labels=True),
    "tiny_avg_fcnorm": dict(seed=103, model=dict(image_size=32, patch_size=8, in_chans=3, embed_dim=32, depth=2,
                                                 num_heads=2, mlp_dim=64, num_classes=10, class_token=True,
                                                 global_pool="avg", fc_norm=True),
                            preprocess=dict(resize=40, crop=32, interpolation="nearest", antialias=False,
                                            mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5])),
    "tiny_noqkvbias": dict(seed=104, model=dict(image_size=32, patch_size=8, in_chans=3, embed_dim=32, depth=2,
                                                num_heads=2, mlp_dim=64, num_classes=6, qkv_bias=False,
                                                class_token=False, global_pool="avg", fc_norm=False,
                                                layer_norm_eps=1e-5),
                           preprocess=dict(resize=36, crop=32, interpolation="bicubic", antialias=True,
                                           mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])),
}
ROUNDTRIP = dict(image_size=32, patch_size=16, in_chans=3, embed_dim=32, depth=2, num_heads=2, mlp_dim=64,
                 num_classes=5, qkv_bias=True, layer_norm_eps=1e-6, class_token=True, global_pool="token",
                 fc_norm=False)
ROUNDTRIP_LABELS = ["airplane", "bird", "cat", "dog", "ship"]


def randn(g, *shape, scale=1.0, shift=0.0):
    return (torch.randn(*shape, generator=g, dtype=F64) * scale + shift).to(torch.float32)


def random_vit_state_dict(cfg, seed):
    """Float32 timm-named weights scaled so activations stay O(1), attention is peaked, logits are O(1-10),
    and LayerNorm weights/biases are far from 1/0."""
    g = torch.Generator().manual_seed(seed)
    template = vit_torch.VisionTransformer(cfg)
    sd = {}
    for name, p in template.state_dict().items():
        shape = tuple(p.shape)
        if name.endswith("norm1.weight") or name.endswith("norm2.weight") or name.split(".")[0] in (
                "norm", "fc_norm") and name.endswith("weight"):
            t = randn(g, *shape, scale=0.3, shift=1.0)
        elif "norm" in name and name.endswith("bias"):
            t = randn(g, *shape, scale=0.2)
        elif name in ("cls_token", "pos_embed"):
            t = randn(g, *shape, scale=0.5)
        elif name == "head.weight":
            t = randn(g, *shape, scale=3.0 / math.sqrt(shape[1]))
        elif name.endswith("qkv.weight"):
            t = randn(g, *shape, scale=1.5 / math.sqrt(shape[1]))
        elif name.endswith("weight"):
            fan_in = int(np.prod(shape[1:]))
            t = randn(g, *shape, scale=1.0 / math.sqrt(fan_in))
        else:                                        # linear / conv biases
            t = randn(g, *shape, scale=0.1)
        sd[name] = t
    return sd


def reference_logits(cfg, sd, x):
    with torch.no_grad():
        return vit_torch.from_state_dict(cfg, sd, F64)(x.to(F64)).to(torch.float32)


def make_tiny(out, name, spec):
    cfg = vit_torch.model_config(spec["model"])
    sd = random_vit_state_dict(cfg, spec["seed"])
    labels = [f"{name}_class_{i}" for i in range(cfg["num_classes"])]
    d = os.path.join(out, name)
    shutil.rmtree(d, ignore_errors=True)
    write_model_dir(d, sd, {"model": cfg, "preprocess": spec["preprocess"]}, labels)
    if spec.get("inline_labels"):
        with open(os.path.join(d, "config.json")) as f:
            c = json.load(f)
        c["labels"] = labels
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(c, f, indent=2)
            f.write("\n")
        os.remove(os.path.join(d, "labels.txt"))
    g = torch.Generator().manual_seed(spec["seed"] + 1000)
    x = randn(g, 3, cfg["in_chans"], cfg["image_size"], cfg["image_size"])
    y = reference_logits(cfg, sd, x)
    save_file({"input": x, "logits": y}, os.path.join(d, "reference.safetensors"), metadata=META)
    print(f"{name}: logits std {y.std().item():.2f}, max |logit| {y.abs().max().item():.2f}", file=sys.stderr)


def make_ops(out):
    F = torch.nn.functional
    g = torch.Generator().manual_seed(7)
    t = {}
    x, w, b = randn(g, 5, 7, 32, scale=3.0, shift=1.0), randn(g, 32, scale=0.3, shift=1.0), randn(g, 32, scale=0.2)
    t.update({"layer_norm.x": x, "layer_norm.weight": w, "layer_norm.bias": b,
              "layer_norm.y": F.layer_norm(x.to(F64), (32,), w.to(F64), b.to(F64), 1e-6).float()})
    x = torch.linspace(-6, 6, 1000, dtype=F64).float()
    t.update({"gelu.x": x, "gelu.y": F.gelu(x.to(F64)).float()})
    x = randn(g, 4, 9, scale=30.0)
    x[1] += 1000.0                                   # large common offset: needs max subtraction
    x[2] = -1000.0 + randn(g, 9, scale=0.5)
    x[3] = 5.0                                       # all equal -> uniform
    t.update({"softmax.x": x, "softmax.y": x.to(F64).softmax(-1).float()})
    c = {"embed_dim": 32, "num_heads": 4, "qkv_bias": True, "mlp_dim": 64}
    attn = vit_torch.Attention(c)
    p = {"qkv.weight": randn(g, 96, 32, scale=1.5 / math.sqrt(32)), "qkv.bias": randn(g, 96, scale=0.1),
         "proj.weight": randn(g, 32, 32, scale=1 / math.sqrt(32)), "proj.bias": randn(g, 32, scale=0.1)}
    attn.load_state_dict(p)
    x = randn(g, 2, 6, 32)
    with torch.no_grad():
        y = attn.to(F64)(x.to(F64)).float()
    t.update({"attention.x": x, "attention.y": y, **{"attention." + k: v for k, v in p.items()}})
    mlp = vit_torch.Mlp(c)
    p = {"fc1.weight": randn(g, 64, 32, scale=1 / math.sqrt(32)), "fc1.bias": randn(g, 64, scale=0.1),
         "fc2.weight": randn(g, 32, 64, scale=1 / math.sqrt(64)), "fc2.bias": randn(g, 32, scale=0.1)}
    mlp.load_state_dict(p)
    x = randn(g, 2, 6, 32, scale=2.0)
    with torch.no_grad():
        y = mlp.to(F64)(x.to(F64)).float()
    t.update({"mlp.x": x, "mlp.y": y, **{"mlp." + k: v for k, v in p.items()}})
    save_file(t, os.path.join(out, "ops.safetensors"),
              metadata={**META, "layer_norm.eps": "1e-06", "attention.num_heads": "4"})


# ---- the round-trip model in each source layout (inverse of export_weights' mappings) ----

def to_npz(sd, m):
    D, H = m["embed_dim"], m["num_heads"]
    n = lambda t: t.numpy()                          # noqa: E731
    w = {"embedding/kernel": n(sd["patch_embed.proj.weight"].permute(2, 3, 1, 0)),   # [P, P, C, D]
         "embedding/bias": n(sd["patch_embed.proj.bias"]), "cls": n(sd["cls_token"]),
         "Transformer/posembed_input/pos_embedding": n(sd["pos_embed"]),
         "Transformer/encoder_norm/scale": n(sd["norm.weight"]), "Transformer/encoder_norm/bias": n(sd["norm.bias"]),
         "head/kernel": n(sd["head.weight"].T), "head/bias": n(sd["head.bias"])}
    for i in range(m["depth"]):
        b, p = f"blocks.{i}.", f"Transformer/encoderblock_{i}/"
        a = p + "MultiHeadDotProductAttention_1/"
        for j, nm in enumerate(("query", "key", "value")):
            w[a + nm + "/kernel"] = n(sd[b + "attn.qkv.weight"][j * D:(j + 1) * D].T.reshape(D, H, D // H))
            w[a + nm + "/bias"] = n(sd[b + "attn.qkv.bias"][j * D:(j + 1) * D].reshape(H, D // H))
        w[a + "out/kernel"] = n(sd[b + "attn.proj.weight"].T.reshape(H, D // H, D))
        w[a + "out/bias"] = n(sd[b + "attn.proj.bias"])
        for ln, tn in (("LayerNorm_0", "norm1"), ("LayerNorm_2", "norm2")):
            w[p + ln + "/scale"], w[p + ln + "/bias"] = n(sd[b + tn + ".weight"]), n(sd[b + tn + ".bias"])
        for r in range(2):
            w[p + f"MlpBlock_3/Dense_{r}/kernel"] = n(sd[b + f"mlp.fc{r + 1}.weight"].T)
            w[p + f"MlpBlock_3/Dense_{r}/bias"] = n(sd[b + f"mlp.fc{r + 1}.bias"])
    return {k: np.ascontiguousarray(v) for k, v in w.items()}


def to_hf(sd, m):
    D = m["embed_dim"]
    out = {"vit.embeddings.cls_token": sd["cls_token"], "vit.embeddings.position_embeddings": sd["pos_embed"],
           "vit.embeddings.patch_embeddings.projection.weight": sd["patch_embed.proj.weight"],
           "vit.embeddings.patch_embeddings.projection.bias": sd["patch_embed.proj.bias"],
           "vit.layernorm.weight": sd["norm.weight"], "vit.layernorm.bias": sd["norm.bias"],
           "classifier.weight": sd["head.weight"], "classifier.bias": sd["head.bias"]}
    for i in range(m["depth"]):
        b, p = f"blocks.{i}.", f"vit.encoder.layer.{i}."
        for kind in ("weight", "bias"):
            for j, nm in enumerate(("query", "key", "value")):
                out[p + f"attention.attention.{nm}.{kind}"] = sd[b + f"attn.qkv.{kind}"][j * D:(j + 1) * D].clone()
            for hn, tn in (("attention.output.dense", "attn.proj"), ("layernorm_before", "norm1"),
                           ("layernorm_after", "norm2"), ("intermediate.dense", "mlp.fc1"), ("output.dense", "mlp.fc2")):
                out[p + f"{hn}.{kind}"] = sd[b + f"{tn}.{kind}"]
    return out


def hf_config(m, labels):
    return {"architectures": ["ViTForImageClassification"], "model_type": "vit", "hidden_size": m["embed_dim"],
            "num_hidden_layers": m["depth"], "num_attention_heads": m["num_heads"],
            "intermediate_size": m["mlp_dim"], "hidden_act": "gelu", "layer_norm_eps": m["layer_norm_eps"],
            "image_size": m["image_size"], "patch_size": m["patch_size"], "num_channels": m["in_chans"],
            "qkv_bias": m["qkv_bias"], "id2label": {str(i): s for i, s in enumerate(labels)},
            "label2id": {s: i for i, s in enumerate(labels)}}


def to_torchvision(sd, m):
    from torchvision.models.vision_transformer import VisionTransformer
    tvsd = {"class_token": sd["cls_token"], "conv_proj.weight": sd["patch_embed.proj.weight"],
            "conv_proj.bias": sd["patch_embed.proj.bias"], "encoder.pos_embedding": sd["pos_embed"],
            "encoder.ln.weight": sd["norm.weight"], "encoder.ln.bias": sd["norm.bias"],
            "heads.head.weight": sd["head.weight"], "heads.head.bias": sd["head.bias"]}
    for i in range(m["depth"]):
        b, p = f"blocks.{i}.", f"encoder.layers.encoder_layer_{i}."
        for kind in ("weight", "bias"):
            tvsd[p + f"self_attention.in_proj_{kind}"] = sd[b + f"attn.qkv.{kind}"]
            for tn, tt in (("ln_1", "norm1"), ("self_attention.out_proj", "attn.proj"), ("ln_2", "norm2"),
                           ("mlp.0", "mlp.fc1"), ("mlp.3", "mlp.fc2")):
                tvsd[p + f"{tn}.{kind}"] = sd[b + f"{tt}.{kind}"]
    tv = VisionTransformer(image_size=m["image_size"], patch_size=m["patch_size"], num_layers=m["depth"],
                           num_heads=m["num_heads"], hidden_dim=m["embed_dim"], mlp_dim=m["mlp_dim"],
                           num_classes=m["num_classes"])
    tv.load_state_dict(tvsd, strict=True)           # proves the names/shapes are torchvision's own
    return tv.state_dict()


def make_roundtrip(out):
    m = vit_torch.model_config(ROUNDTRIP)
    sd = random_vit_state_dict(m, 201)
    root = os.path.join(out, "roundtrip")
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    exporter = os.path.join(HERE, "export_weights.py")
    with tempfile.TemporaryDirectory() as tmp:
        labels_txt = os.path.join(tmp, "labels.txt")
        with open(labels_txt, "w") as f:
            f.write("".join(s + "\n" for s in ROUNDTRIP_LABELS))
        torch.save(sd, os.path.join(tmp, "timm.pth"))
        np.savez(os.path.join(tmp, "vit.npz"), **to_npz(sd, m))
        os.makedirs(os.path.join(tmp, "hf"))
        torch.save(to_hf(sd, m), os.path.join(tmp, "hf", "pytorch_model.bin"))
        with open(os.path.join(tmp, "hf", "config.json"), "w") as f:
            json.dump(hf_config(m, ROUNDTRIP_LABELS), f, indent=2)
        torch.save(to_torchvision(sd, m), os.path.join(tmp, "torchvision.pth"))
        runs = {"timm": ["--source", "timm", "--input", os.path.join(tmp, "timm.pth"), "--num-heads", "2",
                         "--labels", labels_txt],
                "npz": ["--source", "timm", "--input", os.path.join(tmp, "vit.npz"), "--labels", labels_txt],
                "hf": ["--source", "hf", "--input", os.path.join(tmp, "hf")],
                "torchvision": ["--source", "torchvision", "--input", os.path.join(tmp, "torchvision.pth"),
                                "--num-heads", "2", "--labels", labels_txt]}
        for name, args in runs.items():
            cmd = [sys.executable, exporter, *args, "--output", os.path.join(root, name), "--verify"]
            print(f"roundtrip/{name}:", file=sys.stderr)
            subprocess.run(cmd, check=True)
    for fn in ("config.json", "model.safetensors", "labels.txt"):
        blobs = {name: open(os.path.join(root, name, fn), "rb").read() for name in runs}
        if len(set(blobs.values())) != 1:
            raise SystemExit(f"roundtrip: {fn} differs between {sorted(blobs)}")
    g = torch.Generator().manual_seed(202)
    x = randn(g, 3, 3, 32, 32)
    save_file({"input": x, "logits": reference_logits(m, sd, x)}, os.path.join(root, "reference.safetensors"),
              metadata=META)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(HERE, "..", "tests", "fixtures"))
    a = ap.parse_args()
    torch.set_num_threads(2)
    os.makedirs(a.out, exist_ok=True)
    for name, spec in TINY.items():
        make_tiny(a.out, name, spec)
    make_ops(a.out)
    make_roundtrip(a.out)


if __name__ == "__main__":
    main()
