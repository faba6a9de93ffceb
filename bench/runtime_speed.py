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
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "python"))
import parity  # noqa: E402  (the preprocessing of the real inputs)

SECTION = "## Runtime speed (fp32, batch 1)"


def mobilenetv2_batch1(data):
    return {"input": parity.mobilenetv2(data)["input"][:1].copy()}


def efficientnet_lite0(data):
    # Short side 256 (bilinear), center crop 224, RGB, (p - 127) / 128 (../shared/models README).
    img = Image.open(parity.imagenet_files(data)[0]).convert("RGB")
    w, h = img.size
    s = 256 / min(w, h)
    img = img.resize((round(w * s), round(h * s)), Image.BILINEAR)
    w, h = img.size
    l, t = (w - 224) // 2, (h - 224) // 2
    x = (np.asarray(img.crop((l, t, l + 224, t + 224)), np.float32) - 127.0) / 128.0
    return {"input": np.ascontiguousarray(x.transpose(2, 0, 1)[None])}


def minilm_l6(data):
    # One real tokenized sentence padded to 64 tokens (batch 1).
    z = np.load(data / "sentences" / "eval_pad64" / "0000.npz")
    return {k: z[k] for k in ("input_ids", "attention_mask", "token_type_ids")}


MODELS = {
    "mobilenetv2": mobilenetv2_batch1,
    "squeezenet1.1": parity.squeezenet,
    "yolox-nano": parity.yolox,
    "efficientnet-lite0": efficientnet_lite0,
    "minilm-l6": minilm_l6,
    "ppocrv4-rec": parity.ppocrv4_rec,
}


def ort_session(model, threads):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])


def time_ort(sess, feeds, repeat):
    sess.run(None, feeds)
    ms = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        ms.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(ms), min(ms)


def time_ptq(quantize, model, feeds, threads, repeat, tmp, reference=False):
    cmd = [quantize, "run", str(model), "-o", str(tmp / "out"), "--threads", str(threads),
           "--repeat", str(repeat)]
    for k, v in feeds.items():
        np.save(tmp / f"in_{k}.npy", v)
        cmd += ["--input", f"{k}={tmp / f'in_{k}.npy'}"]
    env = dict(os.environ)
    env.pop("PTQ_REFERENCE_KERNELS", None)
    if reference:  # the Eigen/scalar reference kernels instead of the AVX2 ones
        env["PTQ_REFERENCE_KERNELS"] = "1"
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
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
    ap.add_argument("--repeat", type=int, default=30, help="timed runs per side (split over rounds)")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved ORT/ptq rounds")
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated subset")
    ap.add_argument("--no-reference", dest="reference", action="store_false",
                    help="skip the PTQ_REFERENCE_KERNELS=1 (Eigen reference kernels) column")
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
            sess = ort_session(model, args.threads)
            # Interleaved rounds (ORT, ptq, ORT, ptq, ...) so both sides see the same machine
            # load; min over rounds, and the median of the per-round medians.
            per = max(1, args.repeat // args.rounds)
            o_meds, o_mins, p_meds, p_mins, r_mins = [], [], [], [], []
            for _ in range(args.rounds):
                med, mn = time_ort(sess, feeds, per)
                o_meds.append(med)
                o_mins.append(mn)
                med, mn = time_ptq(args.quantize, model, feeds, args.threads, per, tmp)
                p_meds.append(med)
                p_mins.append(mn)
                if args.reference:
                    r_mins.append(time_ptq(args.quantize, model, feeds, args.threads, per, tmp, True)[1])
            o_med, o_min = statistics.median(o_meds), min(o_mins)
            p_med, p_min = statistics.median(p_meds), min(p_mins)
            r_min = min(r_mins) if r_mins else float("nan")
            rows.append((name, list(next(iter(feeds.values())).shape), o_min, p_min, r_min, o_med, p_med))
            print(f"{name:18} ORT min {o_min:8.2f} ms  ptq min {p_min:8.2f} ms  ratio {p_min / o_min:5.2f}"
                  f"  reference kernels min {r_min:.2f}  (medians {o_med:.2f} / {p_med:.2f})", flush=True)
    cmd = (f".venv/bin/python bench/runtime_speed.py --quantize {args.quantize} --shared {args.shared} "
           f"--threads {args.threads} --repeat {args.repeat} --rounds {args.rounds}"
           + ("" if args.reference else " --no-reference"))
    lines = [SECTION, "",
             f"{args.repeat} timed runs per side in {args.rounds} interleaved rounds (ORT, ptq, ORT, ptq, "
             "...; each round after one warm-up run), min over all runs and median of the per-round "
             f"medians, {args.threads} intra-op threads on both "
             "sides, one real preprocessed input per model; ptq is timed inside `quantize run --repeat` "
             "(no start-up, load or file I/O), ORT around `InferenceSession.run` "
             f"(onnxruntime {ort.__version__}, ORT_ENABLE_ALL). Machine: {platform.machine()}, "
             f"{os.cpu_count()} cores; ptq built with the default PTQ_RUNTIME_NATIVE=ON (-march=native). Medians "
             "suffer when other jobs share the cores (the load average is recorded below); the min "
             "columns are the least disturbed runs and the ones to compare.",
             "", f"Load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}.",
             "", "```sh", cmd, "```", "",
             "The reference column is the same ptq binary with `PTQ_REFERENCE_KERNELS=1`: the Eigen "
             "im2col GEMM Conv, Eigen MatMul/Gemm and scalar window kernels that ran before the "
             "AVX2 kernels (src/runtime/ops/fast_kernels.*), timed in the same rounds.",
             "",
             "| model | input | ORT min ms | ptq min ms | ptq / ORT (min) | ptq reference kernels min ms | ORT median ms | ptq median ms | ptq / ORT (median) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for n, shape, omin, pmin, rmin, om, pm in rows:
        lines.append(f"| {n} | {'x'.join(map(str, shape))} | {omin:.2f} | {pmin:.2f} | {pmin / omin:.2f} | "
                     f"{rmin:.2f} | {om:.2f} | {pm:.2f} | {pm / om:.2f} |")
    write_section(pathlib.Path(args.out), "\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
