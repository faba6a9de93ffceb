#!/usr/bin/env python3
"""Whole-command cost and calibration throughput (docs/benchmarks.md, "Whole command and
calibration throughput").

Parts (each one command, a few minutes):
  whole  the README's mobilenetv2 command (calibrate on the 100 images whose sorted index is a
         multiple of 10, --eval the other 900 with labels, default report with per-node
         sensitivity, --preprocess torchvision, --max-drop 1) at --threads 2, wall time divided by
         ONNX Runtime's fp32 inference over the same 1000 preprocessed images (batch 1, 2 threads,
         preprocessing not timed). With --before BINARY the same command of another build too; each
         binary the fastest of --repeats rounds that interleave them.
  calib  calibration throughput (the calibrate step) at --threads 1 vs 2 (percentile), and each method's per-image
         cost vs minmax at --threads 1: marginal cost of the calibrate step (quantize's timing line) between 10- and 100-image calibrations
         (model loading and emitting cancel out), min of interleaved repeats.
Usage: .venv/bin/python bench/whole_command.py --quantize build/tools/quantize --part whole [--before OLD]
       .venv/bin/python bench/whole_command.py --quantize build/tools/quantize --part calib
"""
import argparse
import os
import re
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from bench_data import imagenet_split, imagenet_torchvision  # noqa: E402

MODEL = "models/mobilenetv2/model.onnx"


def run(cmd):
    """Wall seconds, peak RSS (MiB) and CPU seconds (user + system) of cmd, which must succeed."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out_f, tempfile.TemporaryFile() as err_f:  # files: no pipe to fill
        proc = subprocess.Popen(cmd, stdout=out_f, stderr=err_f)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        out_f.seek(0)
        err_f.seek(0)
        out, err = out_f.read().decode(), err_f.read().decode()
    # Exit 4 is a failed accuracy budget: the model and report are still written (README).
    if os.waitstatus_to_exitcode(status) not in (0, 4):
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{err}")
    run.last_output = out
    return wall, usage.ru_maxrss / 1024.0, usage.ru_utime + usage.ru_stime


def calibrate_step(stdout: str) -> float:
    """Seconds of the calibrate step from quantize's "time: ... calibrate X s" line."""
    m = re.search(r"calibrate ([0-9.]+) s", stdout)
    if not m:
        sys.exit("quantize printed no 'time: ... calibrate X s' line")
    return float(m.group(1))


def link_dir(root: pathlib.Path, name: str, files) -> pathlib.Path:
    d = root / name
    d.mkdir()
    for f in files:
        (d / f.name).symlink_to(f.resolve())
    return d


def ort_seconds(model: pathlib.Path, images, passes: int = 3) -> float:
    xs = [imagenet_torchvision(f) for f in images]  # not timed
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    s = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    for x in xs[:10]:
        s.run(None, {name: x})
    # Each image's fastest of `passes` runs, summed: ORT's spinning threads suffer most from other
    # processes on the shared cores, and the ratio should not reward a noisy baseline.
    best = [float("inf")] * len(xs)
    for _ in range(passes):
        for i, x in enumerate(xs):
            start = time.perf_counter()
            s.run(None, {name: x})
            best[i] = min(best[i], time.perf_counter() - start)
    return sum(best)


def whole(args, tmp, calib, evals, shared):
    model = shared / MODEL
    labels = shared / "data/imagenet-labels.tsv"

    def command(binary):
        return [binary, model, "--calib", calib, "--eval", evals, "--labels", labels, "--preprocess", "torchvision",
                "--max-drop", "1", "--report", tmp / "report.json", "-o", tmp / "out.onnx", "--threads", "2", "-q"]

    images = sorted(calib.iterdir()) + sorted(evals.iterdir())
    ort_s = ort_seconds(model, images)
    print(f"ORT fp32, {len(images)} images, batch 1, 2 threads (sum of per-image best of 3): {ort_s:.2f} s")
    # --repeats rounds, the binaries interleaved in each: the fastest round of each (the machine's
    # load hits every binary alike; a single run per binary moved by 10 % between runs).
    binaries = [args.quantize] + ([args.before] if args.before else [])
    best = {}
    for _ in range(args.repeats):
        for binary in binaries:
            wall, rss, cpu = run(command(binary))
            if binary not in best or wall < best[binary][0]:
                best[binary] = (wall, rss, cpu)
    for binary in binaries:
        wall, rss, cpu = best[binary]
        print(f"whole command ({binary}): {wall:.1f} s wall, {cpu:.1f} s CPU, peak RSS {rss:.0f} MiB, "
              f"ratio {wall / ort_s:.1f}x ORT (fastest of {args.repeats})")
    print("command:", " ".join(map(str, command("quantize"))))


def calib_part(args, tmp, calib, shared):
    model = shared / MODEL
    ten = link_dir(tmp, "calib10", sorted(calib.iterdir())[:10])

    def command(data, method, threads, binary=None):
        return [binary or args.quantize, model, "--calib", data, "--preprocess", "torchvision", "--method", method,
                "--threads", str(threads), "-o", tmp / "c.onnx", "-q"]

    variants = [("percentile", 1), ("percentile", 2), ("minmax", 1), ("entropy", 1), ("mse", 1)]
    if args.before:
        variants += [("before:percentile", 1), ("before:percentile", 2), ("before:minmax", 1), ("before:entropy", 1),
                     ("before:mse", 1)]
    step = {}
    for _ in range(args.repeats):  # interleaved: load changes hit every variant alike
        for method, threads in variants:
            binary = args.before if method.startswith("before:") else None
            for n, data in ((10, ten), (100, calib)):
                key = (method, threads, n)
                cmd = command(data, method.removeprefix("before:"), threads, binary)
                run(cmd)
                step[key] = min(step.get(key, 1e9), calibrate_step(run.last_output))
    # Throughput from the calibrate step too: the placement search after it is another stage.
    per = {(m, t): (step[(m, t, 100)] - step[(m, t, 10)]) / 90 for (m, t, n) in step if n == 100}
    # Method costs from the calibrate step alone at one thread (quantize's own timing line): the
    # placement search after it also runs on calibration samples and would blur the comparison.
    per_cpu = {(m, t): (step[(m, t, 100)] - step[(m, t, 10)]) / 90 for (m, t, n) in step if n == 100}
    for label, m in (("", "percentile"), (f" ({args.before})", "before:percentile")):
        if (m, 1) not in per:
            continue
        one, two = per[(m, 1)], per[(m, 2)]
        print(f"calibration{label} (percentile): 1 thread {1 / one:.1f} img/s, 2 threads {1 / two:.1f} img/s, "
              f"speed-up {one / two:.2f}x")
    for prefix, label in (("", ""), ("before:", f" ({args.before})")):
        if (prefix + "minmax", 1) not in per_cpu:
            continue
        for m in ("minmax", "percentile", "entropy", "mse"):
            print(f"  {m:10s} {1000 * per_cpu[(prefix + m, 1)]:.1f} ms/image in the calibrate step at 1 thread, "
                  f"{per_cpu[(prefix + m, 1)] / per_cpu[(prefix + 'minmax', 1)]:.2f}x minmax{label}")
    print("command:", " ".join(map(str, command("CALIB", "METHOD", "THREADS"))))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quantize", required=True, type=pathlib.Path)
    ap.add_argument("--before", type=pathlib.Path, help="another quantize binary to time side by side")
    ap.add_argument("--shared", type=pathlib.Path,
                    default=pathlib.Path(__file__).resolve().parent.parent.parent / "shared")
    ap.add_argument("--part", choices=["whole", "calib"], required=True)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    args.quantize = args.quantize.resolve()
    if not (args.shared / MODEL).exists():
        sys.exit(f"needs {args.shared / MODEL} and {args.shared}/data/imagenet-sample")
    cf, _, ef, _ = imagenet_split(args.shared / "data")
    with tempfile.TemporaryDirectory() as t:
        tmp = pathlib.Path(t)
        calib, evals = link_dir(tmp, "calib", cf), link_dir(tmp, "eval", ef)
        print(f"load average before: {os.getloadavg()[0]:.1f} (2 cores)")
        if args.part == "whole":
            whole(args, tmp, calib, evals, args.shared)
        else:
            calib_part(args, tmp, calib, args.shared)
        print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
