#!/usr/bin/python3
"""Real weights in Hub layouts: DeiT-tiny as a transformers and as a timm directory on the 1000 ImageNet samples.

    /usr/bin/python3 scripts/make_hub_deit_reference.py [--shared ../shared] [--out tests/fixtures/deit_tiny]
                                                        [--layout transformers|timm] [--threads N]

Rewrites ../shared/models/deit-tiny-imagenet/model.safetensors with scripts/convert_layout.py into
/tmp/vit-hub-deit/{transformers,timm}, then runs each directory's own pipeline from scripts/hub_reference.py
(transformers: DeiTFeatureExtractor config, resize 256x256 bicubic, crop 224 at (256-224)//2, ViT model;
timm: resize shorter side to floor(224/0.875)=256 bicubic, torchvision CenterCrop 224, VisionTransformer) over
the images of data/imagenet-sample in sorted file-name order, in float32. Writes
    transformers_top1.txt, timm_top1.txt    "<file name> <top-1 index>" per image
and prints top-1 / top-5 accuracy of each (labels: the file name's wnid, in synset_words.txt order).
"""
import argparse
import os
import subprocess
import sys

import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import hub_reference as ref                          # noqa: E402
from imagenet_sample import Score, sample_files      # noqa: E402


def main():
    root = os.path.normpath(os.path.join(HERE, ".."))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", default=os.path.join(root, "..", "shared"))
    ap.add_argument("--out", default=os.path.join(root, "tests", "fixtures", "deit_tiny"))
    ap.add_argument("--work", default="/tmp/vit-hub-deit")
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--limit", type=int, help="only the first N images (quick checks; writes nothing)")
    ap.add_argument("--layout", choices=["transformers", "timm"], action="append",
                    help="only this layout (repeatable; default both: run one process per layout in parallel)")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    layouts = a.layout or ["transformers", "timm"]

    weights = os.path.join(a.shared, "models", "deit-tiny-imagenet", "model.safetensors")
    for layout in layouts:
        subprocess.run([sys.executable, os.path.join(HERE, "convert_layout.py"), "--to", layout, "--input", weights,
                        "--output", os.path.join(a.work, layout)], check=True)
    img_dir, files, wnid_index = sample_files(a.shared, a.limit)

    for layout in layouts:
        model = ref.load_model_dir(os.path.join(a.work, layout)).to(torch.float32)
        score = Score(wnid_index)
        with torch.no_grad():
            for s in range(0, len(files), a.batch):
                names = files[s:s + a.batch]
                x = torch.cat([model.preprocess(Image.open(os.path.join(img_dir, n))) for n in names])
                logits, _ = model.forward(x)
                score.add(names, logits)
                print(f"\r{layout}: {s + len(names)}/{len(files)}", end="", file=sys.stderr)
        print(file=sys.stderr)
        if not a.limit:
            os.makedirs(a.out, exist_ok=True)
            with open(os.path.join(a.out, f"{layout}_top1.txt"), "w") as f:
                f.writelines(f"{n} {top1}\n" for n, top1, _ in score.rows)
        print(f"{layout:12s} {score.summary()}")


if __name__ == "__main__":
    main()
