"""Reference Vision Transformer in plain PyTorch, with timm's module tree and tensor names.

The C++ engine is checked against this module (fixtures), the default model is trained with it, and the
exporter uses it for round trips. It reads the same `model` section as vit's config.json, so one config
drives both implementations. Dimension letters: B batch, T tokens, D embed dim, H heads, K classes.
"""
import json
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

MODEL_DEFAULTS = {
    "image_size": 224, "patch_size": 16, "in_chans": 3, "embed_dim": 768, "depth": 12, "num_heads": 12,
    "mlp_dim": 3072, "qkv_bias": True, "layer_norm_eps": 1e-6, "num_classes": 1000, "class_token": True,
    "global_pool": "token", "fc_norm": False,
}


def model_config(cfg):
    """Fills defaults into a `model` config section (dict)."""
    out = dict(MODEL_DEFAULTS)
    out.update(cfg)
    return out


class PatchEmbed(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.proj = nn.Conv2d(c["in_chans"], c["embed_dim"], c["patch_size"], c["patch_size"])

    def forward(self, x):                       # (B, C, H, W) -> (B, T, D)
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c["embed_dim"]
        self.num_heads = c["num_heads"]
        self.qkv = nn.Linear(d, 3 * d, bias=c["qkv_bias"])
        self.proj = nn.Linear(d, d)

    def forward(self, x):                       # (B, T, D) -> (B, T, D)
        B, T, D = x.shape
        H = self.num_heads
        qkv = self.qkv(x).reshape(B, T, 3, H, D // H).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]        # (B, H, T, d)
        attn = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(D // H))
        attn = attn.softmax(dim=-1)
        y = (attn @ v).transpose(1, 2).reshape(B, T, D)
        return self.proj(y)


class Mlp(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.fc1 = nn.Linear(c["embed_dim"], c["mlp_dim"])
        self.fc2 = nn.Linear(c["mlp_dim"], c["embed_dim"])

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))    # exact (erf) GELU


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        eps = c["layer_norm_eps"]
        self.norm1 = nn.LayerNorm(c["embed_dim"], eps=eps)
        self.attn = Attention(c)
        self.norm2 = nn.LayerNorm(c["embed_dim"], eps=eps)
        self.mlp = Mlp(c)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        c = model_config(cfg)
        self.cfg = c
        d = c["embed_dim"]
        n_patches = (c["image_size"] // c["patch_size"]) ** 2
        self.patch_embed = PatchEmbed(c)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d)) if c["class_token"] else None
        n_tokens = n_patches + (1 if c["class_token"] else 0)
        self.pos_embed = nn.Parameter(torch.randn(1, n_tokens, d) * 0.02)
        self.blocks = nn.Sequential(*[Block(c) for _ in range(c["depth"])])
        use_fc_norm = c["global_pool"] == "avg" and c["fc_norm"]
        self.norm = nn.LayerNorm(d, eps=c["layer_norm_eps"]) if not use_fc_norm else nn.Identity()
        self.fc_norm = nn.LayerNorm(d, eps=c["layer_norm_eps"]) if use_fc_norm else nn.Identity()
        self.head = nn.Linear(d, c["num_classes"])
        if self.cls_token is not None:
            nn.init.normal_(self.cls_token, std=1e-6)
        self.apply(_init_weights)

    def forward_features(self, x):              # (B, C, H, W) -> (B, T, D)
        x = self.patch_embed(x)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self.pos_embed
        x = self.blocks(x)
        return self.norm(x)

    def forward_pre_logits(self, x):            # (B, T, D) -> (B, D): what the head sees (timm's pre_logits)
        if self.cfg["global_pool"] == "avg":
            x = x[:, 1:].mean(dim=1) if self.cls_token is not None else x.mean(dim=1)
        else:
            x = x[:, 0]
        return self.fc_norm(x)

    def forward_head(self, x):                  # (B, T, D) -> (B, K)
        return self.head(self.forward_pre_logits(x))

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


def _init_weights(m):
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def load_config(path):
    with open(path) as f:
        return json.load(f)


def from_state_dict(cfg, state_dict, dtype=torch.float32):
    """Builds a VisionTransformer for a `model` config section and loads a timm-named state dict (strict)."""
    model = VisionTransformer(cfg)
    model.load_state_dict({k: v.to(torch.float32) for k, v in state_dict.items()}, strict=True)
    return model.to(dtype).eval()


def load_model_dir(path, dtype=torch.float32):
    """Loads a vit model directory (config.json, weights, labels). Returns (model, config dict, labels list)."""
    import os
    from safetensors_io import load_file
    config = load_config(os.path.join(path, "config.json"))
    sd = load_file(os.path.join(path, config.get("weights", "model.safetensors")))
    labels = config.get("labels")
    if isinstance(labels, str):
        with open(os.path.join(path, labels)) as f:
            labels = f.read().splitlines()
    return from_state_dict(config["model"], sd, dtype), config, labels
