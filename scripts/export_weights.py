#!/usr/bin/python3
"""Converts a ViT checkpoint (timm .pth/.safetensors/.npz, Hugging Face ViTForImageClassification, or
torchvision vit_*) into a vit model directory: config.json + model.safetensors + labels.txt.

Everything that tensor shapes determine (embed_dim, patch_size, in_chans, depth, mlp_dim, num_classes,
qkv_bias, class_token, image_size, fc_norm) is inferred; num_heads comes from --num-heads, else the
preset, else the source's own config (HF config.json, the .npz kernel shapes), else embed_dim/64 with a
warning. Other model keys and the preprocessing come from --preset, else timm's ImageNet defaults.

    /usr/bin/python3 scripts/export_weights.py --source timm --input deit_tiny.pth --output out/deit \
        --preset configs/deit_tiny_patch16_224.json --verify

Library use (e.g. a training script): `write_model_dir(out_dir, state_dict, config, labels, dtype)`.
Dimension letters: D embed dim, C in channels, P patch, T tokens, M mlp dim, K classes, H heads.
"""
import argparse
import json
import math
import os
import re
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vit_torch                                            # noqa: E402
from safetensors_io import load_file, save_file             # noqa: E402

IMAGENET_DEFAULT_MEAN = [0.485, 0.456, 0.406]
IMAGENET_DEFAULT_STD = [0.229, 0.224, 0.225]
DEFAULT_CROP_PCT = 0.875
MODEL_KEYS = ["image_size", "patch_size", "in_chans", "embed_dim", "depth", "num_heads", "mlp_dim", "qkv_bias",
              "layer_norm_eps", "num_classes", "class_token", "global_pool", "fc_norm"]
# keys of the model section that tensor shapes decide (global_pool only when fc_norm.* exists)
INFERABLE = {"image_size", "patch_size", "in_chans", "embed_dim", "depth", "mlp_dim", "qkv_bias",
             "num_classes", "class_token", "fc_norm"}
DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}
INTERPOLATIONS = ("bicubic", "bilinear", "nearest")


class ExportError(Exception):
    pass


def warn(msg):
    print(f"export_weights: warning: {msg}", file=sys.stderr)


def shape_str(s):
    return "[" + ", ".join(str(int(d)) for d in s) + "]"


# ----------------------------------------------------------------------------------------------------------
# model directory writing (the public format)

def default_preprocess(image_size=224, in_chans=3):
    """timm's ImageNet eval defaults: resize floor(crop / 0.875), bicubic, ImageNet mean/std."""
    mean = IMAGENET_DEFAULT_MEAN if in_chans == 3 else [0.5] * in_chans
    std = IMAGENET_DEFAULT_STD if in_chans == 3 else [0.5] * in_chans
    return {"resize": int(math.floor(image_size / DEFAULT_CROP_PCT)), "crop": image_size,
            "interpolation": "bicubic", "antialias": True, "mean": list(mean), "std": list(std)}


def expected_shapes(m):
    """{timm tensor name: shape} for a complete `model` config section."""
    D, C, P, M, K = m["embed_dim"], m["in_chans"], m["patch_size"], m["mlp_dim"], m["num_classes"]
    T = (m["image_size"] // P) ** 2 + (1 if m["class_token"] else 0)
    out = {"patch_embed.proj.weight": [D, C, P, P], "patch_embed.proj.bias": [D], "pos_embed": [1, T, D]}
    if m["class_token"]:
        out["cls_token"] = [1, 1, D]
    for i in range(m["depth"]):
        b = f"blocks.{i}."
        out.update({b + "norm1.weight": [D], b + "norm1.bias": [D],
                    b + "attn.qkv.weight": [3 * D, D],
                    b + "attn.proj.weight": [D, D], b + "attn.proj.bias": [D],
                    b + "norm2.weight": [D], b + "norm2.bias": [D],
                    b + "mlp.fc1.weight": [M, D], b + "mlp.fc1.bias": [M],
                    b + "mlp.fc2.weight": [D, M], b + "mlp.fc2.bias": [D]})
        if m["qkv_bias"]:
            out[b + "attn.qkv.bias"] = [3 * D]
    norm = "fc_norm" if (m["global_pool"] == "avg" and m["fc_norm"]) else "norm"
    out.update({norm + ".weight": [D], norm + ".bias": [D], "head.weight": [K, D], "head.bias": [K]})
    return out


def check_state_dict(sd, m, what="state dict"):
    """Raises ExportError naming every missing, unknown or wrong-shape tensor."""
    exp = expected_shapes(m)
    errs = []
    for name, shape in exp.items():
        if name not in sd:
            errs.append(f"missing tensor '{name}' (expected {shape_str(shape)})")
        elif list(sd[name].shape) != shape:
            errs.append(f"tensor '{name}': expected {shape_str(shape)}, got {shape_str(sd[name].shape)}")
        elif not sd[name].is_floating_point():
            errs.append(f"tensor '{name}': expected a floating-point tensor, got {sd[name].dtype}")
    for name in sorted(set(sd) - set(exp)):
        errs.append(f"unknown tensor '{name}' {shape_str(sd[name].shape)}")
    if errs:
        raise ExportError(f"{what} does not match the model config:\n  " + "\n  ".join(errs))


def _need(sd, name, ndim):
    if name not in sd:
        raise ExportError(f"missing tensor '{name}'")
    t = sd[name]
    if t.dim() != ndim:
        raise ExportError(f"tensor '{name}': expected {ndim} dims, got {shape_str(t.shape)}")
    return t


def infer_model_config(sd):
    """The model keys that timm-named tensor shapes determine."""
    w = _need(sd, "patch_embed.proj.weight", 4)
    D, C, P, P2 = w.shape
    if P != P2:
        raise ExportError(f"tensor 'patch_embed.proj.weight': non-square patch {shape_str(w.shape)}")
    m = {"embed_dim": D, "in_chans": C, "patch_size": P, "class_token": "cls_token" in sd}
    pos = _need(sd, "pos_embed", 3)
    n_patches = pos.shape[1] - (1 if m["class_token"] else 0)
    grid = math.isqrt(n_patches) if n_patches > 0 else 0
    if grid * grid != n_patches or n_patches == 0:
        raise ExportError(f"tensor 'pos_embed' {shape_str(pos.shape)}: {n_patches} patch positions is not a "
                          f"square grid")
    m["image_size"] = grid * P
    idx = sorted({int(k.split(".")[1]) for k in sd if re.match(r"blocks\.\d+\.", k)})
    if not idx or idx != list(range(len(idx))):
        raise ExportError(f"block indices are not 0..N-1: {idx}")
    m["depth"] = len(idx)
    m["mlp_dim"] = _need(sd, "blocks.0.mlp.fc1.weight", 2).shape[0]
    m["qkv_bias"] = "blocks.0.attn.qkv.bias" in sd
    m["num_classes"] = _need(sd, "head.weight", 2).shape[0]
    m["fc_norm"] = "fc_norm.weight" in sd
    if m["fc_norm"]:
        m["global_pool"] = "avg"
    return {k: (int(v) if not isinstance(v, (bool, str)) else v) for k, v in m.items()}


def resolve_model_config(sd, given, source_defaults=None, what="config"):
    """Merges shape-inferred keys with `given` (a model section, may be partial); a given key that
    contradicts the tensors is an error. source_defaults fill keys neither gives (e.g. HF eps)."""
    inferred = infer_model_config(sd)
    m = dict(inferred)
    for k, v in (given or {}).items():
        if k not in MODEL_KEYS:
            raise ExportError(f"{what}: unknown model key '{k}'")
        if k in inferred and inferred[k] != v:
            raise ExportError(f"{what} says {k} = {json.dumps(v)} but the weights have {k} = "
                              f"{json.dumps(inferred[k])}")
        m[k] = v
    for k, v in (source_defaults or {}).items():
        m.setdefault(k, v)
    m.setdefault("layer_norm_eps", 1e-6)
    m.setdefault("global_pool", "token" if m["class_token"] else "avg")
    if "num_heads" not in m:
        raise ExportError(f"{what}: num_heads is required (tensor shapes cannot tell it)")
    if m["global_pool"] not in ("token", "avg"):
        raise ExportError(f"{what}: global_pool must be \"token\" or \"avg\", got {json.dumps(m['global_pool'])}")
    if m["global_pool"] == "token" and not m["class_token"]:
        raise ExportError(f"{what}: global_pool \"token\" needs a class token; the weights have no cls_token")
    if m["fc_norm"] and m["global_pool"] != "avg":
        raise ExportError(f"{what}: fc_norm needs global_pool \"avg\"")
    if m["embed_dim"] % m["num_heads"]:
        raise ExportError(f"{what}: embed_dim {m['embed_dim']} is not divisible by num_heads {m['num_heads']}")
    return {k: m[k] for k in MODEL_KEYS}


def check_preprocess(p, in_chans, what="preprocess"):
    for k in ("resize", "crop", "interpolation", "mean", "std"):
        if k not in p:
            raise ExportError(f"{what}: missing key '{k}'")
    if p["interpolation"] not in INTERPOLATIONS:
        raise ExportError(f"{what}: interpolation must be one of {INTERPOLATIONS}, got {p['interpolation']!r}")
    for k in ("mean", "std"):
        if len(p[k]) != in_chans:
            raise ExportError(f"{what}: {k} has {len(p[k])} values, the model has in_chans {in_chans}")
    if p["crop"] > p["resize"]:
        raise ExportError(f"{what}: crop {p['crop']} is larger than resize {p['resize']}")


def write_model_dir(out_dir, state_dict, config, labels, dtype="f32"):
    """Writes out_dir/{config.json, model.safetensors, labels.txt}.

    state_dict: {timm name: tensor}; config: dict with "model" (keys the shapes cannot tell, at least
    num_heads; inferable keys are checked against the tensors) and optionally "preprocess" (else timm's
    ImageNet defaults); labels: list of num_classes strings, or None (then an inline list in
    config["labels"], else "class_0".."class_{K-1}"); dtype: "f32" | "f16" | "bf16".
    Returns the config dict that was written.
    """
    if dtype not in DTYPES:
        raise ExportError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    sd = {k: v.detach().cpu() for k, v in state_dict.items()}
    m = resolve_model_config(sd, config.get("model", {}))
    check_state_dict(sd, m)
    pre = dict(config.get("preprocess") or default_preprocess(m["image_size"], m["in_chans"]))
    pre.setdefault("antialias", True)
    check_preprocess(pre, m["in_chans"])
    if labels is None and isinstance(config.get("labels"), list):
        labels = config["labels"]
    if labels is None:
        labels = [f"class_{i}" for i in range(m["num_classes"])]
    labels = [str(s) for s in labels]
    if len(labels) != m["num_classes"]:
        raise ExportError(f"{len(labels)} labels for num_classes {m['num_classes']}")
    for s in labels:
        if "\n" in s or "\r" in s:
            raise ExportError(f"label {s!r} contains a line break")
    out = {"model": m, "preprocess": pre}
    out.update({k: v for k, v in config.items() if k not in ("model", "preprocess", "labels", "weights")})
    out.update({"labels": "labels.txt", "weights": "model.safetensors"})
    os.makedirs(out_dir, exist_ok=True)
    tdt = DTYPES[dtype]
    save_file({k: v.to(tdt).contiguous() for k, v in sd.items()}, os.path.join(out_dir, "model.safetensors"),
              metadata={"format": "pt"})
    with open(os.path.join(out_dir, "labels.txt"), "w") as f:
        f.write("".join(s + "\n" for s in labels))
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(out, f, indent=2)
        f.write("\n")
    return out


# ----------------------------------------------------------------------------------------------------------
# source checkpoints -> timm names

def _torch_load(path):
    obj = torch.load(path, map_location="cpu")
    if isinstance(obj, dict):
        for key in ("model", "state_dict", "module", "state_dict_ema", "model_ema"):
            if key in obj and isinstance(obj[key], dict) and any(isinstance(v, torch.Tensor)
                                                               for v in obj[key].values()):
                warn(f"{path}: using the '{key}' entry of the checkpoint")
                obj = obj[key]
                break
    if not isinstance(obj, dict):
        raise ExportError(f"{path}: expected a state dict, got {type(obj).__name__}")
    sd = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def load_tensor_file(path):
    if path.endswith(".safetensors"):
        return load_file(path)
    return _torch_load(path)


def _find_in_dir(path, names):
    for n in names:
        p = os.path.join(path, n)
        if os.path.exists(p):
            return p
    raise ExportError(f"{path}: none of {names} found")


def timm_from_timm(sd):
    for k in list(sd):
        if k.startswith("norm_pre.") or k.startswith("head_dist.") or k == "dist_token":
            raise ExportError(f"tensor '{k}': this ViT variant is not supported")
    return dict(sd)


def _n2p(w, t=True):
    """timm's big_vision kernel -> PyTorch layout (HWIO conv -> OIHW, [in,out] dense -> [out,in])."""
    if w.ndim == 4 and w.shape[0] == w.shape[1] == w.shape[2] == 1:
        w = w.flatten()
    if t:
        if w.ndim == 4:
            w = w.transpose([3, 2, 0, 1])
        elif w.ndim == 3:
            w = w.transpose([2, 0, 1])
        elif w.ndim == 2:
            w = w.transpose([1, 0])
    return torch.from_numpy(np.ascontiguousarray(w))


def _npz_layout(w):
    """Returns (prefix, mha, mlp, ln2) naming for augreg ('_1', '_3', '_2') or big_vision ('_0', '_0', '_1')."""
    prefix = ""
    for p in ("opt/target/", "params/"):
        if p + "embedding/kernel" in w:
            prefix = p
    if prefix + "embedding/kernel" not in w:
        raise ExportError("npz: no 'embedding/kernel' (is this a big_vision/augreg ViT?)")
    if prefix + "Transformer/encoderblock_0/MultiHeadDotProductAttention_1/query/kernel" in w:
        return prefix, "MultiHeadDotProductAttention_1", "MlpBlock_3", "LayerNorm_2"
    return prefix, "MultiHeadDotProductAttention_0", "MlpBlock_0", "LayerNorm_1"


def timm_from_npz(w):
    """big_vision/augreg .npz (as timm's _load_weights reads it) -> (timm state dict, num_heads)."""
    prefix, mha, mlp, ln2 = _npz_layout(w)
    used = set()

    def get(name):
        key = prefix + name
        if key not in w:
            raise ExportError(f"npz: missing array '{key}'")
        used.add(key)
        return w[key]

    sd = {"patch_embed.proj.weight": _n2p(get("embedding/kernel")),
          "patch_embed.proj.bias": _n2p(get("embedding/bias"))}
    if prefix + "cls" in w:
        sd["cls_token"] = _n2p(get("cls"), t=False)
    sd["pos_embed"] = _n2p(get("Transformer/posembed_input/pos_embedding"), t=False)
    sd["norm.weight"] = _n2p(get("Transformer/encoder_norm/scale"))
    sd["norm.bias"] = _n2p(get("Transformer/encoder_norm/bias"))
    sd["head.weight"] = _n2p(get("head/kernel"))
    sd["head.bias"] = _n2p(get("head/bias"))
    num_heads = None
    i = 0
    while prefix + f"Transformer/encoderblock_{i}/LayerNorm_0/scale" in w:
        bp, b = f"Transformer/encoderblock_{i}/", f"blocks.{i}."
        mp = bp + mha + "/"
        sd[b + "norm1.weight"] = _n2p(get(bp + "LayerNorm_0/scale"))
        sd[b + "norm1.bias"] = _n2p(get(bp + "LayerNorm_0/bias"))
        qk = get(mp + "query/kernel")                   # [D, H, d]
        if qk.ndim != 3:
            raise ExportError(f"npz: '{prefix}{mp}query/kernel' expected [D, H, d], got {shape_str(qk.shape)}")
        num_heads = int(qk.shape[1])
        sd[b + "attn.qkv.weight"] = torch.cat([_n2p(get(mp + n + "/kernel"), t=False).flatten(1).T
                                               for n in ("query", "key", "value")])
        if prefix + mp + "query/bias" in w:
            sd[b + "attn.qkv.bias"] = torch.cat([_n2p(get(mp + n + "/bias"), t=False).reshape(-1)
                                                 for n in ("query", "key", "value")])
        sd[b + "attn.proj.weight"] = _n2p(get(mp + "out/kernel")).flatten(1)
        sd[b + "attn.proj.bias"] = _n2p(get(mp + "out/bias"))
        for r in range(2):
            sd[b + f"mlp.fc{r + 1}.weight"] = _n2p(get(bp + f"{mlp}/Dense_{r}/kernel"))
            sd[b + f"mlp.fc{r + 1}.bias"] = _n2p(get(bp + f"{mlp}/Dense_{r}/bias"))
        sd[b + "norm2.weight"] = _n2p(get(bp + ln2 + "/scale"))
        sd[b + "norm2.bias"] = _n2p(get(bp + ln2 + "/bias"))
        i += 1
    unknown = sorted(k for k in w.files if k.startswith(prefix) and k not in used)
    if unknown:
        raise ExportError("npz: unsupported arrays (pre_logits / MAP head / other variant?): " + ", ".join(
            f"'{k}' {shape_str(w[k].shape)}" for k in unknown))
    return {k: v.contiguous() for k, v in sd.items()}, num_heads


_HF_LAYER = {
    "layernorm_before": "norm1", "attention.output.dense": "attn.proj", "layernorm_after": "norm2",
    "intermediate.dense": "mlp.fc1", "output.dense": "mlp.fc2",
}
_HF_TOP = {
    "embeddings.cls_token": "cls_token", "embeddings.position_embeddings": "pos_embed",
    "embeddings.patch_embeddings.projection.weight": "patch_embed.proj.weight",
    "embeddings.patch_embeddings.projection.bias": "patch_embed.proj.bias",
    "layernorm.weight": "norm.weight", "layernorm.bias": "norm.bias",
}


def timm_from_hf(sd):
    """transformers ViTForImageClassification state dict -> timm names."""
    out, qkv, unknown = {}, {}, []
    for k, v in sd.items():
        name = k[len("vit."):] if k.startswith("vit.") else k
        if name.startswith("classifier."):
            out["head." + name[len("classifier."):]] = v
        elif name in _HF_TOP:
            out[_HF_TOP[name]] = v
        elif name.startswith("pooler."):
            warn(f"ignoring '{k}' (ViTModel pooler, unused by image classification)")
        elif (mm := re.fullmatch(r"encoder\.layer\.(\d+)\.(.+)\.(weight|bias)", name)):
            i, sub, kind = mm.groups()
            am = re.fullmatch(r"attention\.attention\.(query|key|value)", sub)
            if am:
                qkv[(int(i), kind, am.group(1))] = v
            elif sub in _HF_LAYER:
                out[f"blocks.{i}.{_HF_LAYER[sub]}.{kind}"] = v
            else:
                unknown.append(k)
        else:
            unknown.append(k)
    if unknown:
        raise ExportError("hf: unknown tensors: " + ", ".join(f"'{k}' {shape_str(sd[k].shape)}" for k in unknown))
    for (i, kind) in sorted({(i, kind) for (i, kind, _) in qkv}):
        parts = [(p, qkv.get((i, kind, p))) for p in ("query", "key", "value")]
        missing = [p for p, t in parts if t is None]
        if missing:
            raise ExportError(f"hf: missing tensor 'vit.encoder.layer.{i}.attention.attention.{missing[0]}.{kind}'")
        out[f"blocks.{i}.attn.qkv.{kind}"] = torch.cat([t for _, t in parts], 0)
    return out


def timm_from_torchvision(sd):
    """torchvision.models.vit_* state dict -> timm names."""
    top = {"class_token": "cls_token", "conv_proj.weight": "patch_embed.proj.weight",
           "conv_proj.bias": "patch_embed.proj.bias", "encoder.pos_embedding": "pos_embed",
           "encoder.ln.weight": "norm.weight", "encoder.ln.bias": "norm.bias",
           "heads.head.weight": "head.weight", "heads.head.bias": "head.bias"}
    layer = {"ln_1": "norm1", "self_attention.out_proj": "attn.proj", "ln_2": "norm2",
             "mlp.0": "mlp.fc1", "mlp.3": "mlp.fc2", "mlp.linear_1": "mlp.fc1", "mlp.linear_2": "mlp.fc2"}
    out, unknown = {}, []
    for k, v in sd.items():
        mm = re.fullmatch(r"encoder\.layers\.encoder_layer_(\d+)\.(.+)\.(weight|bias)", k)
        mi = re.fullmatch(r"encoder\.layers\.encoder_layer_(\d+)\.self_attention\.in_proj_(weight|bias)", k)
        if k in top:
            out[top[k]] = v
        elif mi:
            out[f"blocks.{mi.group(1)}.attn.qkv.{mi.group(2)}"] = v
        elif mm and mm.group(2) in layer:
            out[f"blocks.{mm.group(1)}.{layer[mm.group(2)]}.{mm.group(3)}"] = v
        else:
            unknown.append(k)
    if unknown:
        raise ExportError("torchvision: unknown tensors (heads.pre_logits is not supported): " +
                          ", ".join(f"'{k}' {shape_str(sd[k].shape)}" for k in unknown))
    return out


# ----------------------------------------------------------------------------------------------------------
# independent forwards in the source layouts, for --verify

def _ln(x, w, b, eps):
    return torch.nn.functional.layer_norm(x, x.shape[-1:], w, b, eps)


def _attend(q, k, v):                                          # (B, T, H, d) each -> (B, T, H*d)
    a = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(q.shape[-1])
    o = torch.einsum("bhqk,bkhd->bqhd", a.softmax(-1), v)
    return o.flatten(2)


def forward_npz(w, x, eps, global_pool):
    """big_vision ViT in its own (JAX) layout: HWIO conv, [D,H,d] attention kernels, [in,out] dense."""
    prefix, mha, mlp, ln2 = _npz_layout(w)
    g = lambda n: torch.from_numpy(np.asarray(w[prefix + n], dtype=np.float64))   # noqa: E731
    k = g("embedding/kernel")                                  # [P, P, C, D]
    P = k.shape[0]
    B, C, Hh, Ww = x.shape
    xp = x.reshape(B, C, Hh // P, P, Ww // P, P).permute(0, 2, 4, 3, 5, 1)  # (B, gh, gw, P, P, C)
    t = torch.einsum("byxijc,ijcd->byxd", xp, k).flatten(1, 2) + g("embedding/bias")
    if prefix + "cls" in w:
        t = torch.cat([g("cls").expand(B, -1, -1), t], 1)
    t = t + g("Transformer/posembed_input/pos_embedding")
    i = 0
    while prefix + f"Transformer/encoderblock_{i}/LayerNorm_0/scale" in w:
        bp = f"Transformer/encoderblock_{i}/"
        mp = bp + mha + "/"
        y = _ln(t, g(bp + "LayerNorm_0/scale"), g(bp + "LayerNorm_0/bias"), eps)
        qkv = []
        for n in ("query", "key", "value"):
            z = torch.einsum("btd,dhk->bthk", y, g(mp + n + "/kernel"))
            qkv.append(z + g(mp + n + "/bias") if prefix + mp + n + "/bias" in w else z)
        o = _attend(*qkv).reshape(B, t.shape[1], *g(mp + "out/kernel").shape[:2])
        t = t + torch.einsum("bthk,hkd->btd", o, g(mp + "out/kernel")) + g(mp + "out/bias")
        y = _ln(t, g(bp + ln2 + "/scale"), g(bp + ln2 + "/bias"), eps)
        y = torch.nn.functional.gelu(y @ g(bp + mlp + "/Dense_0/kernel") + g(bp + mlp + "/Dense_0/bias"))
        t = t + y @ g(bp + mlp + "/Dense_1/kernel") + g(bp + mlp + "/Dense_1/bias")
        i += 1
    t = _ln(t, g("Transformer/encoder_norm/scale"), g("Transformer/encoder_norm/bias"), eps)
    if global_pool == "avg":
        t = t[:, 1:].mean(1) if prefix + "cls" in w else t.mean(1)
    else:
        t = t[:, 0]
    return t @ g("head/kernel") + g("head/bias")


def forward_hf(sd, x, num_heads, eps):
    """transformers ViTForImageClassification semantics, on its own tensor names (separate q, k, v)."""
    F = torch.nn.functional
    s = {(k[4:] if k.startswith("vit.") else k): v.to(torch.float64) for k, v in sd.items()}
    B = x.shape[0]
    t = F.conv2d(x, s["embeddings.patch_embeddings.projection.weight"],
                 s["embeddings.patch_embeddings.projection.bias"],
                 stride=s["embeddings.patch_embeddings.projection.weight"].shape[-1]).flatten(2).transpose(1, 2)
    t = torch.cat([s["embeddings.cls_token"].expand(B, -1, -1), t], 1) + s["embeddings.position_embeddings"]
    i = 0
    while f"encoder.layer.{i}.layernorm_before.weight" in s:
        p = f"encoder.layer.{i}."
        lin = lambda y, n: F.linear(y, s[p + n + ".weight"], s.get(p + n + ".bias"))   # noqa: E731
        y = _ln(t, s[p + "layernorm_before.weight"], s[p + "layernorm_before.bias"], eps)
        q, k, v = (lin(y, "attention.attention." + n).unflatten(-1, (num_heads, -1))
                   for n in ("query", "key", "value"))
        t = t + lin(_attend(q, k, v), "attention.output.dense")
        y = _ln(t, s[p + "layernorm_after.weight"], s[p + "layernorm_after.bias"], eps)
        t = t + lin(F.gelu(lin(y, "intermediate.dense")), "output.dense")
        i += 1
    t = _ln(t, s["layernorm.weight"], s["layernorm.bias"], eps)
    return F.linear(t[:, 0], s["classifier.weight"], s["classifier.bias"])


def forward_torchvision(sd, m, x):
    from torchvision.models.vision_transformer import VisionTransformer
    tv = VisionTransformer(image_size=m["image_size"], patch_size=m["patch_size"], num_layers=m["depth"],
                           num_heads=m["num_heads"], hidden_dim=m["embed_dim"], mlp_dim=m["mlp_dim"],
                           num_classes=m["num_classes"])
    tv.load_state_dict({k: v.to(torch.float32) for k, v in sd.items()}, strict=True)
    return tv.to(torch.float64).eval()(x)


def verify(out_dir, timm_sd, source_logits_fn, dtype):
    """Checks that the written directory reproduces the source model (float64 compute on both sides)."""
    g = torch.Generator().manual_seed(0)
    model, cfg, labels = vit_torch.load_model_dir(out_dir, torch.float64)
    m = cfg["model"]
    x = torch.randn(2, m["in_chans"], m["image_size"], m["image_size"], generator=g, dtype=torch.float64)
    with torch.no_grad():
        got = model(x)
        want = vit_torch.from_state_dict(m, timm_sd, torch.float64)(x)
        ref_name = "vit_torch on the converted tensors"
        if source_logits_fn is not None:
            want, ref_name = source_logits_fn(x), "the source model"
    if list(got.shape) != [2, m["num_classes"]] or len(labels) != m["num_classes"]:
        raise ExportError(f"verify: logits {shape_str(got.shape)}, {len(labels)} labels, "
                          f"num_classes {m['num_classes']}")
    scale = max(want.abs().max().item(), 1.0)
    diff = (got - want).abs().max().item()
    tol = {"f32": 1e-4, "f16": 2e-2, "bf16": 1e-1}[dtype] * scale
    print(f"export_weights: verify: max |logit diff| vs {ref_name} = {diff:.3g} "
          f"(max |logit| {want.abs().max().item():.3g}, tolerance {tol:.3g})", file=sys.stderr)
    if not diff <= tol:
        raise ExportError(f"verify failed: max |logit diff| {diff:.3g} > {tol:.3g}")


# ----------------------------------------------------------------------------------------------------------

def read_labels(path):
    with open(path) as f:
        return [s for s in f.read().splitlines()]


def load_preset(path):
    with open(path) as f:
        preset = json.load(f)
    labels = preset.get("labels")
    if isinstance(labels, str):
        lp = os.path.join(os.path.dirname(os.path.abspath(path)), labels)
        labels = read_labels(lp) if os.path.exists(lp) else None
        if labels is None:
            warn(f"preset labels file {lp} not found; ignoring it")
    return preset, labels


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", required=True, choices=["timm", "hf", "torchvision"])
    ap.add_argument("--input", required=True, help="checkpoint file (.pth/.bin/.safetensors/.npz) or directory")
    ap.add_argument("--output", required=True, help="model directory to write")
    ap.add_argument("--num-heads", type=int)
    ap.add_argument("--preset", help="config JSON supplying preprocess, labels and non-inferable model keys")
    ap.add_argument("--labels", help="text file, one label per line in class-index order")
    ap.add_argument("--dtype", default="f32", choices=sorted(DTYPES))
    ap.add_argument("--verify", action="store_true", help="compare logits of the written model with the source")
    a = ap.parse_args(argv)

    preset, preset_labels = load_preset(a.preset) if a.preset else ({}, None)
    given = dict(preset.get("model", {}))
    source_model, source_labels, source_heads, source_fn = {}, None, None, None
    path = a.input
    if a.source == "timm":
        if os.path.isdir(path):
            path = _find_in_dir(path, ["model.safetensors", "pytorch_model.bin", "model.npz"])
        if path.endswith(".npz"):
            npz = np.load(path)
            sd, source_heads = timm_from_npz(npz)
            source_fn = "npz"
        else:
            sd = timm_from_timm(load_tensor_file(path))
    elif a.source == "hf":
        cfg_path = os.path.join(path if os.path.isdir(path) else os.path.dirname(path), "config.json")
        if os.path.isdir(path):
            path = _find_in_dir(path, ["model.safetensors", "pytorch_model.bin"])
        raw = load_tensor_file(path)
        sd = timm_from_hf(raw)
        hfc = {}
        if os.path.exists(cfg_path):
            with open(cfg_path) as f:
                hfc = json.load(f)
        else:
            warn(f"no HF config.json beside {path}: HF defaults (layer_norm_eps 1e-12) apply")
        if hfc.get("hidden_act", "gelu") != "gelu":
            raise ExportError(f"hf: hidden_act {hfc['hidden_act']!r} is not supported (vit uses exact erf GELU)")
        source_heads = hfc.get("num_attention_heads")
        source_model["layer_norm_eps"] = hfc.get("layer_norm_eps", 1e-12)
        if "id2label" in hfc:
            source_labels = [hfc["id2label"][k] for k in sorted(hfc["id2label"], key=int)]
        if "image_size" in hfc and hfc["image_size"] != infer_model_config(sd)["image_size"]:
            warn(f"HF config image_size {hfc['image_size']} differs from the position embeddings")
        source_fn = "hf"
    else:
        raw = _torch_load(path)
        sd = timm_from_torchvision(raw)
        source_model["layer_norm_eps"] = 1e-6
        source_fn = "torchvision"

    # num_heads: --num-heads, else preset, else the source's own config, else embed_dim / 64
    D = infer_model_config(sd)["embed_dim"]
    if a.num_heads:
        given["num_heads"] = a.num_heads
    elif "num_heads" not in given:
        if source_heads:
            given["num_heads"] = int(source_heads)
        else:
            given["num_heads"] = max(D // 64, 1)
            warn(f"num_heads is not in the weights; assuming embed_dim/64 = {given['num_heads']} "
                 f"(pass --num-heads or --preset)")
    if source_fn == "npz" and source_heads and given["num_heads"] != source_heads:
        raise ExportError(f"num_heads {given['num_heads']} contradicts the npz attention kernels "
                          f"([D, H, d] with H = {source_heads})")
    for k, v in source_model.items():
        if k in given and given[k] != v:
            warn(f"preset {k} = {given[k]} differs from the source's {v}; using the preset")
    m = resolve_model_config(sd, given, source_model, what=f"preset {a.preset}" if a.preset else "config")

    labels = read_labels(a.labels) if a.labels else (source_labels or preset_labels)
    if labels is not None and len(labels) != m["num_classes"]:
        raise ExportError(f"{len(labels)} labels for num_classes {m['num_classes']}")
    config = {"model": m, "preprocess": preset.get("preprocess") or default_preprocess(m["image_size"],
                                                                                        m["in_chans"])}
    write_model_dir(a.output, sd, config, labels, a.dtype)
    print(f"export_weights: wrote {a.output} (embed_dim {m['embed_dim']}, depth {m['depth']}, heads "
          f"{m['num_heads']}, image {m['image_size']}/{m['patch_size']}, {m['num_classes']} classes, "
          f"{a.dtype})", file=sys.stderr)

    if a.verify:
        fn = None
        if source_fn == "npz":
            fn = lambda x: forward_npz(npz, x, m["layer_norm_eps"], m["global_pool"])           # noqa: E731
        elif source_fn == "hf":
            fn = lambda x: forward_hf(raw, x, m["num_heads"], m["layer_norm_eps"])              # noqa: E731
        elif source_fn == "torchvision":
            fn = lambda x: forward_torchvision(raw, m, x)                                       # noqa: E731
        verify(a.output, sd, fn, a.dtype)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ExportError as e:
        print(f"export_weights: error: {e}", file=sys.stderr)
        sys.exit(1)
