#!/usr/bin/python3
"""Writes tests/fixtures/hub/: small random-weight model directories exactly as the Hugging Face Hub serves them.

    /usr/bin/python3 scripts/make_hub_fixtures.py [--out tests/fixtures/hub]

Deterministic (one seed per case). For every case in CASES:
    <case>/                    config.json (+ preprocessor_config.json), model.safetensors (F32, the library's
                               tensor names) or transformers' shards + model.safetensors.index.json
    <case>.reference.safetensors  (float32; the float64 reference of scripts/hub_reference.py, stored f32)
        pixels [2, C, S, S]        standard normal model input at the run size S
        logits [2, K]              the model's logits for `pixels`
        pooled [2, F]              the feature the classifier sees (DINOv2: [cls, patch mean], F = 2D;
                                   distilled DeiT: the class token; pooled_dist: the distillation token)
        image_pixels [1, C, S, S]  photo.png through the directory's own image pipeline
        image_logits [1, K]        the logits for image_pixels
    cases.json                 [{"case", "layout", "family", "run_image_size", "notes", ...}]
    photo.png                  a 61x47 crop of scikit-image's chelsea.png (CC0)
and the negative directories bad_* that a loader must refuse. Every directory is reloaded through the
reference loader and its logits checked against the stored ones; the script prints max |logit| per case.
"""
import argparse
import json
import os
import shutil
import sys

import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import hub_reference as ref                     # noqa: E402
from safetensors_io import save_file            # noqa: E402

F64 = torch.float64
IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
LABELS = ["apple", "banana split", "cherry, sour", "date palm", "elderberry", "fig", "grape (white)", "honeydew",
          "ice plant", "jackfruit"]
PHOTO = "/usr/lib/python3/dist-packages/skimage/data/chelsea.png"


# ---------------------------------------------------------------------------------------------------------------
# config writers (the key sets transformers' save_pretrained and timm's push_to_hf_hub write)

def hf_config(model_type, arch, *, D, L, H, K, image, patch, act="gelu", eps=1e-12, qkv_bias=True, **extra):
    c = {"architectures": [arch], "attention_probs_dropout_prob": 0.0, "hidden_act": act,
         "hidden_dropout_prob": 0.0, "hidden_size": D, "id2label": {str(i): LABELS[i] for i in range(K)},
         "image_size": image, "initializer_range": 0.02, "label2id": {LABELS[i]: i for i in range(K)},
         "layer_norm_eps": eps, "model_type": model_type, "num_attention_heads": H, "num_channels": 3,
         "num_hidden_layers": L, "patch_size": patch, "qkv_bias": qkv_bias, "torch_dtype": "float32",
         "transformers_version": "4.46.3"}
    if model_type in ("vit", "deit"):
        c.update(encoder_stride=patch, intermediate_size=extra.pop("intermediate_size"))
    else:
        c.update(drop_path_rate=0.0, layerscale_value=1.0, mlp_ratio=extra.pop("mlp_ratio", 4),
                 use_swiglu_ffn=extra.pop("use_swiglu_ffn", False), apply_layernorm=True,
                 reshape_hidden_states=True, out_features=["stage%d" % L], out_indices=[L],
                 stage_names=["stem"] + ["stage%d" % (i + 1) for i in range(L)])
        if model_type == "dinov2":
            c["use_mask_token"] = True
    c.update(extra)
    return c


def hf_processor(kind, *, legacy=False, **kw):
    """preprocessor_config.json; legacy=True writes the old feature-extractor form (int sizes, no rescale keys)."""
    if legacy:
        out = {"feature_extractor_type": kind.replace("ImageProcessor", "FeatureExtractor")}
    else:
        out = {"image_processor_type": kind, "do_rescale": True, "rescale_factor": 1 / 255}
    out.update(kw)
    return out


def timm_config(arch, *, K, D, model_args, pcfg=None, global_pool="token", label_names=None):
    c = {"architecture": arch, "num_classes": K, "num_features": D, "global_pool": global_pool}
    if label_names:
        c["label_names"] = label_names
    if model_args:
        c["model_args"] = model_args
    size = model_args.get("img_size", 224)
    p = {"tag": "fixture", "custom_load": False, "input_size": [3, size, size], "fixed_input_size": True,
         "interpolation": "bicubic", "crop_pct": 0.875, "crop_mode": "center", "mean": IMAGENET[0],
         "std": IMAGENET[1], "num_classes": K, "pool_size": None, "first_conv": "patch_embed.proj",
         "classifier": "head"}
    p.update(pcfg or {})
    c["pretrained_cfg"] = p
    return c


# ---------------------------------------------------------------------------------------------------------------
# cases: (name, layout, family, seed, config, processor (transformers), notes, options)

def vit_args(img=24, patch=4, D=16, depth=2, heads=2, mlp_ratio=2.0, **kw):
    return dict(img_size=img, patch_size=patch, embed_dim=D, depth=depth, num_heads=heads, mlp_ratio=mlp_ratio, **kw)


HF_VIT = dict(D=16, L=2, H=2, K=7, image=24, patch=6, intermediate_size=32)
VIT_PROC = dict(do_normalize=True, do_resize=True, image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5],
                resample=2, size={"height": 24, "width": 24})
DINO_PROC = dict(crop_size={"height": 28, "width": 28}, do_center_crop=True, do_convert_rgb=True,
                 do_normalize=True, do_resize=True, image_mean=IMAGENET[0], image_std=IMAGENET[1], resample=3,
                 size={"shortest_edge": 32})

CASES = [
    dict(case="hf_vit", layout="transformers", family="vit", seed=1001,
         config=hf_config("vit", "ViTForImageClassification", **HF_VIT),
         processor=hf_processor("ViTImageProcessor", **VIT_PROC),
         notes="ViTForImageClassification, gelu (erf), layer_norm_eps 1e-12; ViTImageProcessor size {height,width} "
               "= exact resize 61x47 -> 24x24 (no aspect kept), bilinear (2), no crop, mean/std 0.5"),
    dict(case="hf_vit_gelu_new", layout="transformers", family="vit", seed=1002,
         config=hf_config("vit", "ViTForImageClassification", act="gelu_new", qkv_bias=False,
                          **dict(HF_VIT, D=16, H=4, K=5, image=24, patch=8, intermediate_size=40)),
         processor=hf_processor("ViTImageProcessor", **dict(VIT_PROC, size={"height": 24, "width": 24},
                                                              resample=0)),
         notes="hidden_act gelu_new (tanh approximation); qkv_bias false (no query/key/value biases); "
               "patch 8, 4 heads, nearest resample (0) to 24x24"),
    dict(case="hf_vit_quick_gelu", layout="transformers", family="vit", seed=1003,
         config=hf_config("vit", "ViTForImageClassification", act="quick_gelu", eps=1e-6,
                          **dict(HF_VIT, D=24, H=3, K=10, image=30, patch=6, intermediate_size=48)),
         processor=hf_processor("ViTImageProcessor", **dict(VIT_PROC, size={"height": 30, "width": 30}, resample=3,
                                                              image_mean=IMAGENET[0], image_std=IMAGENET[1])),
         notes="hidden_act quick_gelu (x * sigmoid(1.702 x)), layer_norm_eps 1e-6, 3 heads; "
               "bicubic (3) resize to 30x30, ImageNet mean/std"),
    dict(case="hf_vit_interp", layout="transformers", family="vit", seed=1004,
         config=hf_config("vit", "ViTForImageClassification", **HF_VIT),
         processor=hf_processor("ViTImageProcessor", **dict(VIT_PROC, size={"height": 36, "width": 36})),
         notes="config image_size 24 (4x4 position grid) but the processor makes 36x36: the model runs at 36 "
               "with interpolate_pos_encoding (bicubic, align_corners=False, no antialias, in the model dtype) "
               "to a 6x6 grid"),
    dict(case="hf_vit_sharded", layout="transformers", family="vit", seed=1005,
         config=hf_config("vit", "ViTForImageClassification", **HF_VIT),
         processor=hf_processor("ViTImageProcessor", **VIT_PROC), shards=2,
         notes="as hf_vit, weights in model-00001-of-00002.safetensors + model-00002-of-00002.safetensors with "
               "model.safetensors.index.json (no model.safetensors)"),
    dict(case="hf_deit_distilled", layout="transformers", family="deit", seed=1006,
         config=hf_config("deit", "DeiTForImageClassificationWithTeacher", **dict(HF_VIT, K=6)),
         processor=hf_processor("DeiTImageProcessor", legacy=True, crop_size=24, do_center_crop=True,
                                do_normalize=True, do_resize=True, image_mean=IMAGENET[0], image_std=IMAGENET[1],
                                resample=3, size=27),
         notes="DeiTForImageClassificationWithTeacher: cls + distillation token (position embeddings for N+2), "
               "logits = (cls_classifier(tok0) + distillation_classifier(tok1)) / 2; legacy DeiTFeatureExtractor "
               "config: int size 27 = 27x27 (get_size_dict default_to_square), int crop_size 24, bicubic, no "
               "do_rescale keys (defaults 1/255); crop margin 3: top = left = 3 // 2 = 1 (torchvision would "
               "round to 2)"),
    dict(case="hf_deit", layout="transformers", family="deit", seed=1007,
         config=hf_config("deit", "DeiTForImageClassification", **dict(HF_VIT, K=8, D=20, H=4, intermediate_size=60)),
         processor=hf_processor("DeiTImageProcessor", crop_size={"height": 24, "width": 24}, do_center_crop=True,
                                do_normalize=True, do_resize=True, image_mean=IMAGENET[0], image_std=IMAGENET[1],
                                resample=3, size={"height": 35, "width": 35}),
         notes="DeiTForImageClassification: distillation token present in the sequence (N+2 positions) but the "
               "single classifier reads token 0; crop 35 -> 24, top = left = 11 // 2 = 5 (torchvision: "
               "round(5.5) = 6)"),
    dict(case="hf_dinov2", layout="transformers", family="dinov2", seed=1008,
         config=hf_config("dinov2", "Dinov2ForImageClassification", D=16, L=2, H=2, K=6, image=40, patch=4,
                          eps=1e-6, mlp_ratio=2),
         processor=hf_processor("BitImageProcessor", **DINO_PROC),
         notes="Dinov2ForImageClassification: layer_scale lambda1, head on cat[cls, mean(patch tokens)] (2D "
               "inputs), mask_token stored but unused; position embeddings for a 10x10 grid (image_size 40, "
               "like 518 px) run on the processor's 28x28 crop (7x7): bicubic align_corners=False, no antialias, "
               "computed in float32; BitImageProcessor shortest_edge 32 (61x47 -> 41x32), crop 28 at top 2, "
               "left 6"),
    dict(case="hf_dinov2_swiglu", layout="transformers", family="dinov2", seed=1009,
         config=hf_config("dinov2", "Dinov2ForImageClassification", D=16, L=2, H=2, K=5, image=28, patch=4,
                          eps=1e-6, use_swiglu_ffn=True),
         processor=hf_processor("BitImageProcessor", **DINO_PROC),
         notes="use_swiglu_ffn: mlp.weights_in [2*48, 16] (hidden int(16*4)=64 -> (int(64*2/3)+7)//8*8 = 48), "
               "x1, x2 = chunk(2); silu(x1) * x2 -> weights_out; runs at its native 28 px (no interpolation)"),
    dict(case="hf_dinov2_registers", layout="transformers", family="dinov2_with_registers", seed=1010,
         config=hf_config("dinov2_with_registers", "Dinov2WithRegistersForImageClassification", D=16, L=2, H=4,
                          K=6, image=40, patch=4, eps=1e-6, mlp_ratio=2, num_register_tokens=4),
         processor=hf_processor("BitImageProcessor", **DINO_PROC),
         notes="4 register tokens inserted after the position embeddings (sequence cls, reg x4, patches), "
               "excluded from the patch mean; its interpolate_pos_encoding uses antialias=True (bicubic, "
               "float32), 10x10 -> 7x7"),
    dict(case="timm_vit", layout="timm", family="vit", seed=2001,
         config=timm_config("vit_base_patch8_224", K=7, D=16, model_args=vit_args(),
                            pcfg=dict(crop_pct=0.875, interpolation="bicubic")),
         notes="VisionTransformer, class token, global_pool token, final norm; model_args override the "
               "architecture's size (num_heads from model_args); crop_pct 0.875: resize shorter side to "
               "floor(24/0.875)=27, torchvision CenterCrop 24"),
    dict(case="timm_deit3", layout="timm", family="vit", seed=2002,
         config=timm_config("deit3_small_patch16_224", K=5, D=16, model_args=vit_args(heads=4),
                            pcfg=dict(crop_pct=1.0), label_names=LABELS[:5]),
         notes="DeiT III: ls1/ls2.gamma layer scale (init_values), no_embed_class (pos_embed [1, 36, D] for patches "
               "only; the class token gets no position embedding); crop_pct 1.0; label_names in config.json"),
    dict(case="timm_deit_distilled", layout="timm", family="deit_distilled", seed=2003,
         config=timm_config("deit_tiny_distilled_patch16_224", K=6, D=16, model_args=vit_args(),
                            pcfg=dict(classifier=["head", "head_dist"])),
         notes="VisionTransformerDistilled: cls_token, dist_token, pos_embed for N+2, eval logits = "
               "(head(tok0) + head_dist(tok1)) / 2"),
    dict(case="timm_reg", layout="timm", family="vit", seed=2004,
         config=timm_config("vit_base_patch16_reg4_gap_256", K=5, D=16, model_args=vit_args(),
                            global_pool="avg", pcfg=dict(crop_pct=0.95, mean=[0.5] * 3, std=[0.5] * 3)),
         notes="as vit_*_reg4_gap_*: no class token, reg_token [1, 4, D] (no position embedding: "
               "no_embed_class), global_pool avg over the patch tokens only, fc_norm (no final norm)"),
    dict(case="timm_reg_dinov2", layout="timm", family="vit", seed=2009,
         config=timm_config("vit_small_patch14_reg4_dinov2", K=6, D=16,
                            model_args=vit_args(heads=4, mlp_ratio=4.0),
                            pcfg=dict(crop_pct=1.0)),
         notes="as vit_*_reg4_dinov2: class token then 4 reg tokens (sequence cls, reg x4, patches), "
               "no_embed_class (position embeddings on the patches only), ls1/ls2.gamma (init_values), "
               "mlp_ratio 4, global_pool token"),
    dict(case="timm_clip_quickgelu", layout="timm", family="vit", seed=2005,
         config=timm_config("vit_base_patch16_clip_quickgelu_224", K=5, D=16, model_args=vit_args(),
                            pcfg=dict(crop_pct=1.0, mean=ref.OPENAI_CLIP[0], std=ref.OPENAI_CLIP[1]),
                            label_names=LABELS[5:10]),
         notes="CLIP image tower: norm_pre after the position embeddings, patch_embed.proj without bias, "
               "LayerNorm eps 1e-5 (nn.LayerNorm), quick_gelu; OpenAI CLIP mean/std"),
    dict(case="timm_avg_fcnorm", layout="timm", family="vit", seed=2006,
         config=timm_config("vit_small_patch16_224", K=7, D=16, model_args=vit_args(global_pool="avg"),
                            global_pool="avg", pcfg=dict(interpolation="bilinear")),
         notes="class token kept but global_pool avg over the patch tokens (prefix excluded), fc_norm instead of "
               "the final norm; bilinear"),
    dict(case="timm_resample", layout="timm", family="vit", seed=2007, run_image_size=32,
         config=timm_config("vit_base_patch8_224", K=6, D=16, model_args=vit_args()),
         notes="trained at 24 (6x6 grid), run at 32 (--image-size 32): resample_abs_pos_embed to 8x8 (bicubic, "
               "antialias=True, float32; prefix token kept); image pipeline at input size 32: resize "
               "floor(32/0.875)=36, crop 32"),
    dict(case="timm_squash", layout="timm", family="vit", seed=2008,
         config=timm_config("vit_base_patch8_224", K=5, D=16, model_args=vit_args(),
                            pcfg=dict(crop_mode="squash", crop_pct=0.9, interpolation="bilinear")),
         notes="crop_mode squash: Resize((26, 26)) ignoring the aspect ratio, then CenterCrop 24"),
]

# ---------------------------------------------------------------------------------------------------------------

def random_weights(expected, seed):
    """Deterministic random tensors for {name: shape}, scaled so every part of the network matters."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name in sorted(expected):
        shape = expected[name]
        n = torch.randn(*shape, generator=g, dtype=F64)
        leaf = name.rsplit(".", 1)[-1]
        if leaf in ("lambda1", "gamma"):                             # layer scale: positive, well away from 1
            t = 0.2 + 0.6 * torch.rand(*shape, generator=g, dtype=F64)
        elif len(shape) == 1 and "norm" in name:                     # LayerNorm weight / bias
            t = 1.0 + 0.2 * n if leaf == "weight" else 0.1 * n
        elif leaf == "bias":
            t = 0.1 * n
        elif leaf == "weight":
            fan_in = 1
            for s in shape[1:]:
                fan_in *= s
            t = n / fan_in ** 0.5 * (2.0 if name.split(".")[0] in ("classifier", "cls_classifier",
                                                                    "distillation_classifier", "head",
                                                                    "head_dist") else 1.0)
        else:                                                        # tokens, position embeddings
            t = 0.5 * n
        out[name] = t.to(torch.float32)
    return out


def write_json(path, obj):
    with open(path, "w") as f:
        f.write(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_weights(folder, layout, weights, shards=1):
    meta = {"format": "pt"} if layout == "transformers" else None
    if shards == 1:
        save_file(weights, os.path.join(folder, "model.safetensors"), metadata=meta)
        return
    names = sorted(weights)
    per = (len(names) + shards - 1) // shards
    weight_map, total = {}, 0
    for s in range(shards):
        fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        part = {n: weights[n] for n in names[s * per:(s + 1) * per]}
        save_file(part, os.path.join(folder, fname), metadata=meta)
        for n, t in part.items():
            weight_map[n] = fname
            total += t.numel() * t.element_size()
    write_json(os.path.join(folder, "model.safetensors.index.json"),
               {"metadata": {"total_size": total}, "weight_map": weight_map})


def make_photo(out):
    img = Image.open(PHOTO).convert("RGB")                            # 451x300
    img = img.crop((80, 20, 380, 250)).resize((61, 47), Image.LANCZOS)
    img.save(os.path.join(out, "photo.png"), optimize=True)
    return Image.open(os.path.join(out, "photo.png"))


def write_case(out, case, photo):
    folder = os.path.join(out, case["case"])
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    if case["layout"] == "transformers":
        write_json(os.path.join(folder, "config.json"), case["config"])
        write_json(os.path.join(folder, "preprocessor_config.json"), case["processor"])
        expected = ref.HFModel(folder, load=False).expected()
    else:
        with open(os.path.join(folder, "config.json"), "w") as f:
            f.write(json.dumps(case["config"], indent=2) + "\n")
        expected = ref.TimmModel(folder, load=False).expected()
    weights = random_weights(expected, case["seed"])
    write_weights(folder, case["layout"], weights, case.get("shards", 1))

    model = ref.load_model_dir(folder, img_size=case.get("run_image_size"))
    S = model.run_size()
    g = torch.Generator().manual_seed(case["seed"] + 7)
    pixels = torch.randn(2, 3, S, S, generator=g, dtype=torch.float32)
    with torch.no_grad():
        logits, feats = model.forward(pixels.to(F64))
        image_pixels = model.preprocess(photo, S)
        image_logits, _ = model.forward(image_pixels.to(F64))
    tensors = {"pixels": pixels, "logits": logits.float(), "image_pixels": image_pixels,
               "image_logits": image_logits.float()}
    tensors.update({k: v.float() for k, v in feats.items()})
    save_file(tensors, os.path.join(out, case["case"] + ".reference.safetensors"),
              metadata={"reference": "float64 PyTorch reference (scripts/hub_reference.py), stored float32",
                        "case": case["case"], "run_image_size": str(S)})
    return S


def check_case(out, case, photo):
    """Reload the written folder from disk and compare with the stored reference."""
    folder = os.path.join(out, case["case"])
    stored = ref.load_file(os.path.join(out, case["case"] + ".reference.safetensors"))
    model = ref.load_model_dir(folder, img_size=case.get("run_image_size"))
    with torch.no_grad():
        logits, feats = model.forward(stored["pixels"].to(F64))
        image_pixels = model.preprocess(photo, model.run_size())
        image_logits, _ = model.forward(stored["image_pixels"].to(F64))
    scale = float(stored["logits"].abs().max())
    assert torch.allclose(logits.float(), stored["logits"], atol=1e-5 * scale, rtol=0), case["case"]
    assert torch.allclose(feats["pooled"].float(), stored["pooled"], atol=1e-5, rtol=1e-5), case["case"]
    assert torch.equal(image_pixels, stored["image_pixels"]), case["case"]
    assert torch.allclose(image_logits.float(), stored["image_logits"], atol=1e-5 * scale, rtol=0), case["case"]
    return scale, float(stored["image_logits"].abs().max()), list(stored["logits"].shape)


def cross_check(out):
    """The transformers reference on timm weights renamed by convert_layout.py must give the timm reference's logits:
    two implementations written from two libraries' sources checked against each other."""
    import tempfile
    import convert_layout
    for case in ("timm_vit", "timm_deit_distilled"):
        with open(os.path.join(out, case, "config.json")) as f:
            args = json.load(f)["model_args"]
        with tempfile.TemporaryDirectory() as tmp:
            convert_layout.main(["--to", "transformers", "--input", os.path.join(out, case, "model.safetensors"),
                                 "--output", tmp, "--num-heads", str(args["num_heads"]), "--layer-norm-eps", "1e-6"])
            hf = ref.load_model_dir(tmp)
            stored = ref.load_file(os.path.join(out, case + ".reference.safetensors"))
            with torch.no_grad():
                diff = (hf.forward(stored["pixels"].to(F64))[0].float() - stored["logits"]).abs().max().item()
        assert diff <= 1e-5 * float(stored["logits"].abs().max()), (case, diff)
        print(f"{case:22s} as transformers {hf.family}/{hf.head}: max |logit diff| {diff:.2e}")


def write_negatives(out):
    """Directories a loader must refuse, each with the reason it should name."""
    src = os.path.join(out, "hf_vit")
    cases = []
    d = os.path.join(out, "bad_bin_only")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    shutil.copy(os.path.join(src, "config.json"), d)
    torch.save({"classifier.bias": torch.zeros(7)}, os.path.join(d, "pytorch_model.bin"))
    cases.append(dict(case="bad_bin_only", layout="transformers", family=None, run_image_size=None, expect_error=True,
                      notes="only pytorch_model.bin (a PyTorch pickle) and config.json, no safetensors: refuse, "
                            "naming pytorch_model.bin and pointing at the exporter"))
    d = os.path.join(out, "bad_model_type")
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(src, d)
    with open(os.path.join(d, "config.json")) as f:
        c = json.load(f)
    c.update(model_type="swin", architectures=["SwinForImageClassification"])
    write_json(os.path.join(d, "config.json"), c)
    cases.append(dict(case="bad_model_type", layout="transformers", family=None, run_image_size=None,
                      expect_error=True, notes='model_type "swin" (SwinForImageClassification): refuse, naming it'))
    d = os.path.join(out, "bad_extra_tensor")
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(src, d)
    sd = ref.load_file(os.path.join(d, "model.safetensors"))
    sd["vit.embeddings.unexpected_token"] = torch.zeros(1, 1, 16)
    save_file(sd, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    cases.append(dict(case="bad_extra_tensor", layout="transformers", family=None, run_image_size=None,
                      expect_error=True, notes="hf_vit plus a tensor vit.embeddings.unexpected_token [1, 1, 16]: "
                                               "refuse, naming the tensor"))
    for c in cases:
        try:
            ref.load_model_dir(os.path.join(out, c["case"]))
        except (ValueError, FileNotFoundError) as e:
            print(f"{c['case']:22s} refused by the reference: {e}")
        else:
            raise AssertionError(f"{c['case']}: the reference loader accepted it")
    return cases


def main():
    root = os.path.normpath(os.path.join(HERE, ".."))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(root, "tests", "fixtures", "hub"))
    a = ap.parse_args()
    torch.set_num_threads(2)
    os.makedirs(a.out, exist_ok=True)
    photo = make_photo(a.out)
    listing = []
    for case in CASES:
        S = write_case(a.out, case, photo)
        native = None if case["layout"] == "timm" and not case.get("run_image_size") else S
        if case["layout"] == "transformers" and S == case["config"]["image_size"]:
            native = None
        listing.append(dict(case=case["case"], layout=case["layout"], family=case["family"],
                            run_image_size=native, notes=case["notes"]))
    for case in CASES:
        scale, img_scale, shape = check_case(a.out, case, photo)
        print(f"{case['case']:22s} {case['layout']:12s} logits {shape}  max|logit| {scale:.4f}  "
              f"image max|logit| {img_scale:.4f}")
    cross_check(a.out)
    listing += write_negatives(a.out)
    write_json(os.path.join(a.out, "cases.json"), listing)
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(a.out) for f in fs)
    print(f"{len(listing)} cases, {total} bytes in {a.out}")


if __name__ == "__main__":
    main()
