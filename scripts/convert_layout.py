#!/usr/bin/env python3
"""Rewrites a timm-named ViT/DeiT safetensors file as a Hugging Face Hub directory (pure Python: no torch/numpy).

    scripts/convert_layout.py --to transformers|timm --input X.safetensors --output DIR
                              [--architecture deit_tiny_patch16_224] [--num-heads N] [--labels FILE]

--to transformers: a `vit` (ViTForImageClassification) directory, or `deit` (DeiTForImageClassificationWithTeacher)
    when the input has dist_token/head_dist: names as transformers' modeling_vit.py/modeling_deit.py, the fused
    blocks.N.attn.qkv split by row ranges into attention.attention.{query,key,value}; config.json as
    save_pretrained writes it (layer_norm_eps 1e-12 and hidden_act gelu as facebook/deit-* ship); id2label from
    --labels (default configs/imagenet_labels.txt for 1000 classes); preprocessor_config.json as
    facebook/deit-tiny-patch16-224 ships it (DeiTFeatureExtractor, legacy int size 256 / crop_size 224 for 224 px,
    bicubic, ImageNet mean/std).
--to timm: a timm hub directory: the tensors unchanged, config.json with architecture, num_classes, num_features,
    global_pool and timm's pretrained_cfg for it (crop_pct 0.875, bicubic, ImageNet mean/std).
The model's sizes come from the tensor shapes; the head count (which shapes cannot tell) from --num-heads or the
architecture name (tiny 3, small 6, base 12, large 16). Tensors are copied byte for byte (F32, F16 or BF16).
"""
import argparse
import json
import os
import re
import struct
import sys

HEADS = {"tiny": 3, "small": 6, "base": 12, "large": 16, "huge": 16}
ITEM = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8}
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def fail(msg):
    raise SystemExit(f"convert_layout: {msg}")


def read_safetensors(path):
    """Returns ({name: (dtype, shape, bytes)}, metadata)."""
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 8:
        fail(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", buf[:8])
    if 8 + n > len(buf):
        fail(f"{path}: header length {n} runs past the end of the file")
    header = json.loads(buf[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", None) or {}
    out = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        count = 1
        for s in info["shape"]:
            count *= s
        if info["dtype"] not in ITEM or end - begin != count * ITEM[info["dtype"]] or 8 + n + end > len(buf):
            fail(f"{path}: tensor {name} {info['dtype']}{info['shape']} has bad offsets [{begin}, {end}]")
        out[name] = (info["dtype"], list(info["shape"]), buf[8 + n + begin:8 + n + end])
    return out, meta


def write_safetensors(path, tensors, metadata=None):
    header, offset = {}, 0
    if metadata:
        header["__metadata__"] = metadata
    names = sorted(tensors)
    for name in names:
        dtype, shape, data = tensors[name]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * (-len(hjson) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for name in names:
            f.write(tensors[name][2])
    os.replace(tmp, path)


def rows(t, begin, end):
    """Rows [begin, end) of a row-major tensor (first dimension), as a new tensor."""
    dtype, shape, data = t
    per_row = len(data) // shape[0]
    return dtype, [end - begin] + shape[1:], data[begin * per_row:end * per_row]


def describe(sd, args):
    """Sizes from the shapes; checks that the names are a timm ViT/DeiT the target layouts can hold."""
    for required in ("patch_embed.proj.weight", "pos_embed", "cls_token", "head.weight", "norm.weight"):
        if required not in sd:
            fail(f"{args.input}: tensor {required} is missing (expected a timm ViT/DeiT with a class token)")
    for unsupported in ("reg_token", "fc_norm.weight", "norm_pre.weight", "blocks.0.ls1.gamma"):
        if unsupported in sd:
            fail(f"{args.input}: tensor {unsupported}: this variant has no transformers `vit`/`deit` equivalent")
    D, C, P, _ = sd["patch_embed.proj.weight"][1]
    depth = 0
    while f"blocks.{depth}.attn.qkv.weight" in sd:
        depth += 1
    distilled = "dist_token" in sd
    n_prefix = 2 if distilled else 1
    n_pos = sd["pos_embed"][1][1] - n_prefix
    grid = int(round(n_pos ** 0.5))
    if grid * grid != n_pos:
        fail(f"{args.input}: pos_embed has {n_pos} patch positions, not a square grid")
    m = re.match(r"^(?:vit|deit3?)_([a-z]+)_", args.architecture)
    heads = args.num_heads or (HEADS.get(m.group(1)) if m else None)
    if not heads or D % heads:
        fail(f"cannot tell the number of heads for embed dim {D}: pass --num-heads")
    return dict(D=D, C=C, P=P, depth=depth, heads=heads, image=grid * P, K=sd["head.weight"][1][0],
                M=sd["blocks.0.mlp.fc1.weight"][1][0], qkv_bias="blocks.0.attn.qkv.bias" in sd,
                distilled=distilled)


def to_transformers(sd, d):
    p = "deit." if d["distilled"] else "vit."
    out = {p + "embeddings.cls_token": sd["cls_token"], p + "embeddings.position_embeddings": sd["pos_embed"],
           p + "embeddings.patch_embeddings.projection.weight": sd["patch_embed.proj.weight"],
           p + "embeddings.patch_embeddings.projection.bias": sd["patch_embed.proj.bias"],
           p + "layernorm.weight": sd["norm.weight"], p + "layernorm.bias": sd["norm.bias"]}
    if d["distilled"]:
        out[p + "embeddings.distillation_token"] = sd["dist_token"]
        heads = {"cls_classifier": "head", "distillation_classifier": "head_dist"}
    else:
        heads = {"classifier": "head"}
    for hf, timm in heads.items():
        out[hf + ".weight"], out[hf + ".bias"] = sd[timm + ".weight"], sd[timm + ".bias"]
    D = d["D"]
    for i in range(d["depth"]):
        b, q = f"blocks.{i}.", f"{p}encoder.layer.{i}."
        names = {"norm1": "layernorm_before", "norm2": "layernorm_after", "attn.proj": "attention.output.dense",
                 "mlp.fc1": "intermediate.dense", "mlp.fc2": "output.dense"}
        for timm, hf in names.items():
            for leaf in ("weight", "bias"):
                out[f"{q}{hf}.{leaf}"] = sd[f"{b}{timm}.{leaf}"]
        for j, n in enumerate(("query", "key", "value")):
            out[f"{q}attention.attention.{n}.weight"] = rows(sd[b + "attn.qkv.weight"], j * D, (j + 1) * D)
            if d["qkv_bias"]:
                out[f"{q}attention.attention.{n}.bias"] = rows(sd[b + "attn.qkv.bias"], j * D, (j + 1) * D)
    used = {"cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias", "norm.weight",
            "norm.bias", "dist_token", "head.weight", "head.bias", "head_dist.weight", "head_dist.bias"}
    left = [k for k in sd if k not in used and not k.startswith("blocks.")]
    if left:
        fail(f"tensors with no transformers equivalent: {left[:5]}")
    return out


def labels_for(K, path):
    if path is None:
        return [f"LABEL_{i}" for i in range(K)]
    with open(path) as f:
        labels = f.read().splitlines()
    if len(labels) != K:
        fail(f"{path} has {len(labels)} labels, the head has {K} classes")
    return labels


def transformers_config(d, labels, eps):
    mt, arch = ("deit", "DeiTForImageClassificationWithTeacher") if d["distilled"] else \
        ("vit", "ViTForImageClassification")
    return {"architectures": [arch], "attention_probs_dropout_prob": 0.0, "encoder_stride": d["P"],
            "hidden_act": "gelu", "hidden_dropout_prob": 0.0, "hidden_size": d["D"],
            "id2label": {str(i): lab for i, lab in enumerate(labels)}, "image_size": d["image"],
            "initializer_range": 0.02, "intermediate_size": d["M"],
            "label2id": {lab: i for i, lab in enumerate(labels)}, "layer_norm_eps": eps, "model_type": mt,
            "num_attention_heads": d["heads"], "num_channels": d["C"], "num_hidden_layers": d["depth"],
            "patch_size": d["P"], "qkv_bias": d["qkv_bias"], "torch_dtype": "float32",
            "transformers_version": "4.46.3"}


def deit_processor(image):
    # facebook/deit-*-patch16-224: size 256 for crop 224 (the 224/256 = 0.875 crop ratio), legacy int sizes
    return {"crop_size": image, "do_center_crop": True, "do_normalize": True, "do_resize": True,
            "feature_extractor_type": "DeiTFeatureExtractor", "image_mean": IMAGENET_MEAN,
            "image_std": IMAGENET_STD, "resample": 3, "size": image * 256 // 224}


def timm_config(d, arch):
    cls = ["head", "head_dist"] if d["distilled"] else "head"
    return {"architecture": arch, "num_classes": d["K"], "num_features": d["D"], "global_pool": "token",
            "pretrained_cfg": {"tag": "fb_in1k", "custom_load": False, "input_size": [d["C"], d["image"], d["image"]],
                               "fixed_input_size": True, "interpolation": "bicubic", "crop_pct": 0.875,
                               "crop_mode": "center", "mean": IMAGENET_MEAN, "std": IMAGENET_STD,
                               "num_classes": d["K"], "pool_size": None, "first_conv": "patch_embed.proj",
                               "classifier": cls}}


def write_json(path, obj, sort_keys):
    with open(path, "w") as f:
        f.write(json.dumps(obj, indent=2, sort_keys=sort_keys) + "\n")


def main(argv=None):
    root = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--to", required=True, choices=["transformers", "timm"])
    ap.add_argument("--input", required=True, help="timm-named .safetensors")
    ap.add_argument("--output", required=True, help="directory to write (created)")
    ap.add_argument("--architecture", default="deit_tiny_patch16_224", help="timm model name (config, heads)")
    ap.add_argument("--num-heads", type=int, help="attention heads (default: from --architecture)")
    ap.add_argument("--labels", help="one label per line (default: configs/imagenet_labels.txt for 1000 "
                                     "classes, else LABEL_i)")
    ap.add_argument("--layer-norm-eps", type=float, default=1e-12, help="transformers config (default 1e-12, "
                                                                        "as facebook/deit-* ship)")
    a = ap.parse_args(argv)
    sd, _ = read_safetensors(a.input)
    d = describe(sd, a)
    os.makedirs(a.output, exist_ok=True)
    if a.to == "transformers":
        labels_path = a.labels or (os.path.join(root, "configs", "imagenet_labels.txt") if d["K"] == 1000 else None)
        out = to_transformers(sd, d)
        write_safetensors(os.path.join(a.output, "model.safetensors"), out, {"format": "pt"})
        write_json(os.path.join(a.output, "config.json"),
                   transformers_config(d, labels_for(d["K"], labels_path), a.layer_norm_eps), True)
        write_json(os.path.join(a.output, "preprocessor_config.json"), deit_processor(d["image"]), True)
    else:
        write_safetensors(os.path.join(a.output, "model.safetensors"), sd)
        cfg = timm_config(d, a.architecture)
        if a.labels:                                   # timm's optional label_names (ImageNet models carry none)
            cfg["label_names"] = labels_for(d["K"], a.labels)
        write_json(os.path.join(a.output, "config.json"), cfg, False)
    print(f"{a.output}: {a.to} layout, {len(sd)} -> {len(out) if a.to == 'transformers' else len(sd)} tensors, "
          f"embed {d['D']}, depth {d['depth']}, heads {d['heads']}, {d['image']} px, {d['K']} classes"
          f"{', distilled' if d['distilled'] else ''}", file=sys.stderr)


if __name__ == "__main__":
    main()
