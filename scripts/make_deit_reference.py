#!/usr/bin/python3
"""Real-weights reference: DeiT-tiny on the 1000-image ImageNet sample with the PIL/torchvision pipeline.

    /usr/bin/python3 scripts/make_deit_reference.py [--shared ../shared] [--out tests/fixtures/deit_tiny]

Preprocessing follows configs/deit_tiny_patch16_224.json exactly as timm/torchvision do it: PIL image
converted to RGB -> Resize(shorter side, bicubic, antialiased) -> CenterCrop -> ToTensor -> Normalize.
Images are processed in sorted filename order. Writes:
    reference.safetensors   logits [20, 1000] f32 for the first 20 images (float64 forward, stored f32)
    pil_top1.txt            "<filename> <pil_top1_index> <true_index>" for all 1000 images
                            (float32 forward; true index = line of the file's wnid in synset_words.txt)
and prints top-1 / top-5 accuracy (expected 0.7950 / 0.9480).
"""
import argparse
import os
import sys

import torch
from PIL import Image
from torchvision import transforms

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import vit_torch                                    # noqa: E402
from imagenet_sample import Score, sample_files     # noqa: E402
from safetensors_io import load_file, save_file     # noqa: E402

N_LOGITS = 20
INTERP = {"bicubic": transforms.InterpolationMode.BICUBIC, "bilinear": transforms.InterpolationMode.BILINEAR,
          "nearest": transforms.InterpolationMode.NEAREST}


def pil_transform(pre):
    return transforms.Compose([
        transforms.Resize(pre["resize"], interpolation=INTERP[pre["interpolation"]]),
        transforms.CenterCrop(pre["crop"]),
        transforms.ToTensor(),
        transforms.Normalize(pre["mean"], pre["std"]),
    ])


def main():
    root = os.path.normpath(os.path.join(HERE, ".."))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", default=os.path.join(root, "..", "shared"))
    ap.add_argument("--config", default=os.path.join(root, "configs", "deit_tiny_patch16_224.json"))
    ap.add_argument("--out", default=os.path.join(root, "tests", "fixtures", "deit_tiny"))
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--limit", type=int, help="only the first N images (quick determinism checks)")
    a = ap.parse_args()
    torch.set_num_threads(2)

    cfg = vit_torch.load_config(a.config)
    sd = load_file(os.path.join(a.shared, "models", "deit-tiny-imagenet", "model.safetensors"))
    model = vit_torch.from_state_dict(cfg["model"], sd, torch.float32)
    img_dir, files, wnid_index = sample_files(a.shared, a.limit)
    tf = pil_transform(cfg["preprocess"])

    score, first = Score(wnid_index), None
    with torch.no_grad():
        for s in range(0, len(files), a.batch):
            names = files[s:s + a.batch]
            x = torch.stack([tf(Image.open(os.path.join(img_dir, n)).convert("RGB")) for n in names])
            logits = model(x)
            if first is None:
                first = x[:N_LOGITS]
            score.add(names, logits)
            print(f"\r{s + len(names)}/{len(files)}", end="", file=sys.stderr)
        print(file=sys.stderr)
        ref = vit_torch.from_state_dict(cfg["model"], sd, torch.float64)(first.to(torch.float64))
    f32_top1 = [top1 for _, top1, _ in score.rows[:N_LOGITS]]
    if ref.argmax(1).tolist() != f32_top1:
        print("warning: float64 and float32 top-1 differ on the first images", file=sys.stderr)

    os.makedirs(a.out, exist_ok=True)
    save_file({"logits": ref.to(torch.float32)}, os.path.join(a.out, "reference.safetensors"),
              metadata={"reference": f"DeiT-tiny float64 logits of the first {N_LOGITS} images of "
                                     f"imagenet-sample in sorted filename order, PIL pipeline, stored float32"})
    with open(os.path.join(a.out, "pil_top1.txt"), "w") as f:
        f.writelines(f"{n} {top1} {true}\n" for n, top1, true in score.rows)
    print(score.summary())


if __name__ == "__main__":
    main()
