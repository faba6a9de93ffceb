#!/usr/bin/env python3
"""Batch-1 latency of several ONNX models in ONNX Runtime, interleaved: for side-by-side ratios.

Each round runs every model once, in turn, on the same input (the first model's first input, its
symbolic dimensions from --shape or 1, random normal with seed 0 unless --input names a .npy), so
a busy spell on this shared machine slows all of them alike. Prints each model's median and
minimum over the rounds, after one warm-up run each.

    .venv/bin/python bench/latency.py --threads 1 --rounds 150 \\
        --shape 1,3,48,320 fp32=../shared/models/ppocrv4-rec/model.onnx default=bench/.work/ppocrv4-rec/ablation_0.onnx
"""
import argparse
import pathlib
import sys
import time

import numpy as np
import onnxruntime as ort


def session(path: pathlib.Path, threads: int) -> ort.InferenceSession:
    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    o.inter_op_num_threads = 1
    o.log_severity_level = 3
    return ort.InferenceSession(str(path), o, providers=["CPUExecutionProvider"])


def feed(s: ort.InferenceSession, shape: list[int] | None, npy: pathlib.Path | None) -> dict:
    i = s.get_inputs()[0]
    if npy is not None:
        return {i.name: np.load(npy)}
    dims = shape or [d if isinstance(d, int) and d > 0 else 1 for d in i.shape]
    kind = np.float32 if i.type == "tensor(float)" else np.int64
    x = np.random.default_rng(0).standard_normal(dims).astype(kind)
    return {i.name: x}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="LABEL=PATH (or PATH, labelled by its file name)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--shape", default=None, help="input shape, e.g. 1,3,48,320 (default: the model's, 1 for symbolic)")
    ap.add_argument("--input", type=pathlib.Path, default=None, help="a .npy to feed instead of random data")
    args = ap.parse_args()
    if args.rounds < 1 or args.threads < 1:
        ap.error("--rounds and --threads must be at least 1")
    labelled = [m.split("=", 1) if "=" in m else [pathlib.Path(m).name, m] for m in args.models]
    for _, p in labelled:
        if not pathlib.Path(p).is_file():
            print(f"latency.py: no model file '{p}'", file=sys.stderr)
            return 2
    sessions = {label: session(pathlib.Path(p), args.threads) for label, p in labelled}
    shape = [int(d) for d in args.shape.split(",")] if args.shape else None
    x = feed(next(iter(sessions.values())), shape, args.input)
    for s in sessions.values():
        s.run(None, x)
    times: dict[str, list[float]] = {label: [] for label in sessions}
    for _ in range(args.rounds):
        for label, s in sessions.items():
            t = time.perf_counter()
            s.run(None, x)
            times[label].append(time.perf_counter() - t)
    symbolic = not shape and args.input is None and any(
        not (isinstance(d, int) and d > 0) for d in next(iter(sessions.values())).get_inputs()[0].shape)
    print(f"ORT {ort.__version__}, {args.threads} thread(s), {args.rounds} interleaved rounds, input "
          f"{'x'.join(str(d) for d in next(iter(x.values())).shape)}"
          + (" (symbolic dimensions set to 1: --shape to choose)" if symbolic else ""))
    print("| model | median ms | min ms |\n|---|---|---|")
    for label, t in times.items():
        print(f"| {label} | {1e3 * np.median(t):.2f} | {1e3 * np.min(t):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
