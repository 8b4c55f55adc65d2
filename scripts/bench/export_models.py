#!/usr/bin/python3
"""Benchmark models: random-init torchvision ViTs as ONNX files (for onnxruntime) and vit model directories.

    /usr/bin/python3 scripts/bench/export_models.py --out /tmp/vit-bench/models [--archs vit_b_16,vit_s_16,vit_ti_16]

For each architecture, with torch.manual_seed(--seed) before the model is built, writes
    OUT/<arch>.pth     the torchvision state dict
    OUT/<arch>.onnx    torch.onnx.export of the same model (eval, opset 14, constant folding, dynamic batch)
    OUT/<arch>/        scripts/export_weights.py --source torchvision --preset configs/<preset> --verify
Needs Debian's /usr/bin/python3 (torch 1.13, torchvision 0.14). The weights are random, so only speed and
agreement between the two runtimes mean anything; run.py checks vit against onnxruntime on these files.
"""
import argparse
import os
import subprocess
import sys
import time
import warnings

import torch
from torchvision.models import vit_b_16
from torchvision.models.vision_transformer import VisionTransformer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# arch -> (VisionTransformer kwargs, preset in configs/). The presets give labels and preprocessing only;
# the architecture keys they carry agree with these.
ARCHS = {
    "vit_b_16": (dict(num_layers=12, num_heads=12, hidden_dim=768, mlp_dim=3072), "vit_base_patch16_224.json"),
    "vit_s_16": (dict(num_layers=12, num_heads=6, hidden_dim=384, mlp_dim=1536), "deit_small_patch16_224.json"),
    "vit_ti_16": (dict(num_layers=12, num_heads=3, hidden_dim=192, mlp_dim=768), "deit_tiny_patch16_224.json"),
    # ViT-S/14 at DINOv2's 518x518 (1370 tokens): the long-sequence attention row. No preset: every model key
    # is inferred from the weights, preprocessing is timm's default for the size.
    "vit_s_14_518": (dict(num_layers=12, num_heads=6, hidden_dim=384, mlp_dim=1536, image_size=518, patch_size=14),
                     None),
}


def log(msg):
    print(f"export_models: {msg}", file=sys.stderr, flush=True)


def build(arch, seed):
    torch.manual_seed(seed)
    kw, _ = ARCHS[arch]
    if arch == "vit_b_16":
        model = vit_b_16()
    else:
        model = VisionTransformer(**dict(dict(image_size=224, patch_size=16), **kw))
    # torchvision zero-initialises the head, which would make every logit 0 and the parity check vacuous.
    with torch.no_grad():
        model.heads.head.weight.normal_(0.0, kw["hidden_dim"] ** -0.5)
        model.heads.head.bias.normal_(0.0, 0.1)
    return model.eval()


def export_onnx(model, path, opset):
    x = torch.randn(1, 3, model.image_size, model.image_size)
    # Grad stays enabled on purpose: with requires_grad parameters nn.MultiheadAttention skips its fused
    # fast path (torch._native_multi_head_attention), which has no ONNX symbolic in torch 1.13.
    torch.onnx.export(model, x, path, opset_version=opset, do_constant_folding=True,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--archs", default=",".join(ARCHS), help=f"comma-separated subset of {','.join(ARCHS)}")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--opset", type=int, default=14)
    ap.add_argument("--no-verify", action="store_true", help="skip export_weights.py's float64 logits check "
                    "(minutes for the big models on a loaded machine; run.py checks parity against ORT anyway)")
    a = ap.parse_args()
    archs = [s for s in a.archs.split(",") if s]
    bad = [s for s in archs if s not in ARCHS]
    if bad:
        ap.error(f"unknown arch {bad[0]!r}; known: {', '.join(ARCHS)}")
    os.makedirs(a.out, exist_ok=True)
    torch.set_num_threads(max(os.cpu_count() or 1, 1))
    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)  # the image-size asserts, traced away

    for arch in archs:
        t0 = time.time()
        model = build(arch, a.seed)
        pth = os.path.join(a.out, f"{arch}.pth")
        onnx_path = os.path.join(a.out, f"{arch}.onnx")
        model_dir = os.path.join(a.out, arch)
        torch.save(model.state_dict(), pth)
        export_onnx(model, onnx_path, a.opset)
        kw, preset = ARCHS[arch]
        preset_args = ["--preset", os.path.join(ROOT, "configs", preset)] if preset else []
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "export_weights.py"),
                        "--source", "torchvision", "--input", pth, "--output", model_dir,
                        "--num-heads", str(kw["num_heads"])] + preset_args + ([] if a.no_verify else ["--verify"]), check=True)
        log(f"{arch}: wrote {onnx_path} and {model_dir}/ ({time.time() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
