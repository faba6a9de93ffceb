#!/usr/bin/env python3
"""Batch-1 fp32 latency: ptq's reference runtime (`quantize run --repeat`) vs ONNX Runtime.

Both use the same intra-op thread count (default 2) and the same real preprocessed input
(../shared/data, as tests/python/parity.py builds it). ptq is timed inside the process
(`quantize run --repeat N` prints per-run times to stderr), so start-up, model loading and
file I/O are excluded on both sides; each side gets one warm-up run first. The table goes to
the "Runtime speed (fp32, batch 1)" section of docs/benchmarks.md (other sections untouched).

    .venv/bin/python bench/runtime_speed.py --quantize build/tools/quantize --shared ../shared
"""
import argparse
import os
import pathlib
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "python"))
import parity  # noqa: E402  (the preprocessing of the real inputs)

SECTION = "## Runtime speed (fp32, batch 1)"


def mobilenetv2_batch1(data):
    return {"input": parity.mobilenetv2(data)["input"][:1].copy()}


MODELS = {
    "mobilenetv2": mobilenetv2_batch1,
    "squeezenet1.1": parity.squeezenet,
    "yolox-nano": parity.yolox,
    "ppocrv4-rec": parity.ppocrv4_rec,
}


def time_ort(model, feeds, threads, repeat):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
    sess.run(None, feeds)
    ms = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        ms.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(ms), min(ms)


def time_ptq(quantize, model, feeds, threads, repeat, tmp):
    cmd = [quantize, "run", str(model), "-o", str(tmp / "out"), "--threads", str(threads),
           "--repeat", str(repeat)]
    for k, v in feeds.items():
        np.save(tmp / f"in_{k}.npy", v)
        cmd += ["--input", f"{k}={tmp / f'in_{k}.npy'}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    m = re.search(r"median ([0-9.]+) ms, min ([0-9.]+) ms", proc.stderr)
    if not m:
        raise RuntimeError(f"no timing in quantize run output: {proc.stderr[-300:]}")
    return float(m.group(1)), float(m.group(2))


def write_section(path, text):
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    start = old.find(SECTION)
    if start < 0:
        new = old.rstrip("\n") + "\n\n" + text
    else:
        nxt = old.find("\n## ", start + len(SECTION))
        new = old[:start] + text + ("" if nxt < 0 else old[nxt:].lstrip("\n").join(["\n", ""]))
    path.write_text(new.rstrip("\n") + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quantize", default=str(ROOT / "build" / "tools" / "quantize"))
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated subset")
    args = ap.parse_args()
    shared = pathlib.Path(args.shared)
    data = shared / "data"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        for name in args.models.split(","):
            make = MODELS[name]
            model = shared / "models" / name / "model.onnx"
            feeds = make(data)
            o_med, o_min = time_ort(model, feeds, args.threads, args.repeat)
            p_med, p_min = time_ptq(args.quantize, model, feeds, args.threads, args.repeat, tmp)
            rows.append((name, list(next(iter(feeds.values())).shape), o_med, p_med, p_med / o_med, o_min, p_min))
            print(f"{name:16} ORT {o_med:8.2f} ms  ptq {p_med:8.2f} ms  ratio {p_med / o_med:5.2f}", flush=True)
    cmd = (f".venv/bin/python bench/runtime_speed.py --quantize {args.quantize} --shared {args.shared} "
           f"--threads {args.threads} --repeat {args.repeat}")
    lines = [SECTION, "",
             f"Median of {args.repeat} timed runs after one warm-up, {args.threads} intra-op threads on both "
             "sides, one real preprocessed input per model; ptq is timed inside `quantize run --repeat` "
             "(no start-up, load or file I/O), ORT around `InferenceSession.run` "
             f"(onnxruntime {ort.__version__}, ORT_ENABLE_ALL). Machine: {platform.machine()}, "
             f"{os.cpu_count()} cores; ptq built with the default PTQ_RUNTIME_NATIVE=ON (-march=native). Medians "
             "suffer when other jobs share the cores (the load average is recorded below); the min "
             "columns are the least disturbed runs.",
             "", f"Load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}.",
             "", "```sh", cmd, "```", "",
             "| model | input | ORT median ms | ptq median ms | ptq / ORT | ORT min ms | ptq min ms | ptq / ORT (min) |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for n, shape, om, pm, r, omin, pmin in rows:
        lines.append(f"| {n} | {'x'.join(map(str, shape))} | {om:.2f} | {pm:.2f} | {r:.2f} | {omin:.2f} | {pmin:.2f} | {pmin / omin:.2f} |")
    write_section(pathlib.Path(args.out), "\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
