#!/usr/bin/python3
"""Linear-probe benchmark: `vit fit` on CIFAR-10 with the DeiT-tiny backbone, next to a PyTorch reference.

    /usr/bin/python3 scripts/bench/linear_probe_cifar.py [--vit build/vit] [--per-class 50] [--seed 0]
                                                         [--test-per-class N] [--work DIR] [--json FILE]

Needs Debian's /usr/bin/python3 (torch 1.13, numpy) and ../shared/data/cifar10-test (10 x 1000 32x32 JPEGs).
Steps, each timed (wall clock):
  1. split: per class, --per-class training images drawn with random.Random(seed) from the sorted file names;
     the test set is the rest (all 9,500 by default; --test-per-class N keeps the first N of each class's rest).
     Both are written as ImageFolders of symlinks under --work.
  2. `vit fit -m MODEL -o FITTED --seed S TRAIN` (embeds TRAIN, chooses L2 by 5-fold CV, writes the model dir).
  3. `vit eval -m FITTED --format json TEST`: the fitted head's top-1 on the test set (and eval's images/s).
  4. `vit embed -m MODEL --format npy` of TRAIN and of TEST: the features both heads are trained/tested on.
  5. PyTorch reference on those features: multinomial logistic regression with vit fit's objective (features
     standardised with the training mean/std, class-weighted mean cross-entropy with weights n/(K n_c), plus
     l2/2 |W|^2 with the L2 fit_report.json chose, bias not penalised), torch.optim.LBFGS (strong Wolfe) in
     float64. Its test top-1, and the agreement of its predictions with vit's head (head.safetensors applied to
     the same features; their top-1 is checked against vit eval's).
Prints a markdown report on stdout (progress on stderr); --json FILE also writes the figures.
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from safetensors_io import load_file  # noqa: E402


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(cmd, **kw):
    """Runs cmd (stderr passed through); returns (stdout, wall seconds)."""
    log("$ " + " ".join(cmd))
    t = time.monotonic()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, **kw)
    dt = time.monotonic() - t
    if p.returncode != 0:
        raise SystemExit(f"{cmd[0]} {cmd[1]} failed with exit status {p.returncode}")
    return p.stdout, dt


def split(cifar, work, per_class, test_per_class, seed):
    rng = random.Random(seed)
    classes = sorted(d for d in os.listdir(cifar) if os.path.isdir(os.path.join(cifar, d)))
    counts = {"train": 0, "test": 0}
    for c in classes:
        files = sorted(os.listdir(os.path.join(cifar, c)))
        train = set(rng.sample(files, per_class))
        rest = [f for f in files if f not in train]
        if test_per_class:
            rest = rest[:test_per_class]
        for part, names in (("train", sorted(train)), ("test", rest)):
            os.makedirs(os.path.join(work, part, c))
            for f in names:
                os.symlink(os.path.join(cifar, c, f), os.path.join(work, part, c, f))
            counts[part] += len(names)
    return classes, counts


def embed(vit, model, root, out, classes):
    """`vit embed --format npy` of an ImageFolder: (features [N, D] float32, labels [N], seconds)."""
    _, dt = run([vit, "embed", "-m", model, "--format", "npy", "--no-progress", "-r", "-o", out, root])
    x = np.load(out)
    with open(out + ".paths.txt") as f:
        paths = f.read().splitlines()
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[os.path.basename(os.path.dirname(p))] for p in paths])
    assert len(y) == x.shape[0], "rows and paths.txt disagree"
    return x, y, dt


def objective(W, b, z, y, w, l2):
    """vit fit's loss on standardised features z: sum_i w_i CE_i + l2/2 |W|^2."""
    logits = z @ W.T + b
    ce = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    return (w * ce).sum() + 0.5 * l2 * (W * W).sum()


def torch_probe(xtr, ytr, l2, K):
    """The reference head, fitted in float64 on standardised features. Returns (W, b, mu, sigma, loss, iters)."""
    x = torch.from_numpy(xtr.astype(np.float64))
    y = torch.from_numpy(ytr).long()
    mu = x.mean(0)
    sigma = x.std(0, unbiased=False)
    sigma[~(sigma > 1e-12)] = 1.0
    z = (x - mu) / sigma
    n_c = torch.bincount(y, minlength=K).double()
    w = 1.0 / (K * n_c[y])
    w = w / w.sum()
    W = torch.zeros(K, x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(K, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([W, b], lr=1, max_iter=5000, history_size=10, tolerance_grad=1e-9,
                            tolerance_change=1e-15, line_search_fn="strong_wolfe")
    state = {"evals": 0}

    def closure():
        opt.zero_grad()
        loss = objective(W, b, z, y, w, l2)
        loss.backward()
        state["evals"] += 1
        return loss

    opt.step(closure)
    with torch.no_grad():
        loss = objective(W, b, z, y, w, l2).item()
    return W.detach(), b.detach(), mu, sigma, z, y, w, loss, opt.state[opt._params[0]]["n_iter"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vit", default=os.path.join(ROOT, "build", "vit"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "deit-tiny-imagenet"))
    ap.add_argument("--cifar", default=os.path.join(ROOT, "..", "shared", "data", "cifar10-test"))
    ap.add_argument("--per-class", type=int, default=50)
    ap.add_argument("--test-per-class", type=int, default=0, help="0 = all the rest (950 per class)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", help="scratch folder (default: a new temporary one, removed at the end)")
    ap.add_argument("--json", help="also write the figures to this file")
    a = ap.parse_args()
    torch.set_num_threads(2)
    tmp = None
    if not a.work:
        tmp = a.work = tempfile.mkdtemp(prefix="vit-probe-")
    elif os.path.exists(a.work):
        raise SystemExit(f"{a.work}: exists (give a new folder)")
    vit = shutil.copy(a.vit, os.path.join(a.work, "vit")) if tmp else a.vit  # a rebuild midway cannot mix binaries
    try:
        classes, counts = split(a.cifar, a.work, a.per_class, a.test_per_class, a.seed)
        K = len(classes)
        train, test, fitted = (os.path.join(a.work, p) for p in ("train", "test", "fitted"))
        log(f"split: {counts['train']} train, {counts['test']} test images in {K} classes")

        _, fit_s = run([vit, "fit", "-m", a.model, "-o", fitted, "--seed", str(a.seed), train])
        with open(os.path.join(fitted, "fit_report.json")) as f:
            report = json.load(f)
        out, eval_s = run([vit, "eval", "-m", fitted, "--format", "json", test])
        ev = json.loads(out)
        xtr, ytr, embed_train_s = embed(vit, a.model, train, os.path.join(a.work, "train.npy"), classes)
        xte, yte, embed_test_s = embed(vit, a.model, test, os.path.join(a.work, "test.npy"), classes)

        # vit's head (head.safetensors, on raw features) on the same test features.
        head = load_file(os.path.join(fitted, "head.safetensors"))
        Wv, bv = head["head.weight"].double(), head["head.bias"].double()
        labels = json.load(open(os.path.join(fitted, "config.json")))["labels"]
        assert labels == classes, f"fitted labels {labels} != folder classes {classes}"
        vit_pred = (torch.from_numpy(xte).double() @ Wv.T + bv).argmax(1).numpy()

        t = time.monotonic()
        W, b, mu, sigma, z, y, w, loss, iters = torch_probe(xtr, ytr, report["l2"], K)
        torch_s = time.monotonic() - t
        zte = (torch.from_numpy(xte).double() - mu) / sigma
        ref_pred = (zte @ W.T + b).argmax(1).numpy()
        # vit's head in the standardised space, to compare the two minima of the same objective.
        with torch.no_grad():
            vit_loss = objective(Wv * sigma, bv + Wv @ mu, z, y, w, report["l2"]).item()

        f = {
            "train_images": int(xtr.shape[0]), "test_images": int(xte.shape[0]), "feature_dim": int(xtr.shape[1]),
            "l2": report["l2"], "cv_accuracy": report["cv_accuracy"], "train_accuracy": report["train_accuracy"],
            "vit_eval_top1": ev["top1"], "vit_eval_n": ev["n"], "vit_eval_images_per_s": ev["images_per_s"],
            "vit_head_top1_on_npy": float((vit_pred == yte).mean()),
            "torch_top1": float((ref_pred == yte).mean()), "agreement": float((ref_pred == vit_pred).mean()),
            "objective_vit": vit_loss, "objective_torch": loss, "torch_lbfgs_iterations": int(iters),
            "fit_wall_s": fit_s, "fit_report_s": report["seconds"], "eval_wall_s": eval_s,
            "embed_train_wall_s": embed_train_s, "embed_test_wall_s": embed_test_s,
            "embed_images_per_s": xte.shape[0] / embed_test_s, "torch_fit_s": torch_s,
            "per_class": a.per_class, "seed": a.seed, "cores": os.cpu_count(),
            "loadavg_end": os.getloadavg()[0],
        }
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)

    print(f"## Linear probe on CIFAR-10 (DeiT-tiny backbone, {f['per_class']} train images per class, seed "
          f"{f['seed']})\n")
    print(f"{f['train_images']} train / {f['test_images']} test images (32x32 JPEGs upscaled to 224), "
          f"{f['feature_dim']} features, {f['cores']} cores, load average {f['loadavg_end']:.1f} at the end.\n")
    print("| head | L2 | test top-1 | notes |\n| --- | --- | --- | --- |")
    print(f"| vit fit | {f['l2']:g} (5-fold CV {f['cv_accuracy']:.4f}) | {f['vit_eval_top1']:.4f} (vit eval, "
          f"{f['vit_eval_n']} images) | train acc. {f['train_accuracy']:.4f}; objective {f['objective_vit']:.6f} |")
    print(f"| PyTorch LBFGS | {f['l2']:g} (same) | {f['torch_top1']:.4f} | {f['torch_lbfgs_iterations']} "
          f"iterations; objective {f['objective_torch']:.6f} |\n")
    print(f"Agreement of the two heads' test predictions: **{f['agreement']:.4f}**. vit's head applied to the "
          f"`vit embed` features: top-1 {f['vit_head_top1_on_npy']:.4f} (vit eval: {f['vit_eval_top1']:.4f}).\n")
    print("| step | wall time | throughput |\n| --- | --- | --- |")
    print(f"| `vit fit` ({f['train_images']} images: embed + CV + fit) | {f['fit_wall_s']:.1f} s | "
          f"{f['train_images'] / f['fit_wall_s']:.1f} images/s overall |")
    print(f"| `vit eval` ({f['test_images']} images) | {f['eval_wall_s']:.1f} s | "
          f"{f['vit_eval_images_per_s']:.1f} images/s (eval's own figure) |")
    print(f"| `vit embed --format npy` (train) | {f['embed_train_wall_s']:.1f} s | "
          f"{f['train_images'] / f['embed_train_wall_s']:.1f} images/s |")
    print(f"| `vit embed --format npy` (test) | {f['embed_test_wall_s']:.1f} s | "
          f"{f['embed_images_per_s']:.1f} images/s |")
    print(f"| PyTorch reference fit | {f['torch_fit_s']:.1f} s | |")
    if a.json:
        with open(a.json, "w") as out:
            json.dump(f, out, indent=2)


if __name__ == "__main__":
    main()
