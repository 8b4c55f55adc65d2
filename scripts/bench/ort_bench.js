#!/usr/bin/env node
// onnxruntime-node counterpart of `vit bench`: times session.run on one random input and prints JSON to stdout.
//
//   node ort_bench.js MODEL.onnx [--batch B] [--iterations N] [--warmup W] [--threads T] [--image-size S]
//       -> {"median_ms", "p90_ms", "images_per_s", "peak_rss_mb", "load_ms", "first_inference_ms", ...}
//   node ort_bench.js MODEL.onnx --logits-in INPUT.f32 [--batch B] [--threads T] [--image-size S]
//       -> {"shape": [B, K], "logits": [...]}  for a raw little-endian float32 [B, 3, S, S] input file
//
// Session: CPU EP, intraOpNumThreads T, interOpNumThreads 1, graphOptimizationLevel "all", sequential
// execution. Finds onnxruntime-node through NODE_PATH (run.py points it at its scratch install).
"use strict";

const fs = require("fs");
const ort = require("onnxruntime-node");

function parseArgs(argv) {
  const o = { batch: 1, iterations: 20, warmup: 3, threads: 2, imageSize: 224, channels: 3, logitsIn: null };
  const names = { "--batch": "batch", "--iterations": "iterations", "--warmup": "warmup", "--threads": "threads",
                  "--image-size": "imageSize", "--channels": "channels" };
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a in names || a === "--logits-in") {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      const v = argv[++i];
      if (a === "--logits-in") { o.logitsIn = v; continue; }
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0) throw new Error(`${a}: expected a non-negative integer, got '${v}'`);
      o[names[a]] = n;
    } else if (a.startsWith("--")) {
      throw new Error(`unknown option ${a}`);
    } else {
      rest.push(a);
    }
  }
  if (rest.length !== 1) throw new Error("expected exactly one MODEL.onnx");
  if (o.batch < 1 || o.iterations < 1 || o.threads < 1) throw new Error("--batch, --iterations, --threads must be >= 1");
  o.model = rest[0];
  return o;
}

// Linear interpolation between order statistics, as numpy.percentile's default.
function percentile(sorted, p) {
  const x = (sorted.length - 1) * p / 100;
  const lo = Math.floor(x), hi = Math.ceil(x);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (x - lo);
}

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const t0 = nowMs();
  const session = await ort.InferenceSession.create(o.model, {
    executionProviders: ["cpu"],
    intraOpNumThreads: o.threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: "all",
    executionMode: "sequential",
  });
  const loadMs = nowMs() - t0;
  const dims = [o.batch, o.channels, o.imageSize, o.imageSize];
  const count = dims.reduce((a, b) => a * b, 1);
  const inputName = session.inputNames[0], outputName = session.outputNames[0];

  if (o.logitsIn !== null) {
    const buf = fs.readFileSync(o.logitsIn);
    if (buf.length !== count * 4)
      throw new Error(`${o.logitsIn}: ${buf.length} bytes, expected ${count * 4} for float32 [${dims}]`);
    const data = new Float32Array(count);
    for (let i = 0; i < count; i++) data[i] = buf.readFloatLE(i * 4);
    const out = (await session.run({ [inputName]: new ort.Tensor("float32", data, dims) }))[outputName];
    process.stdout.write(JSON.stringify({ shape: out.dims, logits: Array.from(out.data) }) + "\n");
    return;
  }

  // Uniform [-1, 1) from a fixed-seed LCG: the values do not matter for speed, reproducibility does.
  const data = new Float32Array(count);
  let s = 12345;
  for (let i = 0; i < count; i++) { s = (Math.imul(s, 1103515245) + 12345) >>> 0; data[i] = s / 2147483648 - 1; }
  const feeds = { [inputName]: new ort.Tensor("float32", data, dims) };

  let t = nowMs();
  await session.run(feeds);
  const firstMs = nowMs() - t;
  for (let i = 0; i < o.warmup; i++) await session.run(feeds);
  const times = [];
  for (let i = 0; i < o.iterations; i++) {
    t = nowMs();
    await session.run(feeds);
    times.push(nowMs() - t);
  }
  times.sort((a, b) => a - b);
  const median = percentile(times, 50);
  const result = {
    runtime: `onnxruntime-node ${require("onnxruntime-node/package.json").version}`,
    model: o.model,
    batch_size: o.batch,
    threads: o.threads,
    iterations: o.iterations,
    load_ms: loadMs,
    first_inference_ms: firstMs,
    median_ms: median,
    p90_ms: percentile(times, 90),
    ms_per_image: median / o.batch,
    images_per_s: 1000 * o.batch / median,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
  };
  process.stdout.write(JSON.stringify(result, null, 2) + "\n");
}

main().catch((e) => {
  process.stderr.write(`ort_bench: error: ${e && e.message ? e.message : e}\n`);
  process.exit(1);
});
