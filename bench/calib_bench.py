#!/usr/bin/env python3
"""Calibration memory and speed, and int8 vs fp32 latency in ONNX Runtime (docs/benchmarks.md).

Measures, in one run on this machine:
- peak RSS of `quantize` calibrating mobilenetv2 on 100 vs 1000 ImageNet images (streaming:
  memory must not grow with the calibration set; goal ratio <= 1.1);
- calibration time per image (marginal cost between the 100- and 1000-image runs) vs one fp32
  forward pass of ptq's runtime (goal <= 1.3x for the single-pass method);
- ONNX Runtime latency of ptq's int8 mobilenetv2 (--target ort-x86) vs the fp32 model.
Usage: .venv/bin/python bench/calib_bench.py --quantize build/tools/quantize [--write docs/benchmarks.md]
"""
import argparse
import datetime
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort

SECTION = "## Calibration memory and speed; int8 latency in ONNX Runtime"


def run_measured(cmd):
    """Runs cmd; returns (wall seconds, peak RSS in MiB) of that child alone."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{err}")
    return wall, usage.ru_maxrss / 1024.0


def image_dir(tmp, images, n):
    d = tmp / f"img{n}"
    d.mkdir()
    for f in images[:n]:
        (d / f.name).symlink_to(f.resolve())
    return d


def ort_latency(path, x, runs=200):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    for _ in range(20):
        s.run(None, {name: x})
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        s.run(None, {name: x})
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quantize", required=True)
    ap.add_argument("--shared", type=pathlib.Path, default=pathlib.Path(__file__).resolve().parents[1].parent / "shared")
    ap.add_argument("--write", type=pathlib.Path, help="replace this script's section in the given markdown file")
    args = ap.parse_args()
    model = args.shared / "models/mobilenetv2/model.onnx"
    images = sorted((args.shared / "data/imagenet-sample").glob("*.jpg"))
    if not model.exists() or len(images) < 1000:
        sys.exit(f"needs {model} and 1000 images in {args.shared}/data/imagenet-sample")
    rows = []
    with tempfile.TemporaryDirectory() as t:
        tmp = pathlib.Path(t)
        dirs = {n: image_dir(tmp, images, n) for n in (100, 1000)}
        results = {}
        for method in ("minmax", "percentile"):
            for n, d in dirs.items():
                out = tmp / f"{method}{n}.onnx"
                wall, rss = run_measured([args.quantize, str(model), "--calib", str(d), "--preprocess", "torchvision",
                                          "--method", method, "--threads", "2", "-o", str(out), "-q"])
                results[(method, n)] = (wall, rss)
                rows.append(f"| {method} | {n} | {wall:.1f} | {rss:.0f} |")
        # One fp32 forward pass of ptq's runtime: `quantize run` on one preprocessed image,
        # repeated, minus one run (start-up and loading).
        x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
        np.save(tmp / "x.npy", x)
        t1, _ = run_measured([args.quantize, "run", str(model), "--input", f"input={tmp / 'x.npy'}", "-o", str(tmp / "o1"),
                              "--threads", "2"])
        t21, _ = run_measured([args.quantize, "run", str(model), "--input", f"input={tmp / 'x.npy'}", "-o", str(tmp / "o21"),
                               "--threads", "2", "--repeat", "21"]) if supports_repeat(args.quantize) else (None, None)
        forward_ms = 1000 * (t21 - t1) / 20 if t21 else None
        fp32_ms = ort_latency(model, x)
        int8_ms = ort_latency(tmp / "percentile100.onnx", x)
    lines = [SECTION, "",
             f"Command: `.venv/bin/python bench/calib_bench.py --quantize build/tools/quantize --write docs/benchmarks.md`",
             f"({datetime.date.today()}, {platform.machine()}, {os.cpu_count()} cores, shared machine: expect ±30 %).", "",
             "mobilenetv2, `--preprocess torchvision --threads 2`, whole `quantize` command (decode, preprocess,",
             "calibrate, emit, save):", "",
             "| method | images | wall s | peak RSS MiB |", "|---|---|---|---|", *rows, ""]
    for method in ("minmax", "percentile"):
        (w1, r1), (w2, r2) = results[(method, 100)], results[(method, 1000)]
        per_image = 1000 * (w2 - w1) / 900
        line = f"- {method}: RSS 1000 vs 100 images = {r2 / r1:.3f}x (goal <= 1.1); {per_image:.1f} ms per extra image"
        if forward_ms:
            line += f" = {per_image / forward_ms:.2f}x one fp32 forward pass of ptq's runtime ({forward_ms:.1f} ms)"
        lines.append(line + ".")
    lines += ["", "Per-image cost includes JPEG decoding and preprocessing. Calibration is one streaming pass;",
              "histogram methods (percentile, entropy, mse) also bin every value of every float tensor into",
              "power-of-two histograms, which is the extra cost over minmax.", "",
              f"ONNX Runtime {ort.__version__}, 2 threads, batch 1, median of 200 runs: mobilenetv2 fp32 {fp32_ms:.2f} ms,",
              f"ptq int8 (`--target ort-x86`, percentile) {int8_ms:.2f} ms: {fp32_ms / int8_ms:.2f}x faster.", ""]
    text = "\n".join(lines)
    print(text)
    if args.write:
        replace_section(args.write, text)


def supports_repeat(quantize):
    return "--repeat" in subprocess.run([quantize, "run", "--help"], capture_output=True, text=True).stdout


def replace_section(path, text):
    """Replaces this script's section (up to the next '## ') or appends it."""
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    start = old.find(SECTION)
    if start < 0:
        new = old.rstrip("\n") + "\n\n" + text
    else:
        end = old.find("\n## ", start + len(SECTION))
        new = old[:start] + text + ("" if end < 0 else old[end:])
    path.write_text(new.rstrip("\n") + "\n")


if __name__ == "__main__":
    main()
