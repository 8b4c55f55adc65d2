#!/usr/bin/python3
"""vit vs onnxruntime on the CPU: logits parity, then alternating timing rounds, as a markdown table on stdout.

    /usr/bin/python3 scripts/bench/run.py [--rounds 3] [--iterations 20] [--warmup 3] [--threads 2]
                                          [--models /tmp/vit-bench/models] [--json results.json]
    /usr/bin/python3 scripts/bench/run.py --quick        # CI smoke test, < 3 minutes

1. Installs onnxruntime-node@1.20.1 with `npm install --ignore-scripts` into --node-dir (reused if there).
2. Runs export_models.py for the models missing from --models (needs torch: Debian's /usr/bin/python3).
3. Parity: one random 224x224 image through `vit classify --logits` and the same normalised tensor through
   onnxruntime; prints max |logit diff| per model (fp32 must agree to 1e-3 x max |logit|; bf16/int8 rows
   are printed for information).
4. Each table row runs R rounds of [one ort_bench.js process, one `vit bench` process], both with --threads
   threads, so that load from other users of a shared machine hits both sides alike; a side's figure is
   the median over rounds of its per-process median_ms (and of its peak RSS). ORT always runs the fp32
   ONNX model; the precision column is vit's. A precision vit rejects is shown as "unsupported".
   Rows with ISA AVX2 restrict vit alone (ONEDNN_MAX_CPU_ISA=AVX2: its AVX2 code path, ORT unrestricted); rows
   with ISA AVX2-CPU run both sides on a CPU that looks AVX2-only (hide_avx512.c hides AVX-512/AMX/AVX-VNNI from
   CPUID; needs the cpuid_fault CPU flag): the comparison an AVX2-only laptop or server would see.
5. Peak RSS of `vit classify` on one real image with ViT-B/16 fp32 (/usr/bin/time -v).

--quick: ViT-Ti/16 batch 1, one round, few iterations. Where torch (for a missing export) or node/npm are
unavailable the ORT side is skipped and said so. Always checks that `vit bench --format json` on the
committed fixture tests/fixtures/tiny_rgb_p16 has the expected keys. Exit status 1 on a failed check.
Progress goes to stderr; stdout carries the report only.
"""
import argparse
import json
import os
import random
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
ORT_PACKAGE = "onnxruntime-node@1.20.1"
DEBIAN_PYTHON = "/usr/bin/python3"
BENCH_KEYS = ["median_ms", "p90_ms", "images_per_s", "peak_rss_mb", "load_ms", "first_inference_ms",
              "achieved_gflops"]
NAMES = {"vit_b_16": "ViT-B/16", "vit_s_16": "ViT-S/16", "vit_ti_16": "ViT-Ti/16", "vit_s_14_518": "ViT-S/14 @518"}
# A row's `isa` restricts vit's oneDNN to that instruction set (ORT is never restricted): the AVX2 code path
# measured on an AVX-512 machine.
ISA_ENV = "ONEDNN_MAX_CPU_ISA"
# A row whose `isa` is AVX2_CPU runs both vit and ORT on a CPU that looks AVX2-only: hide_avx512.c, loaded with
# LD_AUDIT, hides AVX-512, AMX and AVX-VNNI from CPUID for both processes (each picks its AVX2 code), the peer
# comparison of an AVX2-only machine on an AVX-512 one. On a CPU without AVX-512 the rows run as they are.
AVX2_CPU = "AVX2-CPU"


class BenchError(Exception):
    pass


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def first_error_line(text):
    lines = [s.strip() for s in text.strip().splitlines() if s.strip()]
    errs = [s for s in lines if "error" in s.lower()]
    return (errs or lines or ["(no message)"])[-1]


def run_json(cmd, timeout, env=None):
    """Runs cmd and parses its stdout as JSON; BenchError with the command's last error line otherwise."""
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if p.returncode != 0:
        raise BenchError(first_error_line(p.stderr or p.stdout))
    try:
        return json.loads(p.stdout)
    except json.JSONDecodeError as e:
        raise BenchError(f"{os.path.basename(cmd[0])}: stdout is not JSON ({e})")


# ---------------------------------------------------------------------------------------------------------
# machine and tools

def machine_info():
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout if shutil.which("lscpu") else ""
    fields = dict(re.findall(r"^([^:\n]+):\s*(.*)$", out, re.M))
    flags = fields.get("Flags", "").split()
    avx512 = sorted(f for f in flags if f.startswith("avx512"))
    return {"model": fields.get("Model name", "unknown"), "cpus": fields.get("CPU(s)", str(os.cpu_count())),
            "threads_per_core": fields.get("Thread(s) per core", "?"),
            "avx2": "avx2" in flags, "avx512": avx512, "amx": sorted(f for f in flags if f.startswith("amx")),
            "cpuid_fault": "cpuid_fault" in flags,
            "load": os.getloadavg()}


def ensure_vit(path):
    if os.path.exists(path):
        return
    if os.path.abspath(path) != os.path.join(ROOT, "build", "vit"):
        raise BenchError(f"{path} does not exist")
    log("building build/vit")
    subprocess.run(["cmake", "-S", ROOT, "-B", os.path.join(ROOT, "build"), "-DCMAKE_BUILD_TYPE=Release"],
                   check=True, stdout=sys.stderr)
    subprocess.run(["cmake", "--build", os.path.join(ROOT, "build"), "-j2", "--target", "vit"],
                   check=True, stdout=sys.stderr)


def ensure_ort(node_dir, quick):
    """Path of node_modules holding onnxruntime-node, or raises BenchError saying why there is none."""
    modules = os.path.join(node_dir, "node_modules")
    if not shutil.which("node"):
        raise BenchError("node is not installed")
    if not os.path.exists(os.path.join(modules, "onnxruntime-node", "package.json")):
        if not shutil.which("npm"):
            raise BenchError("npm is not installed")
        os.makedirs(node_dir, exist_ok=True)
        if not os.path.exists(os.path.join(node_dir, "package.json")):
            with open(os.path.join(node_dir, "package.json"), "w") as f:
                f.write('{"private": true}\n')
        log(f"npm install --ignore-scripts {ORT_PACKAGE} into {node_dir}")
        cmd = ["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund", ORT_PACKAGE]
        if quick:
            cmd += ["--fetch-retries=1", "--fetch-timeout=30000"]
        p = subprocess.run(cmd, cwd=node_dir, capture_output=True, text=True, timeout=150 if quick else 900)
        if p.returncode != 0:
            raise BenchError(f"npm install {ORT_PACKAGE} failed: {first_error_line(p.stderr)}")
    env = dict(os.environ, NODE_PATH=modules)
    p = subprocess.run(["node", "-e", "console.log(require('onnxruntime-node/package.json').version)"],
                       capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise BenchError(f"onnxruntime-node does not load: {first_error_line(p.stderr)}")
    return modules


def avx2_cpu_setup(info, tmp, ort_env):
    """How to run a process on an AVX2-only view of this CPU: {"env": ..., "node_flags": [...], "how": str}."""
    if not info["avx512"] and not info["amx"]:
        return {"env": {}, "node_flags": [], "how": "this CPU has no AVX-512: rows run as they are"}
    if not info["cpuid_fault"]:
        raise BenchError("the CPU cannot make CPUID fault (no cpuid_fault flag), so AVX-512 cannot be hidden")
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if not cc:
        raise BenchError("no C compiler for scripts/bench/hide_avx512.c")
    so = os.path.join(tmp, "hide_avx512.so")
    p = subprocess.run([cc, "-O2", "-shared", "-fPIC", os.path.join(HERE, "hide_avx512.c"), "-o", so],
                       capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise BenchError(f"hide_avx512.c does not build: {first_error_line(p.stderr)}")
    env = {"LD_AUDIT": so}
    # node 20 segfaulted under the shim unless its WebAssembly trap handler was off: find flags
    # with which it runs under the shim, and check that onnxruntime-node loads there
    node_flags = None
    if ort_env is not None:
        for flags in (["--disable-wasm-trap-handler"], []):
            q = subprocess.run(["node"] + flags + ["-e", "require('onnxruntime-node')"], capture_output=True,
                               text=True, timeout=120, env=dict(ort_env, **env))
            if q.returncode == 0:
                node_flags = flags
                break
        if node_flags is None:
            raise BenchError("node with onnxruntime-node does not run with hide_avx512.so")
    return {"env": env, "node_flags": node_flags or [],
            "how": "AVX-512, AMX and AVX-VNNI hidden from CPUID for vit and ORT (scripts/bench/hide_avx512.c)"}


def have_torch():
    if not os.path.exists(DEBIAN_PYTHON):
        return False
    return subprocess.run([DEBIAN_PYTHON, "-c", "import torch, torchvision"], capture_output=True).returncode == 0


def model_present(models, arch):
    return all(os.path.exists(os.path.join(models, p))
               for p in (f"{arch}.onnx", f"{arch}/config.json", f"{arch}/model.safetensors"))


def ensure_models(models, archs):
    missing = [a for a in archs if not model_present(models, a)]
    if not missing:
        return
    if not have_torch():
        raise BenchError(f"models {', '.join(missing)} are not in {models} and {DEBIAN_PYTHON} has no torch "
                         f"to export them")
    log(f"exporting {', '.join(missing)} into {models}")
    subprocess.run([DEBIAN_PYTHON, os.path.join(HERE, "export_models.py"), "--out", models,
                    "--archs", ",".join(missing)], check=True, stdout=sys.stderr)


# ---------------------------------------------------------------------------------------------------------
# parity

def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def parity(vit, models, arch, precisions, ort_env, threads, tmp):
    """max |logit diff| between vit (each precision) and onnxruntime fp32 on one random image."""
    with open(os.path.join(models, arch, "config.json")) as f:
        cfg = json.load(f)
    S, C = cfg["model"]["image_size"], cfg["model"]["in_chans"]
    pp = dict(cfg["preprocess"], resize=S, crop=S)   # an S x S image then goes through unresampled
    cfg = {"model": cfg["model"], "preprocess": pp,
           "weights": os.path.abspath(os.path.join(models, arch, "model.safetensors"))}
    cfg_path, ppm, raw = (os.path.join(tmp, f"{arch}.{e}") for e in ("json", "ppm", "f32"))
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    rng = random.Random(1)
    pixels = bytes(rng.randrange(256) for _ in range(S * S * 3))
    with open(ppm, "wb") as f:
        f.write(b"P6\n%d %d\n255\n" % (S, S) + pixels)
    # vit's normalisation, (v / 255 - mean) / std with float32 rounding after each operation
    lut = [[f32(f32(f32(v / 255.0) - f32(pp["mean"][c])) / f32(pp["std"][c])) for v in range(256)]
           for c in range(C)]
    chw = [lut[c][pixels[i * 3 + c]] for c in range(C) for i in range(S * S)]
    with open(raw, "wb") as f:
        f.write(struct.pack(f"<{len(chw)}f", *chw))

    want = run_json(["node", os.path.join(HERE, "ort_bench.js"), os.path.join(models, f"{arch}.onnx"),
                     "--logits-in", raw, "--threads", str(threads), "--image-size", str(S),
                     "--channels", str(C)], timeout=600, env=ort_env)["logits"]
    scale = max(abs(v) for v in want)
    top_want = max(range(len(want)), key=want.__getitem__)
    rows = []
    for prec in precisions:
        try:
            rec = run_json([vit, "classify", "--config", cfg_path, "--precision", prec, "--threads",
                            str(threads), "--logits", "--top-k", "1", "--format", "json", ppm], timeout=600)
            rec = rec[0] if isinstance(rec, list) else rec
            got = rec.get("logits") or rec.get("results", [{}])[0].get("logits")
            if got is None or len(got) != len(want):
                raise BenchError(f"unexpected classify output: {str(rec)[:200]}")
            diff = max(abs(a - b) for a, b in zip(got, want))
            top_got = max(range(len(got)), key=got.__getitem__)
            rows.append({"arch": arch, "precision": prec, "max_abs_diff": diff, "max_abs_logit": scale,
                         "top1_agrees": top_got == top_want})
        except BenchError as e:
            rows.append({"arch": arch, "precision": prec, "error": str(e)})
        log(f"parity {arch} {prec}: {rows[-1]}")
    return rows


# ---------------------------------------------------------------------------------------------------------
# timing

def image_size(models, arch):
    with open(os.path.join(models, arch, "config.json")) as f:
        return json.load(f)["model"]["image_size"]


def bench_row(vit, models, row, a, ort_env, avx2_cpu=None):
    """R alternating rounds of ORT then vit; medians over rounds."""
    arch, batch, prec, isa = row
    node = ["node"]
    if isa == AVX2_CPU:
        env = dict(a.vit_environ, **avx2_cpu["env"])
        ort_env = ort_env and dict(ort_env, **avx2_cpu["env"])
        node += avx2_cpu["node_flags"]
    else:
        env = dict(a.vit_environ, **({ISA_ENV: isa} if isa else {}))
    tag = f"{arch} b{batch} {prec}{' ' + isa if isa else ''}"
    ort, vitr, error = [], [], None
    for r in range(a.rounds):
        if error is not None:
            break
        if ort_env is not None:
            ort.append(run_json(node + [os.path.join(HERE, "ort_bench.js"), os.path.join(models, f"{arch}.onnx"),
                                 "--batch", str(batch), "--iterations", str(a.iterations), "--warmup",
                                 str(a.warmup), "--threads", str(a.threads), "--image-size",
                                 str(image_size(models, arch))], timeout=1800, env=ort_env))
            log(f"{tag} round {r + 1}: ORT {ort[-1]['median_ms']:.1f} ms")
        try:
            vitr.append(run_json([vit, "bench", "--model", os.path.join(models, arch), "--batch-size",
                                  str(batch), "--iterations", str(a.iterations), "--warmup", str(a.warmup),
                                  "--precision", prec, "--threads", str(a.threads), "--ops", "--format", "json"],
                                 timeout=1800, env=env))
            log(f"{tag} round {r + 1}: vit {vitr[-1]['median_ms']:.1f} ms ({vitr[-1].get('cpu_isa')})")
            if isa == AVX2_CPU and vitr[-1].get("cpu_isa", "AVX2").startswith("AVX-512"):
                raise BenchError(f"vit still ran {vitr[-1]['cpu_isa']} code with AVX-512 hidden")
        except BenchError as e:
            error = str(e)   # a precision vit rejects: no further rounds, and no ORT figure for the row
            ort = []
            log(f"{tag}: vit failed: {error}")

    def med(rs, k):
        return statistics.median(x[k] for x in rs) if rs else None
    return {"arch": arch, "batch": batch, "precision": prec, "isa": isa, "error": error,
            "vit_cpu_isa": vitr[0].get("cpu_isa") if vitr else None,
            "ort_ms": med(ort, "median_ms"), "vit_ms": med(vitr, "median_ms"),
            "ort_rss_mb": med(ort, "peak_rss_mb"), "vit_rss_mb": med(vitr, "peak_rss_mb"),
            "pass_over_linear": med(vitr, "pass_over_linear_median"),
            "ort_rounds": ort, "vit_rounds": vitr}


def classify_rss(vit, model_dir, image, threads):
    cmd = [vit, "classify", "--model", model_dir, "--threads", str(threads), image]
    if os.path.exists("/usr/bin/time"):
        p = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True, timeout=600)
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
        if p.returncode != 0 or not m:
            raise BenchError(first_error_line(p.stderr))
        return int(m.group(1)) / 1024
    # no GNU time: the same figure from the kernel's rusage of the child
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(proc.pid, 0)
    if status != 0:
        raise BenchError(f"vit classify exited with status {status}")
    return ru.ru_maxrss / 1024


def cold_start(vit, model_dir, image, threads, runs):
    """Wall time of whole short vit processes, with hyperfine: `vit --help` and `vit classify` on one image."""
    if not shutil.which("hyperfine"):
        raise BenchError("hyperfine is not installed (scripts/setup.sh installs it)")
    cases = [("vit --help", [vit, "--help"]),
             (f"vit classify (default model, {os.path.basename(image)})",
              [vit, "classify", "--threads", str(threads), image] + (["--model", model_dir] if model_dir else []))]
    out = []
    with tempfile.TemporaryDirectory(prefix="vit-bench-hf-") as tmp:
        for name, cmd in cases:
            js = os.path.join(tmp, "hf.json")
            p = subprocess.run(["hyperfine", "-N", "--style", "none", "--warmup", "3", "--runs", str(runs),
                                "--export-json", js, " ".join(cmd)], capture_output=True, text=True, timeout=900)
            if p.returncode != 0:
                raise BenchError(f"hyperfine {name}: {first_error_line(p.stderr or p.stdout)}")
            with open(js) as f:
                r = json.load(f)["results"][0]
            out.append({"case": name, "mean_ms": r["mean"] * 1e3, "median_ms": r["median"] * 1e3,
                        "min_ms": r["min"] * 1e3, "stddev_ms": r["stddev"] * 1e3, "runs": len(r["times"])})
            log(f"cold start {name}: median {out[-1]['median_ms']:.1f} ms")
    return out


def fma_peaks(threads, tmp):
    """fp32 FMA throughput of this CPU with AVX2 and with AVX-512 (scripts/bench/fma_peak.cpp), GFLOP/s."""
    cxx = shutil.which(os.environ.get("CXX", "c++")) or shutil.which("g++")
    if not cxx:
        raise BenchError("no C++ compiler for scripts/bench/fma_peak.cpp")
    exe = os.path.join(tmp, "fma_peak")
    p = subprocess.run([cxx, "-O2", "-pthread", os.path.join(HERE, "fma_peak.cpp"), "-o", exe],
                       capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise BenchError(f"fma_peak.cpp does not build: {first_error_line(p.stderr)}")
    # three runs, best of each: other users of a shared machine only ever lower the figure
    runs = [run_json([exe, str(threads)], timeout=300) for _ in range(3)]
    best = {k: max((r[k] for r in runs if r.get(k) is not None), default=None) for k in ("avx2_gflops", "avx512_gflops")}
    log(f"FMA peak, {threads} threads: AVX2 {best['avx2_gflops']} GFLOP/s, AVX-512 {best['avx512_gflops']} GFLOP/s")
    return dict(best, threads=threads)


def peak_for(peaks, isa):
    """The fp32 FMA peak of the code path a row runs: AVX2 when restricted to it, else the widest available."""
    if not peaks:
        return None, None
    if isa and isa.upper().startswith("AVX2"):   # ONEDNN_MAX_CPU_ISA=AVX2... and AVX2_CPU
        return peaks.get("avx2_gflops"), "AVX2"
    if peaks.get("avx512_gflops"):
        return peaks["avx512_gflops"], "AVX-512"
    return peaks.get("avx2_gflops"), "AVX2"


def check_fixture_keys(vit, threads):
    fixture = os.path.join(ROOT, "tests", "fixtures", "tiny_rgb_p16")
    j = run_json([vit, "bench", "--model", fixture, "--iterations", "3", "--warmup", "1", "--threads",
                  str(threads), "--format", "json"], timeout=120)
    missing = [k for k in BENCH_KEYS if not isinstance(j.get(k), (int, float))]
    return fixture, j, missing


# ---------------------------------------------------------------------------------------------------------
# report

def fmt(v, spec=".1f"):
    return "—" if v is None else format(v, spec)


def row_name(r):
    if r.get("isa") == AVX2_CPU:
        return NAMES[r["arch"]] + " (AVX2-only CPU: both sides)"
    return NAMES[r["arch"]] + (f" ({ISA_ENV}={r['isa']}, vit only)" if r.get("isa") else "")


def med_gflops(r):
    vals = [x["achieved_gflops"] for x in r.get("vit_rounds", []) if x.get("achieved_gflops")]
    return statistics.median(vals) if vals else None


def gflops_cell(r, peaks):
    """vit's achieved GFLOP/s; for fp32 with its share of the FMA peak of the code path the row runs."""
    g = med_gflops(r)
    if g is None:
        return "—"
    peak, isa = peak_for(peaks, r.get("isa"))
    if r["precision"] != "fp32" or not peak:
        return f"{g:.0f}" + ("" if r["precision"] == "fp32" else " (GOP/s)")
    return f"{g:.0f} ({100 * g / peak:.0f}% of {isa})"


def print_report(info, a, parity_rows, rows, rss_row, skipped, fixture_check, cold=None, peaks=None):
    print("# vit vs onnxruntime (CPU)\n")
    print(f"- machine: {info['model']}, {info['cpus']} logical CPUs ({info['threads_per_core']} threads/core), "
          f"avx2: {'yes' if info['avx2'] else 'no'}, avx512: {' '.join(info['avx512']) or 'no'}"
          f"{', amx: ' + ' '.join(info['amx']) if info['amx'] else ''}")
    if a.vit_env:
        print(f"- vit environment: {' '.join(a.vit_env)}")
    if info.get("avx2_cpu"):
        print(f"- AVX2-only CPU rows: {info['avx2_cpu']}")
    print(f"- vit: {info['vit']}, copied to a scratch folder for the run")
    print(f"- load average at start: {' '.join(f'{x:.2f}' for x in info['load'])}")
    if rows:
        print(f"- {a.rounds} round(s) x [ORT process, vit process], {a.iterations} timed + {a.warmup} warmup "
              f"iterations each, {a.threads} threads; ORT = {ORT_PACKAGE} (CPU EP, fp32 model)")
    if peaks:
        print(f"- fp32 FMA peak, {peaks['threads']} threads (scripts/bench/fma_peak.cpp, best of 3): "
              f"AVX2 {fmt(peaks.get('avx2_gflops'), '.0f')} GFLOP/s, AVX-512 {fmt(peaks.get('avx512_gflops'), '.0f')} "
              f"GFLOP/s")
    for s in skipped:
        print(f"- skipped: {s}")
    if parity_rows:
        print("\n## Logits parity (one random image at the model's size, vit vs ORT fp32)\n")
        print("| model | vit precision | max abs diff | max abs logit | top-1 agrees |")
        print("| --- | --- | --- | --- | --- |")
        for p in parity_rows:
            if "error" in p:
                print(f"| {NAMES[p['arch']]} | {p['precision']} | unsupported: {p['error']} | | |")
            else:
                print(f"| {NAMES[p['arch']]} | {p['precision']} | {p['max_abs_diff']:.3g} | "
                      f"{p['max_abs_logit']:.3g} | {'yes' if p['top1_agrees'] else 'no'} |")
    if rows:
        print("\n## Speed (ms per image, median over rounds of each process's median)\n")
        print("| model | batch | precision | ORT ms/img | vit ms/img | speed ratio (ORT/vit) | target | "
              "vit GFLOP/s (share of the path's FMA peak) | vit whole pass / its linear layers | ORT peak RSS | "
              "vit peak RSS |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for r in rows:
            b = r["batch"]
            ort_img = r["ort_ms"] / b if r["ort_ms"] is not None else None
            over = "—"
            if r["error"]:
                vit_cell, ratio, target, vit_rss, gf = f"unsupported: {r['error']}", "—", "—", "—", "—"
            else:
                vit_img = r["vit_ms"] / b
                ratio_v = ort_img / vit_img if ort_img is not None else None
                ratio = fmt(ratio_v, ".2f") + ("x" if ratio_v is not None else "")
                goal = a.target if a.target is not None else (
                    AVX2_TARGETS.get((r["arch"], b, r["precision"])) if r.get("isa") == AVX2_CPU else
                    None if r.get("isa") else TARGETS.get((r["arch"], b, r["precision"])))
                target = "—" if goal is None else f">= {goal:.2f}x" + ("" if ratio_v is None else
                                                                      (" met" if ratio_v >= goal else " missed"))
                vit_cell, vit_rss = fmt(vit_img), fmt(r["vit_rss_mb"], ".0f") + " MB"
                gf = gflops_cell(r, peaks)
                if r.get("pass_over_linear"):
                    # `vit bench --ops`: each pass's time over its linear layers' time, median over the passes
                    over = f"{r['pass_over_linear']:.3f}x"
                    goal = PASS_OVER_LINEAR_TARGETS.get(r["precision"]) if not r.get("isa") else None
                    if goal:
                        over += f" (target <= {goal:.2f}x: {'met' if r['pass_over_linear'] <= goal else 'missed'})"
            ort_rss = fmt(r["ort_rss_mb"], ".0f") + (" MB" if r["ort_rss_mb"] is not None else "")
            print(f"| {row_name(r)} | {b} | {r['precision']} | {fmt(ort_img)} | {vit_cell} | {ratio} | "
                  f"{target} | {gf} | {over} | {ort_rss} | {vit_rss} |")
        for r in rows:
            base = next((u for u in rows if not u.get("isa") and (u["arch"], u["batch"], u["precision"]) ==
                         (r["arch"], r["batch"], r["precision"])), None)
            if r.get("isa") and r["isa"] != AVX2_CPU and base and r["vit_ms"] and base["vit_ms"]:
                f = r["vit_ms"] / base["vit_ms"]
                goal = ISA_TARGETS.get(r["precision"])
                p_isa, _ = peak_for(peaks, r["isa"])
                p_base, base_isa = peak_for(peaks, None)
                # The issue's "within 1.15x of unrestricted" assumes both paths have the same FMA peak; where
                # AVX-512 is twice as wide, each path is judged against its own peak instead.
                same_peak = p_isa and p_base and p_base / p_isa < 1.3
                verdict = (f" (target <= {goal:.2f}x: {'met' if f <= goal else 'missed'})" if goal and same_peak else
                           f" (the 1.15x target assumes equal FMA peaks; here {base_isa}'s is {p_base / p_isa:.1f}x "
                           f"AVX2's)" if goal and p_isa and p_base else "")
                shares = ""
                if r["precision"] == "fp32" and p_isa and p_base:
                    g, gb = med_gflops(r), med_gflops(base)
                    shares = (f"; {g:.0f} GFLOP/s = {100 * g / p_isa:.0f}% of the {r['isa']} FMA peak, unrestricted "
                              f"{gb:.0f} GFLOP/s = {100 * gb / p_base:.0f}% of the {base_isa} peak")
                print(f"\n- {r['isa']} code path, {NAMES[r['arch']]} b{r['batch']} {r['precision']}: "
                      f"{r['vit_ms']:.1f} ms vs {base['vit_ms']:.1f} ms unrestricted = {f:.2f}x the time"
                      + verdict + shares)
    if cold:
        print("\n## Cold start (hyperfine, whole process wall time)\n")
        print("| command | median ms | mean ms | min ms | runs | target |")
        print("| --- | --- | --- | --- | --- | --- |")
        for c in cold:
            goal = next((v for k, v in COLD_TARGETS.items() if c["case"].startswith(k)), None)
            target = "—" if goal is None else f"<= {goal:.0f} ms " + ("met" if c["median_ms"] <= goal else "missed")
            print(f"| `{c['case']}` | {c['median_ms']:.1f} | {c['mean_ms']:.1f} | {c['min_ms']:.1f} | {c['runs']} | "
                  f"{target} |")
    if rss_row:
        print(f"\n- vit classify, one real image ({rss_row['image']}), ViT-B/16 fp32: peak RSS "
              + (f"{rss_row['rss_mb']:.0f} MB (/usr/bin/time -v, Maximum resident set size)"
                 if "rss_mb" in rss_row else f"failed: {rss_row['error']}"))
    if fixture_check:
        path, _, missing = fixture_check
        rel = os.path.relpath(path, ROOT)
        print(f"\n- `vit bench --format json` on {rel}: "
              + ("all expected keys present" if not missing else f"MISSING keys {', '.join(missing)}"))


# Speed targets (ORT ms/img / vit ms/img) per (arch, batch, vit precision); rows without one are informative.
TARGETS = {("vit_b_16", 1, "fp32"): 1.1, ("vit_b_16", 1, "bf16"): 2.1, ("vit_b_16", 1, "int8"): 3.3,
           ("vit_ti_16", 1, "fp32"): 1.2, ("vit_ti_16", 32, "fp32"): 1.25, ("vit_s_14_518", 1, "fp32"): 1.2}
# Rows on an AVX2-only view of the CPU (AVX2_CPU, both sides): issue 14's targets for AVX2-only machines.
AVX2_TARGETS = {("vit_b_16", 1, "fp32"): 1.1, ("vit_b_16", 1, "int8"): 1.8}
# The AVX2 code path's time over the unrestricted one, per precision; cold-start wall times in ms.
ISA_TARGETS = {"fp32": 1.15}
# the whole pass over its linear layers' time (issue 14: bf16 "total <= 1.12x the linears' time")
PASS_OVER_LINEAR_TARGETS = {"bf16": 1.12}
COLD_TARGETS = {"vit --help": 20, "vit classify": 110}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="CI smoke run: ViT-Ti/16 batch 1, 1 round, 5 iterations")
    ap.add_argument("--rounds", type=int, help="alternating rounds per row (default 3; --quick 1)")
    ap.add_argument("--iterations", type=int, help="timed iterations per process (default 20; --quick 5)")
    ap.add_argument("--warmup", type=int, help="untimed iterations per process (default 3; --quick 1)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--target", type=float, help="one speed ratio ORT/vit for every row (default: the issue's "
                    "targets: ViT-B/16 fp32 1.1, bf16 2.1, int8 3.3; ViT-Ti/16 fp32 1.2 at batch 1, 1.25 at 32; "
                    "ViT-S/14 at 518 1.2)")
    ap.add_argument("--vit", default=os.path.join(ROOT, "build", "vit"))
    ap.add_argument("--models", default="/tmp/vit-bench/models", help="exported models (made if missing)")
    ap.add_argument("--node-dir", default="/tmp/vit-bench/node", help="scratch npm folder for onnxruntime-node")
    ap.add_argument("--image", default=os.path.join(ROOT, "..", "shared", "data", "imagenet-sample",
                                                    "n01440764_tench.JPEG"),
                    help="real image for the classify peak-RSS row")
    ap.add_argument("--vit-env", action="append", default=[], metavar="KEY=VALUE",
                    help="environment for the vit processes, e.g. OMP_WAIT_POLICY=passive (repeatable)")
    ap.add_argument("--json", help="also write all raw results here")
    ap.add_argument("--rows", help="comma-separated subset of the rows, as ARCH:BATCH:PRECISION[:ISA], e.g. "
                    "vit_b_16:1:fp32:AVX2 (vit restricted to AVX2) or vit_b_16:1:int8:AVX2-CPU (both on an AVX2-only view of the CPU), or none: only the cold starts and the FMA peak (default: all; see run_all)")
    ap.add_argument("--no-peak", action="store_true", help="skip the FMA peak microbenchmark (fma_peak.cpp)")
    ap.add_argument("--cold-runs", type=int, default=20, help="hyperfine runs per cold-start case (0: skip them)")
    a = ap.parse_args()
    a.rounds = a.rounds or (1 if a.quick else 3)
    a.iterations = a.iterations or (5 if a.quick else 20)
    a.warmup = a.warmup if a.warmup is not None else (1 if a.quick else 3)
    if min(a.rounds, a.iterations, a.threads) < 1 or a.warmup < 0:
        ap.error("--rounds, --iterations, --threads must be >= 1 and --warmup >= 0")
    bad = [e for e in a.vit_env if "=" not in e or e.startswith("=")]
    if bad:
        ap.error(f"--vit-env {bad[0]!r}: expected KEY=VALUE")
    a.vit_environ = dict(os.environ, **dict(e.split("=", 1) for e in a.vit_env))

    t_start = time.time()
    info = machine_info()
    ensure_vit(a.vit)
    # build/vit is shared with people who rebuild it; every row should time the same binary
    info["vit"] = f"{a.vit} (built {time.strftime('%Y-%m-%d %H:%M', time.localtime(os.path.getmtime(a.vit)))})"
    with tempfile.TemporaryDirectory(prefix="vit-bench-bin-") as snap_dir:
        # with its image-decoding module (opened from the executable's folder first)
        codecs = os.path.join(os.path.dirname(os.path.abspath(a.vit)), "libvit_codecs.so")
        if os.path.exists(codecs):
            shutil.copy2(codecs, snap_dir)
        a.vit = shutil.copy2(a.vit, os.path.join(snap_dir, "vit"))
        a.scratch = snap_dir
        ok = run_all(a, info)
    log(f"done in {time.time() - t_start:.0f} s")
    return 0 if ok else 1


def run_all(a, info):
    """Everything after argument parsing; returns False when a check failed."""
    if a.quick:
        archs = ["vit_ti_16"]
        rows_wanted = [("vit_ti_16", 1, "fp32", None)]
    else:
        rows_wanted = [("vit_b_16", 1, "fp32", None), ("vit_b_16", 1, "bf16", None), ("vit_b_16", 1, "int8", None),
                       ("vit_s_16", 1, "fp32", None), ("vit_ti_16", 1, "fp32", None), ("vit_ti_16", 32, "fp32", None),
                       ("vit_s_14_518", 1, "fp32", None),
                       ("vit_b_16", 1, "fp32", "AVX2"), ("vit_b_16", 1, "int8", "AVX2"),
                       ("vit_b_16", 1, "bf16", "AVX2"),   # must be refused: bf16 needs AVX-512
                       ("vit_b_16", 1, "fp32", AVX2_CPU), ("vit_b_16", 1, "int8", AVX2_CPU)]
        if a.rows:
            rows_wanted = []
            for spec in ([] if a.rows == "none" else a.rows.split(",")):
                f = spec.split(":")
                if len(f) not in (3, 4) or f[0] not in NAMES or not f[1].isdigit():
                    raise BenchError(f"--rows {spec!r}: expected ARCH:BATCH:PRECISION[:ISA], ARCH one of "
                                     f"{', '.join(NAMES)}")
                rows_wanted.append((f[0], int(f[1]), f[2], f[3] if len(f) == 4 else None))
        archs = sorted({r[0] for r in rows_wanted}, key=list(NAMES).index)

    skipped, ort_env = [], None
    try:
        if rows_wanted:  # --rows none: no ORT, no models (cold starts and the FMA peak only)
            ort_env = dict(os.environ, NODE_PATH=ensure_ort(a.node_dir, a.quick))
            ensure_models(a.models, archs)
    except (BenchError, subprocess.SubprocessError) as e:
        if not a.quick:
            raise
        ort_env = None
        skipped.append(f"ORT comparison and parity ({e})")
        log(f"skipping ORT: {e}")

    peaks = None
    if not a.no_peak:
        with tempfile.TemporaryDirectory(prefix="vit-bench-peak-") as tmp:
            try:
                peaks = fma_peaks(a.threads, tmp)
            except (BenchError, subprocess.SubprocessError) as e:
                skipped.append(f"FMA peak ({e})")

    ok = True
    parity_rows, rows = [], []
    if ort_env is not None:
        with tempfile.TemporaryDirectory(prefix="vit-bench-") as tmp:
            for arch in archs:
                precs = sorted({p for (ar, _, p, isa) in rows_wanted if ar == arch and not isa},
                               key=["fp32", "bf16", "int8"].index)
                parity_rows += parity(a.vit, a.models, arch, precs, ort_env, a.threads, tmp)
        for p in parity_rows:
            if p["precision"] == "fp32" and not p.get("max_abs_diff", 1e30) <= 1e-3 * max(p["max_abs_logit"], 1.0):
                ok = False
                log(f"parity FAILED for {p['arch']}: {p}")
        avx2_cpu = None
        if any(r[3] == AVX2_CPU for r in rows_wanted):
            try:
                avx2_cpu = avx2_cpu_setup(info, a.scratch, ort_env)
                info["avx2_cpu"] = avx2_cpu["how"]
                log(f"AVX2-only CPU rows: {avx2_cpu['how']}")
            except (BenchError, subprocess.SubprocessError) as e:
                skipped.append(f"the AVX2-only CPU rows ({e})")
        for row in rows_wanted:
            if row[3] == AVX2_CPU and avx2_cpu is None:
                continue
            rows.append(bench_row(a.vit, a.models, row, a, ort_env, avx2_cpu))

    rss_row = None
    if not a.quick and rows_wanted:
        image = os.path.abspath(a.image)
        rss_row = {"image": os.path.basename(image)}
        try:
            rss_row["rss_mb"] = classify_rss(a.vit, os.path.join(a.models, "vit_b_16"), image, a.threads)
        except BenchError as e:
            rss_row["error"] = str(e)

    cold = None
    if not a.quick and a.cold_runs > 0:
        try:
            cold = cold_start(a.vit, None, os.path.abspath(a.image), a.threads, a.cold_runs)
        except BenchError as e:
            skipped.append(f"cold start ({e})")

    fixture_check = None
    if a.quick:
        fixture_check = check_fixture_keys(a.vit, a.threads)
        if fixture_check[2]:
            ok = False
        if ort_env is None:
            skipped.append("timing rows (no ORT); ran only the fixture key check")

    print_report(info, a, parity_rows, rows, rss_row, skipped, fixture_check, cold, peaks)
    if a.json:
        with open(a.json, "w") as f:
            args = {k: v for k, v in vars(a).items() if k != "vit_environ"}
            json.dump({"machine": info, "args": args, "parity": parity_rows, "rows": rows, "classify_rss": rss_row, "cold_start": cold,
                       "fma_peak": peaks,
                       "fixture_check": fixture_check and {"path": fixture_check[0], "output": fixture_check[1],
                                                           "missing": fixture_check[2]}}, f, indent=2)
    return ok


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (BenchError, subprocess.CalledProcessError) as e:
        print(f"bench: error: {e}", file=sys.stderr)
        sys.exit(1)
