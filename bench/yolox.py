#!/usr/bin/env python3
"""YOLOX-nano: fp32 detections reproduced by ptq int8 models in ONNX Runtime, per flag set.

Calibrates on the ImageNet calibration split (100 letterboxed photos, written once as .npy under
bench/.work/yolox/calib), evaluates on detect-samples (42 fp32 detections) and N ImageNet eval
photos, and prints one row per ptq flag set: detections reproduced (IoU >= 0.5, same class),
output SQNR, and int8 latency in ORT next to fp32. For iterating on accuracy methods:

    .venv/bin/python bench/yolox.py --ptq="" --ptq="--method minmax" --photos 300
"""
import argparse
import pathlib
import shlex
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import bench_data  # noqa: E402
import bench_metrics as bm  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent


def session(path):
    o = ort.SessionOptions()
    o.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), o, providers=["CPUExecutionProvider"])


def latency(sess, x, rounds=3, runs=10):
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(runs):
            sess.run(None, {"images": x})
        best = min(best, (time.perf_counter() - t) / runs * 1e3)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quantize", default=str(ROOT / "build/tools/quantize"))
    ap.add_argument("--ptq", action="append", default=None, help="ptq flag set (repeatable)")
    ap.add_argument("--photos", type=int, default=100, help="ImageNet eval photos besides detect-samples")
    ap.add_argument("--work", default=str(ROOT / "bench/.work/yolox"))
    args = ap.parse_args()
    shared = ROOT.parent / "shared"
    model = shared / "models/yolox-nano/model.onnx"
    if not model.exists():
        sys.exit(f"skip: {model} not found (needs ../shared)")
    work = pathlib.Path(args.work)
    calib = work / "calib"
    cf, _, ef, _ = bench_data.imagenet_split(shared / "data")
    if not calib.is_dir() or len(list(calib.glob("*.npy"))) != len(cf):
        calib.mkdir(parents=True, exist_ok=True)
        for i, p in enumerate(cf):
            np.save(calib / f"{i:04d}.npy", bench_data.letterbox_bgr(p))
    samples = sorted((shared / "data/detect-samples").glob("*.jpg"))
    photos = ef[:: max(1, len(ef) // args.photos)][: args.photos]
    xs = [bench_data.letterbox_bgr(p) for p in samples + photos]
    groups = ["detect-samples"] * len(samples) + ["imagenet"] * len(photos)
    fp = session(model)
    ref_out = [fp.run(None, {"images": x})[0] for x in xs]
    ref = [bm.yolox_detections(o[0]) for o in ref_out]
    print("| ptq flags | detect-samples | ImageNet photos | SQNR dB | int8 ms | fp32 ms |")
    print("|---|---|---|---|---|---|")
    for i, flags in enumerate(args.ptq or [""]):
        out = work / f"ptq_{i}.onnx"
        cmd = [args.quantize, str(model), "--calib", str(calib), "-o", str(out), "-q"] + shlex.split(flags)
        if flags.startswith("@"):  # an int8 model made elsewhere (e.g. from an edited table)
            out, cmd = pathlib.Path(flags[1:]), ["true"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode not in (0, 4):
            print(f"| {flags} | failed ({r.returncode}): {r.stderr.strip().splitlines()[-1]} |")
            continue
        s = session(out)
        outs = [s.run(None, {"images": x})[0] for x in xs]
        m = bm.detect_metrics(ref, [bm.yolox_detections(o[0]) for o in outs], groups)
        sq = np.mean([bm.sqnr_db(a, b) for a, b in zip(ref_out, outs)])
        print(f"| {flags or '(default)'} | {m['value']:.1f} % ({m['hits']}/{m['n']}) "
              f"| {m['imagenet_value']:.1f} % ({m['imagenet_hits']}/{m['imagenet_n']}) | {sq:.2f} "
              f"| {latency(s, xs[0]):.1f} | {latency(fp, xs[0]):.1f} |", flush=True)


if __name__ == "__main__":
    main()
