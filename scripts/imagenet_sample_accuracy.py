#!/usr/bin/env python3
"""Top-1 / top-5 accuracy of `vit classify --format jsonl` records on the ImageNet sample (../shared).

    build/vit classify --format jsonl --model models/deit-tiny-imagenet ../shared/data/imagenet-sample \
        | scripts/imagenet_sample_accuracy.py [--synsets ../shared/data/imagenet-sample/synset_words.txt]

A file's true class is the line number of its wnid prefix (`n01440764_tench.JPEG` -> n01440764) in
synset_words.txt, the ImageNet-1k class-index order (as tests/test_deit.cpp and scripts/make_deit_reference.py).
Standard library only.
"""
import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--synsets", default=os.path.join(ROOT, "../shared/data/imagenet-sample/synset_words.txt"))
    args = ap.parse_args()
    with open(args.synsets) as f:
        index = {line.split()[0]: i for i, line in enumerate(f) if line.strip()}
    n = top1 = top5 = errors = 0
    for line in sys.stdin:
        rec = json.loads(line)
        if "error" in rec:
            errors += 1
            continue
        wnid = os.path.basename(rec["path"]).split("_", 1)[0]
        if wnid not in index:
            sys.exit(f"{rec['path']}: wnid {wnid!r} is not in {args.synsets}")
        truth = index[wnid]
        got = [c["index"] for c in rec["top_k"]]
        if len(got) < 5:
            sys.exit(f"{rec['path']}: {len(got)} classes in the record, need top 5 (--top-k 5)")
        n += 1
        top1 += got[0] == truth
        top5 += truth in got[:5]
    if n == 0:
        sys.exit("no records on stdin")
    print(f"n {n}  top-1 {top1 / n:.4f}  top-5 {top5 / n:.4f}  unreadable {errors}")


if __name__ == "__main__":
    main()
