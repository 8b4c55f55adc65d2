"""Float64 PyTorch references for model directories as the Hugging Face Hub serves them (no transformers/timm).

Written from the libraries' sources: transformers `modeling_vit.py`, `modeling_deit.py`, `modeling_dinov2.py`,
`modeling_dinov2_with_registers.py`, `image_processing_{vit,deit,bit}.py`, `image_transforms.py`,
`image_processing_utils.py`; timm `vision_transformer.py`, `deit.py`, `layers/pos_embed.py`,
`data/transforms_factory.py`, `data/config.py`. Each loader reads config.json (+ preprocessor_config.json) and the
safetensors weights exactly as the library would, checks that the tensor names and shapes are exactly those the
library's module tree has (nothing missing, nothing extra), and runs the forward pass in float64.

    load_model_dir(path)          -> HubModel (layout "transformers" or "timm", by the config's keys)
    HubModel.forward(pixels)      -> (logits [B, K], features {"pooled": [B, F] (, "pooled_dist")})
    HubModel.preprocess(pil, run) -> [1, C, S, S] float32, the library's own image pipeline
Dimension letters: B batch, T tokens, D embed dim, H heads, K classes, P patch, G grid side.
"""
import json
import math
import os
import re
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import load_file  # noqa: E402

F64 = torch.float64


class _Dtype:
    dtype = F64

    def to(self, dtype):
        """Runs the forward pass in `dtype` (float64 by default; float32 for long real-weight runs)."""
        self.dtype = dtype
        self.w = {k: v.to(dtype) for k, v in self.w.items()}
        if getattr(self, "pos", None) is not None:
            self.pos = self.pos.to(dtype)
        return self


# ---------------------------------------------------------------------------------------------------------------
# weights

def load_weights(path, single="model.safetensors", index="model.safetensors.index.json"):
    """Reads model.safetensors, or the shards a transformers index names. Returns ({name: tensor}, files)."""
    if os.path.exists(os.path.join(path, single)):
        return load_file(os.path.join(path, single)), [single]
    if os.path.exists(os.path.join(path, index)):
        with open(os.path.join(path, index)) as f:
            weight_map = json.load(f)["weight_map"]
        out = {}
        files = sorted(set(weight_map.values()))
        for shard in files:
            part = load_file(os.path.join(path, shard))
            for name, t in part.items():
                if weight_map.get(name) != shard:
                    raise ValueError(f"{shard}: tensor {name} is not mapped to this shard by {index}")
                out[name] = t
        missing = sorted(set(weight_map) - set(out))
        if missing:
            raise ValueError(f"{index} names tensors no shard holds: {missing[:5]}")
        return out, files
    raise FileNotFoundError(f"{path}: no {single} or {index}")


def check_names(sd, expected, where):
    """expected: {name: shape}. Raises on any missing, extra or wrong-shape tensor (the C++ loader's contract)."""
    missing = sorted(set(expected) - set(sd))
    extra = sorted(set(sd) - set(expected))
    if missing or extra:
        raise ValueError(f"{where}: missing tensors {missing[:6]}, unexpected tensors {extra[:6]}")
    for name, shape in expected.items():
        if list(sd[name].shape) != list(shape):
            raise ValueError(f"{where}: tensor {name} has shape {list(sd[name].shape)}, expected {list(shape)}")


# ---------------------------------------------------------------------------------------------------------------
# shared float64 ops

def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


ACT = {  # transformers ACT2FN names; timm act_layer names map onto the same functions
    "gelu": F.gelu,                                      # exact erf form (nn.GELU)
    "gelu_new": gelu_tanh, "gelu_pytorch_tanh": gelu_tanh, "gelu_tanh": gelu_tanh,
    "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x),
    "relu": F.relu, "silu": F.silu, "swish": F.silu,
}


_MKLDNN = {}   # id(weight) -> (weight, bias) as oneDNN tensors, for float32 runs


def linear(x, w, prefix):
    weight, bias = w[prefix + ".weight"], w.get(prefix + ".bias")
    if x.dtype == torch.float32 and torch.backends.mkldnn.is_available():
        # Debian's torch has a generic reference BLAS (~5 GFLOP/s): long float32 runs take oneDNN's GEMM instead
        if id(weight) not in _MKLDNN:
            b = bias if bias is not None else torch.zeros(weight.shape[0])
            _MKLDNN[id(weight)] = (weight, weight.to_mkldnn(), b.contiguous().to_mkldnn())
        _, mw, mb = _MKLDNN[id(weight)]
        y = torch._C._nn.mkldnn_linear(x.reshape(-1, x.shape[-1]).contiguous().to_mkldnn(), mw, mb)
        return y.to_dense().reshape(*x.shape[:-1], weight.shape[0])
    return F.linear(x, weight, bias)


def layer_norm(x, w, prefix, eps):
    return F.layer_norm(x, (x.shape[-1],), w[prefix + ".weight"], w[prefix + ".bias"], eps)


def attention(q, k, v, heads):                     # (B, T, D) x3 -> (B, T, D)
    B, T, D = q.shape
    split = lambda t: t.reshape(B, T, heads, D // heads).transpose(1, 2)  # noqa: E731
    q, k, v = split(q), split(k), split(v)
    a = (q @ k.transpose(-2, -1)) * (D // heads) ** -0.5
    return (a.softmax(-1) @ v).transpose(1, 2).reshape(B, T, D)


def patch_embed(x, w, prefix):                     # (B, C, H, W) -> (B, G*G, D)
    conv_w = w[prefix + ".weight"]
    y = F.conv2d(x, conv_w, w.get(prefix + ".bias"), stride=conv_w.shape[-1])
    return y.flatten(2).transpose(1, 2)


def interpolate_grid(pos, old, new, *, antialias, float32):
    """(1, old*old, D) -> (1, new_h*new_w, D), bicubic align_corners=False (both libraries' mode)."""
    D = pos.shape[-1]
    g = pos.reshape(1, old, old, D).permute(0, 3, 1, 2)
    dtype = g.dtype
    if float32:
        g = g.to(torch.float32)
    g = F.interpolate(g, size=new, mode="bicubic", align_corners=False, antialias=antialias)
    return g.to(dtype).permute(0, 2, 3, 1).reshape(1, -1, D)


# ---------------------------------------------------------------------------------------------------------------
# transformers: vit, deit, dinov2, dinov2_with_registers

HF_HEADS = {  # architectures entry -> (model_type it belongs to, base prefix, head kind)
    "ViTForImageClassification": ("vit", "vit", "cls"),
    "DeiTForImageClassification": ("deit", "deit", "cls"),
    "DeiTForImageClassificationWithTeacher": ("deit", "deit", "teacher"),
    "Dinov2ForImageClassification": ("dinov2", "dinov2", "cls_mean"),
    "Dinov2WithRegistersForImageClassification": ("dinov2_with_registers", "dinov2_with_registers", "cls_mean"),
}


class HFModel(_Dtype):
    layout = "transformers"

    def __init__(self, path, load=True):
        with open(os.path.join(path, "config.json")) as f:
            c = json.load(f)
        self.path, self.c = path, c
        mt = c["model_type"]
        arch = (c.get("architectures") or [None])[0]
        if arch not in HF_HEADS or HF_HEADS[arch][0] != mt:
            raise ValueError(f"{path}: unsupported model_type {mt!r} / architectures {c.get('architectures')}")
        _, self.prefix, self.head = HF_HEADS[arch]
        self.family = mt
        self.dino = mt.startswith("dinov2")
        self.D, self.L, self.H = c["hidden_size"], c["num_hidden_layers"], c["num_attention_heads"]
        self.eps = c.get("layer_norm_eps", 1e-6 if self.dino else 1e-12)
        self.act = ACT[c.get("hidden_act", "gelu")]
        self.P, self.C = c.get("patch_size", 14 if self.dino else 16), c.get("num_channels", 3)
        self.image_size = c.get("image_size", 224)
        self.qkv_bias = c.get("qkv_bias", True)
        self.K = len(c["id2label"]) if "id2label" in c else c.get("num_labels", 2)
        self.labels = [c["id2label"][str(i)] for i in range(self.K)] if "id2label" in c else None
        self.n_reg = c.get("num_register_tokens", 0) if mt == "dinov2_with_registers" else 0
        self.n_prefix = 2 if mt == "deit" else 1                          # tokens with position embeddings
        self.swiglu = self.dino and c.get("use_swiglu_ffn", False)
        if self.dino:
            hidden = int(self.D * c.get("mlp_ratio", 4))
            self.mlp_hidden = (int(hidden * 2 / 3) + 7) // 8 * 8 if self.swiglu else hidden
        else:
            self.mlp_hidden = c["intermediate_size"]
        if not load:                                                     # config only (fixture generation)
            return
        self.w, self.files = load_weights(path)
        check_names(self.w, self.expected(), path)
        self.w = {k: v.to(F64) for k, v in self.w.items()}
        pp = os.path.join(path, "preprocessor_config.json")
        self.processor = hf_processor_config(pp) if os.path.exists(pp) else None

    def expected(self):
        D, p, M = self.D, self.prefix + ".", self.mlp_hidden
        G = self.image_size // self.P
        e = {p + "embeddings.cls_token": [1, 1, D],
             p + "embeddings.position_embeddings": [1, G * G + self.n_prefix, D],
             p + "embeddings.patch_embeddings.projection.weight": [D, self.C, self.P, self.P],
             p + "embeddings.patch_embeddings.projection.bias": [D],
             p + "layernorm.weight": [D], p + "layernorm.bias": [D]}
        if self.family == "deit":
            e[p + "embeddings.distillation_token"] = [1, 1, D]
        if self.dino:
            if self.family == "dinov2_with_registers" or self.c.get("use_mask_token", True):
                e[p + "embeddings.mask_token"] = [1, D]
            if self.n_reg:
                e[p + "embeddings.register_tokens"] = [1, self.n_reg, D]
        for i in range(self.L):
            q = f"{p}encoder.layer.{i}."
            for n in ("query", "key", "value"):
                e[q + f"attention.attention.{n}.weight"] = [D, D]
                if self.qkv_bias:
                    e[q + f"attention.attention.{n}.bias"] = [D]
            e[q + "attention.output.dense.weight"], e[q + "attention.output.dense.bias"] = [D, D], [D]
            if self.dino:
                norms = ("norm1", "norm2")
                e[q + "layer_scale1.lambda1"], e[q + "layer_scale2.lambda1"] = [D], [D]
                if self.swiglu:
                    e[q + "mlp.weights_in.weight"], e[q + "mlp.weights_in.bias"] = [2 * M, D], [2 * M]
                    e[q + "mlp.weights_out.weight"], e[q + "mlp.weights_out.bias"] = [D, M], [D]
                else:
                    e[q + "mlp.fc1.weight"], e[q + "mlp.fc1.bias"] = [M, D], [M]
                    e[q + "mlp.fc2.weight"], e[q + "mlp.fc2.bias"] = [D, M], [D]
            else:
                norms = ("layernorm_before", "layernorm_after")
                e[q + "intermediate.dense.weight"], e[q + "intermediate.dense.bias"] = [M, D], [M]
                e[q + "output.dense.weight"], e[q + "output.dense.bias"] = [D, M], [D]
            for n in norms:
                e[q + n + ".weight"], e[q + n + ".bias"] = [D], [D]
        heads = {"cls": ["classifier"], "teacher": ["cls_classifier", "distillation_classifier"],
                 "cls_mean": ["classifier"]}[self.head]
        fin = 2 * D if self.head == "cls_mean" else D
        for h in heads:
            e[h + ".weight"], e[h + ".bias"] = [self.K, fin], [self.K]
        return e

    def pos_embed(self, T, h, w):
        """The position embeddings for T prefix+patch tokens at input h x w (each class's interpolate_pos_encoding)."""
        pos = self.w[self.prefix + ".embeddings.position_embeddings"]
        n_pos = pos.shape[1] - self.n_prefix
        if T - self.n_prefix == n_pos and h == w:
            return pos
        old = int(n_pos ** 0.5)
        new = (h // self.P, w // self.P)
        # vit/deit interpolate in the model dtype; dinov2 casts to float32; dinov2_with_registers also antialiases
        grid = interpolate_grid(pos[:, self.n_prefix:], old, new, antialias=self.family == "dinov2_with_registers",
                                float32=self.dino)
        return torch.cat([pos[:, :self.n_prefix], grid], dim=1)

    def forward(self, x):
        w, p = self.w, self.prefix + "."
        x = x.to(self.dtype)
        B, _, h, wd = x.shape
        t = patch_embed(x, w, p + "embeddings.patch_embeddings.projection")
        prefix = [w[p + "embeddings.cls_token"].expand(B, -1, -1)]
        if self.family == "deit":
            prefix.append(w[p + "embeddings.distillation_token"].expand(B, -1, -1))
        t = torch.cat(prefix + [t], dim=1)
        t = t + self.pos_embed(t.shape[1], h, wd)
        if self.n_reg:                                                   # registers after the position embeddings
            t = torch.cat([t[:, :1], w[p + "embeddings.register_tokens"].expand(B, -1, -1), t[:, 1:]], dim=1)
        for i in range(self.L):
            t = self.layer(t, f"{p}encoder.layer.{i}.")
        t = layer_norm(t, w, p + "layernorm", self.eps)
        if self.head == "cls":
            feats = {"pooled": t[:, 0]}
            return linear(t[:, 0], w, "classifier"), feats
        if self.head == "teacher":
            feats = {"pooled": t[:, 0], "pooled_dist": t[:, 1]}
            return (linear(t[:, 0], w, "cls_classifier") + linear(t[:, 1], w, "distillation_classifier")) / 2, feats
        pooled = torch.cat([t[:, 0], t[:, 1 + self.n_reg:].mean(dim=1)], dim=1)
        return linear(pooled, w, "classifier"), {"pooled": pooled}

    def layer(self, t, q):
        w = self.w
        n1, n2 = ("norm1", "norm2") if self.dino else ("layernorm_before", "layernorm_after")
        y = layer_norm(t, w, q + n1, self.eps)
        a = "attention.attention."
        y = attention(linear(y, w, q + a + "query"), linear(y, w, q + a + "key"), linear(y, w, q + a + "value"), self.H)
        y = linear(y, w, q + "attention.output.dense")
        if self.dino:
            y = y * w[q + "layer_scale1.lambda1"]
        t = t + y
        y = layer_norm(t, w, q + n2, self.eps)
        if self.swiglu:
            x1, x2 = linear(y, w, q + "mlp.weights_in").chunk(2, dim=-1)
            y = linear(F.silu(x1) * x2, w, q + "mlp.weights_out")
        elif self.dino:
            y = linear(self.act(linear(y, w, q + "mlp.fc1")), w, q + "mlp.fc2")
        else:
            y = linear(self.act(linear(y, w, q + "intermediate.dense")), w, q + "output.dense")
        if self.dino:
            y = y * w[q + "layer_scale2.lambda1"]
        return t + y

    def run_size(self):
        """The square input size the image pipeline produces (and the model runs at)."""
        pp = self.processor
        if pp is None:
            return self.image_size
        if pp["do_center_crop"]:
            return pp["crop_size"]["height"]
        return pp["size"]["height"]

    def preprocess(self, img, run_size=None):
        if run_size not in (None, self.run_size()):
            raise ValueError("transformers directories run at their processor's size")
        return hf_preprocess(self.processor, img)


# --- transformers image processors (the PIL/numpy path: image_transforms.resize/center_crop/rescale/normalize) ---

IMAGENET_STANDARD = ([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])
OPENAI_CLIP = ([0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711])
HF_PROCESSORS = {  # class -> (its __init__ defaults, default_to_square for `size`)
    "ViTImageProcessor": (dict(do_resize=True, size={"height": 224, "width": 224}, resample=2, do_center_crop=False,
                               do_rescale=True, rescale_factor=1 / 255, do_normalize=True,
                               image_mean=IMAGENET_STANDARD[0], image_std=IMAGENET_STANDARD[1]), True),
    "DeiTImageProcessor": (dict(do_resize=True, size={"height": 256, "width": 256}, resample=3, do_center_crop=True,
                                crop_size={"height": 224, "width": 224}, do_rescale=True, rescale_factor=1 / 255,
                                do_normalize=True, image_mean=IMAGENET_STANDARD[0],
                                image_std=IMAGENET_STANDARD[1]), True),
    "BitImageProcessor": (dict(do_resize=True, size={"shortest_edge": 224}, resample=3, do_center_crop=True,
                               crop_size=224, do_rescale=True, rescale_factor=1 / 255, do_normalize=True,
                               image_mean=OPENAI_CLIP[0], image_std=OPENAI_CLIP[1]), False),
}
HF_PROCESSOR_ALIASES = {"ViTFeatureExtractor": "ViTImageProcessor", "ViTImageProcessorFast": "ViTImageProcessor",
                        "DeiTFeatureExtractor": "DeiTImageProcessor", "DeiTImageProcessorFast": "DeiTImageProcessor",
                        "BitImageProcessorFast": "BitImageProcessor"}


def get_size_dict(size, default_to_square=True):
    """image_processing_utils.get_size_dict for the forms a config can hold (int, [h, w], dict)."""
    if isinstance(size, dict):
        return dict(size)
    if isinstance(size, int):
        return {"height": size, "width": size} if default_to_square else {"shortest_edge": size}
    if isinstance(size, (list, tuple)):
        return {"height": size[0], "width": size[1]}
    raise ValueError(f"unsupported size {size!r}")


def hf_processor_config(path):
    with open(path) as f:
        raw = json.load(f)
    kind = raw.get("image_processor_type") or raw.get("feature_extractor_type")
    kind = HF_PROCESSOR_ALIASES.get(kind, kind)
    if kind not in HF_PROCESSORS:
        raise ValueError(f"{path}: unsupported image processor {kind!r}")
    defaults, square = HF_PROCESSORS[kind]
    pp = dict(defaults)
    pp.update({k: v for k, v in raw.items() if k in defaults})
    pp["kind"] = kind
    pp["size"] = get_size_dict(pp["size"], default_to_square=square)
    pp["crop_size"] = get_size_dict(pp.get("crop_size", 224), default_to_square=True)
    if kind != "BitImageProcessor" and "shortest_edge" in pp["size"]:
        raise ValueError(f"{path}: {kind} needs size with height and width")
    return pp


def hf_output_size(h, w, size):
    if "shortest_edge" in size:                   # get_resize_output_image_size(default_to_square=False)
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = size["shortest_edge"], int(size["shortest_edge"] * long / short)
        return (new_long, new_short) if w <= h else (new_short, new_long)
    return size["height"], size["width"]


def hf_center_crop(a, ch, cw):                   # a: (H, W, C); image_transforms.center_crop incl. zero padding
    H, W = a.shape[:2]
    top, left = (H - ch) // 2, (W - cw) // 2
    if top >= 0 and left >= 0:
        return a[top:top + ch, left:left + cw]
    nh, nw = max(ch, H), max(cw, W)
    out = np.zeros((nh, nw) + a.shape[2:], dtype=a.dtype)
    tp, lp = math.ceil((nh - H) / 2), math.ceil((nw - W) / 2)
    out[tp:tp + H, lp:lp + W] = a
    top, left = top + tp, left + lp
    return out[max(0, top):min(nh, top + ch), max(0, left):min(nw, left + cw)]


def hf_preprocess(pp, img):
    """PIL image -> [1, C, S, S] float32 as the processor's preprocess(): resize, crop, rescale, normalize."""
    a = np.array(img.convert("RGB"))                                    # uint8 (H, W, 3)
    if pp["do_resize"]:
        h, w = hf_output_size(a.shape[0], a.shape[1], pp["size"])
        a = np.array(Image.fromarray(a).resize((w, h), resample=pp["resample"]))
    if pp["do_center_crop"]:
        a = hf_center_crop(a, pp["crop_size"]["height"], pp["crop_size"]["width"])
    if pp["do_rescale"]:
        a = (a.astype(np.float64) * pp["rescale_factor"]).astype(np.float32)
    if pp["do_normalize"]:
        if not np.issubdtype(a.dtype, np.floating):
            a = a.astype(np.float32)
        a = (a - np.array(pp["image_mean"], dtype=a.dtype)) / np.array(pp["image_std"], dtype=a.dtype)
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))).to(torch.float32).unsqueeze(0)


# ---------------------------------------------------------------------------------------------------------------
# timm VisionTransformer / VisionTransformerDistilled

TIMM_SIZES = {"tiny": (192, 12, 3), "small": (384, 12, 6), "medium": (512, 12, 8), "base": (768, 12, 12),
              "large": (1024, 24, 16), "huge": (1280, 32, 16)}


def timm_arch_args(name):
    """The model_args timm's registration for `name` passes (the subset the ViT families here use)."""
    m = re.match(r"^(vit|deit3|deit)_(tiny|small|medium|base|large|huge)_(?:distilled_)?patch(\d+)"
                 r"(?:_[a-z0-9_]*?)?(?:_(\d+))?(?:_[a-z][a-z0-9]*)*$", name)
    if not m:
        raise ValueError(f"unknown timm architecture {name!r}")
    family, size, patch = m.group(1), m.group(2), int(m.group(3))
    img = int(m.group(4)) if m.group(4) else (518 if name.endswith("_dinov2") else 224)
    D, depth, heads = TIMM_SIZES[size]
    a = dict(img_size=img, patch_size=patch, embed_dim=D, depth=depth, num_heads=heads, class_token=True,
             no_embed_class=False, reg_tokens=0, init_values=None, pre_norm=False, fc_norm=None, global_pool="token",
             act_layer="gelu", norm_eps=1e-6, qkv_bias=True, distilled=False, mlp_ratio=4.0)
    if family == "deit" and "_distilled_" in name:
        a["distilled"] = True
    if family == "deit3":
        a.update(no_embed_class=True, init_values=1e-6)
    if "_clip_" in name:
        a.update(pre_norm=True, norm_eps=1e-5)                             # norm_layer=nn.LayerNorm
        if "_clip_quickgelu_" in name:
            a["act_layer"] = "quick_gelu"
    if "_reg4_gap_" in name:
        a.update(class_token=False, no_embed_class=True, global_pool="avg", reg_tokens=4)
    elif "_reg4_" in name:
        a.update(reg_tokens=4, no_embed_class=True)
        if name.endswith("_dinov2"):
            a.update(init_values=1e-5)
    return a


class TimmModel(_Dtype):
    layout = "timm"

    def __init__(self, path, img_size=None, load=True):
        with open(os.path.join(path, "config.json")) as f:
            c = json.load(f)
        self.path, self.c = path, c
        a = timm_arch_args(c["architecture"])
        a.update(c.get("model_args", {}))
        if "global_pool" in c:
            a["global_pool"] = c["global_pool"]
        self.a = a
        self.family = "deit_distilled" if a["distilled"] else "vit"
        self.D, self.L, self.H, self.P = a["embed_dim"], a["depth"], a["num_heads"], a["patch_size"]
        self.native = a["img_size"]
        self.K = c["num_classes"]
        self.labels = c.get("label_names")
        self.n_prefix = (1 if a["class_token"] else 0) + a["reg_tokens"] + (1 if a["distilled"] else 0)
        self.use_fc_norm = a["global_pool"] in ("avg", "avgmax", "max") if a["fc_norm"] is None else a["fc_norm"]
        self.act = ACT[a["act_layer"]]
        self.M = int(self.D * a["mlp_ratio"])
        if not load:                                                     # config only (fixture generation)
            return
        w, self.files = load_weights(path)
        check_names(w, self.expected(), path)
        self.w = {k: v.to(F64) for k, v in w.items()}
        self.set_img_size(img_size or self.native)
        self.pcfg = c["pretrained_cfg"]

    def expected(self):
        D, M, a = self.D, self.M, self.a
        G = self.native // self.P
        e = {"patch_embed.proj.weight": [D, 3, self.P, self.P],
             "pos_embed": [1, G * G + (0 if a["no_embed_class"] else self.n_prefix), D],
             "head.weight": [self.K, D], "head.bias": [self.K]}
        if not a["pre_norm"]:
            e["patch_embed.proj.bias"] = [D]                            # bias=not pre_norm
        else:
            e["norm_pre.weight"], e["norm_pre.bias"] = [D], [D]
        if a["class_token"]:
            e["cls_token"] = [1, 1, D]
        if a["reg_tokens"]:
            e["reg_token"] = [1, a["reg_tokens"], D]
        if a["distilled"]:
            e["dist_token"] = [1, 1, D]
            e["head_dist.weight"], e["head_dist.bias"] = [self.K, D], [self.K]
        norm = "fc_norm" if self.use_fc_norm else "norm"
        e[norm + ".weight"], e[norm + ".bias"] = [D], [D]
        for i in range(self.L):
            b = f"blocks.{i}."
            for n in ("norm1", "norm2"):
                e[b + n + ".weight"], e[b + n + ".bias"] = [D], [D]
            e[b + "attn.qkv.weight"] = [3 * D, D]
            if a["qkv_bias"]:
                e[b + "attn.qkv.bias"] = [3 * D]
            e[b + "attn.proj.weight"], e[b + "attn.proj.bias"] = [D, D], [D]
            e[b + "mlp.fc1.weight"], e[b + "mlp.fc1.bias"] = [M, D], [M]
            e[b + "mlp.fc2.weight"], e[b + "mlp.fc2.bias"] = [D, M], [D]
            if a["init_values"] is not None:
                e[b + "ls1.gamma"], e[b + "ls2.gamma"] = [D], [D]
        return e

    def set_img_size(self, img_size):
        """As timm.create_model(img_size=...) + checkpoint_filter_fn: resample_abs_pos_embed(bicubic, antialias)."""
        self.img_size = img_size
        pos = self.w["pos_embed"]
        n_prefix = 0 if self.a["no_embed_class"] else self.n_prefix
        G = img_size // self.P
        if pos.shape[1] == G * G + n_prefix:
            self.pos = pos
            return
        old = int(math.sqrt(pos.shape[1] - n_prefix))
        grid = interpolate_grid(pos[:, n_prefix:], old, (G, G), antialias=True, float32=True)
        self.pos = torch.cat([pos[:, :n_prefix], grid], dim=1)

    def forward(self, x):
        w, a = self.w, self.a
        x = x.to(self.dtype)
        B = x.shape[0]
        if x.shape[-1] != self.img_size or x.shape[-2] != self.img_size:
            raise ValueError(f"input {list(x.shape)} but the model was set up for {self.img_size} px")
        t = patch_embed(x, w, "patch_embed.proj")
        prefix = []
        if a["class_token"]:
            prefix.append(w["cls_token"].expand(B, -1, -1))
        if a["distilled"]:
            prefix.append(w["dist_token"].expand(B, -1, -1))
        if a["reg_tokens"]:
            prefix.append(w["reg_token"].expand(B, -1, -1))
        if a["no_embed_class"]:
            t = torch.cat(prefix + [t + self.pos], dim=1)
        else:
            t = torch.cat(prefix + [t], dim=1) + self.pos
        eps = a["norm_eps"]
        if a["pre_norm"]:
            t = layer_norm(t, w, "norm_pre", eps)
        for i in range(self.L):
            b = f"blocks.{i}."
            y = layer_norm(t, w, b + "norm1", eps)
            q, k, v = linear(y, w, b + "attn.qkv").chunk(3, dim=-1)
            y = linear(attention(q, k, v, self.H), w, b + "attn.proj")
            t = t + (y * w[b + "ls1.gamma"] if a["init_values"] is not None else y)
            y = layer_norm(t, w, b + "norm2", eps)
            y = linear(self.act(linear(y, w, b + "mlp.fc1")), w, b + "mlp.fc2")
            t = t + (y * w[b + "ls2.gamma"] if a["init_values"] is not None else y)
        if not self.use_fc_norm:
            t = layer_norm(t, w, "norm", eps)
        if a["distilled"]:                                                # VisionTransformerDistilled.forward_head
            feats = {"pooled": t[:, 0], "pooled_dist": t[:, 1]}
            return (linear(t[:, 0], w, "head") + linear(t[:, 1], w, "head_dist")) / 2, feats
        if a["global_pool"] == "token":
            pooled = t[:, 0]
        elif a["global_pool"] == "avg":
            pooled = t[:, self.n_prefix:].mean(dim=1)
        else:
            raise ValueError(f"unsupported global_pool {a['global_pool']!r}")
        if self.use_fc_norm:
            pooled = layer_norm(pooled, w, "fc_norm", eps)
        return linear(pooled, w, "head"), {"pooled": pooled}

    def run_size(self):
        return self.img_size

    def preprocess(self, img, run_size=None):
        return timm_preprocess(self.pcfg, img, run_size or self.img_size)


def timm_preprocess(pcfg, img, img_size):
    """resolve_data_config + transforms_imagenet_eval (torchvision + PIL) at input size img_size (square)."""
    from torchvision import transforms
    modes = {"bicubic": transforms.InterpolationMode.BICUBIC, "bilinear": transforms.InterpolationMode.BILINEAR,
             "nearest": transforms.InterpolationMode.NEAREST, "lanczos": transforms.InterpolationMode.LANCZOS,
             "box": transforms.InterpolationMode.BOX, "hamming": transforms.InterpolationMode.HAMMING}
    crop_pct = pcfg.get("crop_pct") or 0.875
    crop_mode = pcfg.get("crop_mode") or "center"
    interp = modes[pcfg.get("interpolation") or "bicubic"]
    mean = pcfg.get("mean", (0.485, 0.456, 0.406))
    std = pcfg.get("std", (0.229, 0.224, 0.225))
    scale = math.floor(img_size / crop_pct)
    if crop_mode == "squash":
        tfl = [transforms.Resize((scale, scale), interpolation=interp), transforms.CenterCrop((img_size, img_size))]
    elif crop_mode == "center":
        tfl = [transforms.Resize(scale, interpolation=interp), transforms.CenterCrop((img_size, img_size))]
    else:
        raise ValueError(f"unsupported crop_mode {crop_mode!r}")
    tf = transforms.Compose(tfl + [transforms.ToTensor(), transforms.Normalize(mean, std)])
    return tf(img.convert("RGB")).unsqueeze(0)


# ---------------------------------------------------------------------------------------------------------------

def load_model_dir(path, img_size=None):
    """A Hub directory of either layout: transformers (config has model_type) or timm (config has architecture)."""
    with open(os.path.join(path, "config.json")) as f:
        c = json.load(f)
    if "architecture" in c and "pretrained_cfg" in c:
        return TimmModel(path, img_size)
    if "model_type" in c:
        return HFModel(path)
    raise ValueError(f"{path}/config.json: neither a transformers (model_type) nor a timm (architecture) config")
