#!/usr/bin/python3
"""Per-op profile of one `vit bench` run from oneDNN's own trace (ONEDNN_VERBOSE=1), robust to a loaded machine.

    /usr/bin/python3 scripts/bench/profile.py [--vit build/vit] [--isa AVX2] [-n 20] -- [vit bench options]
    e.g. scripts/bench/profile.py --isa AVX2 -- --model /tmp/vit-bench/models/vit_b_16 --threads 2

Groups the timed iterations' primitive executions by (kind, implementation, shape) and prints, per group, the
executions per forward pass, the minimum and median time of one execution, and their products. On a shared
machine preemption inflates single executions but rarely all of them: the sum of (count x minimum) is the
forward pass on an idle machine as far as oneDNN's ops go; the difference between `vit bench`'s own median
and the ops' median sum is our own work between them (patch unfolding, position embeddings, int8 quantisation)
plus waiting. Markdown on stdout.
"""
import argparse
import collections
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vit", default=os.path.join(ROOT, "build", "vit"))
    ap.add_argument("--isa", help="ONEDNN_MAX_CPU_ISA for the run, e.g. AVX2 (default: unrestricted)")
    ap.add_argument("-n", "--iterations", type=int, default=20)
    ap.add_argument("--top", type=int, default=15, help="groups to list (by total minimum time)")
    ap.add_argument("bench_args", nargs="*", help="after --: options for `vit bench` (model, batch, precision...)")
    a = ap.parse_args()
    env = dict(os.environ, ONEDNN_VERBOSE="1")
    if a.isa:
        env["ONEDNN_MAX_CPU_ISA"] = a.isa
    # warmup 0: the untimed first pass (which creates the primitives) and the timed ones
    cmd = [a.vit, "bench", "--iterations", str(a.iterations), "--warmup", "0", "--format", "json"] + a.bench_args
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        print(f"profile: error: {p.stderr.strip().splitlines()[-1] if p.stderr.strip() else p.returncode}",
              file=sys.stderr)
        return 1
    # oneDNN writes its trace to stdout too: the report is the one line that is not part of it
    bench = json.loads("\n".join(s for s in p.stdout.splitlines() if not s.startswith("onednn_verbose,")))
    lines = [s.split(",") for s in (p.stdout + p.stderr).splitlines() if s.startswith("onednn_verbose,exec,")]
    # The weights are reordered once at load, before any other primitive runs: skip to the first one that is
    # not a reorder. What follows is the untimed first pass and the timed ones, all alike.
    first = next((i for i, f in enumerate(lines) if f[3] != "reorder"), len(lines))
    passes = a.iterations + 1
    groups = collections.defaultdict(list)
    for f in lines[first:]:
        kind, impl, shape, ms = f[3], f[4], f[-2], float(f[-1])
        groups[(kind, impl, shape)].append(ms)
    rows = []
    for (kind, impl, shape), times in groups.items():
        rows.append((kind, impl, shape, len(times) / passes, min(times), statistics.median(times)))
    rows.sort(key=lambda r: -r[3] * r[4])
    total_min = sum(r[3] * r[4] for r in rows)
    total_med = sum(r[3] * r[5] for r in rows)
    print(f"`{' '.join(os.path.basename(c) if i == 0 else c for i, c in enumerate(cmd))}`"
          f"{' with ONEDNN_MAX_CPU_ISA=' + a.isa if a.isa else ''}: {bench['median_ms']:.1f} ms median per pass "
          f"({bench.get('achieved_gflops', 0):.0f} GFLOP/s); load average {os.getloadavg()[0]:.1f}\n")
    print("| kind | implementation | shape | per pass | min ms | median ms | count x min ms | share |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    by_kind = collections.defaultdict(float)
    for r in rows:
        by_kind[r[0]] += r[3] * r[4]
    for r in rows[:a.top]:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]:g} | {r[4]:.3f} | {r[5]:.3f} | {r[3] * r[4]:.2f} | "
              f"{100 * r[3] * r[4] / total_min:.1f}% |")
    print(f"\nops on an idle machine (sum of count x min): {total_min:.1f} ms per pass; with the loaded medians "
          f"{total_med:.1f} ms; vit bench median {bench['median_ms']:.1f} ms")
    print("by kind (count x min): " + ", ".join(f"{k} {v:.1f} ms" for k, v in
                                                sorted(by_kind.items(), key=lambda kv: -kv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
