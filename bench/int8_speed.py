#!/usr/bin/env python3
"""Batch-1 int8 latency: `quantize run --mode integer` (ptq's integer kernels) vs ONNX Runtime
on the same int8 models, which ptq quantizes first (mobilenetv2, squeezenet1.1; 20 calibration
images from ../shared/data, as tests/python/parity_int8.py does).

Both sides use the same intra-op thread count (default 2) and a real preprocessed input. ptq is
timed inside the process (`quantize run --repeat N`: one warm-up, then N timed runs; start-up,
load and file I/O excluded), ORT around `InferenceSession.run` after one warm-up. The machine is
shared and noisy, so the two sides are interleaved over several rounds and the minimum over all
rounds is reported (the least disturbed run of each). The table goes to the "Integer-kernel mode
speed" section of docs/benchmarks.md (other sections untouched).

    .venv/bin/python bench/int8_speed.py --quantize build/tools/quantize --shared ../shared
"""
import argparse
import os
import pathlib
import platform
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "python"))
import parity  # noqa: E402  (the preprocessing of the real inputs)
import parity_int8  # noqa: E402  (torchvision / caffe preprocessing of one image)

SECTION = "## Integer-kernel mode speed"

# name: (calibration preset, preprocessing of one image)
MODELS = {
    "mobilenetv2": ("torchvision", parity_int8.torchvision),
    "squeezenet1.1": ("caffe", parity_int8.caffe),
}


def ort_min(model, feeds, threads, repeat):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
    sess.run(None, feeds)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        best = min(best, (time.perf_counter() - t0) * 1e3)
    return best


def ptq_min(quantize, model, feeds, threads, repeat, tmp):
    cmd = [quantize, "run", str(model), "-o", str(tmp / "out"), "--threads", str(threads),
           "--repeat", str(repeat), "--mode", "integer"]
    for k, v in feeds.items():
        np.save(tmp / f"in_{k}.npy", v)
        cmd += ["--input", f"{k}={tmp / f'in_{k}.npy'}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    m = re.search(r"min ([0-9.]+) ms", proc.stderr)
    if not m:
        raise RuntimeError(f"no timing in quantize run output: {proc.stderr[-300:]}")
    return float(m.group(1))


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
    ap.add_argument("--repeat", type=int, default=20, help="timed runs per round and side")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (ORT, ptq, ORT, ...)")
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    ap.add_argument("--baseline", help="another quantize binary (e.g. an older build) timed in the same rounds")
    ap.add_argument("--baseline-label", default="baseline", help="its name in the table")
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args()
    shared = pathlib.Path(args.shared)
    files = parity.imagenet_files(shared / "data")
    load = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        calib = tmp / "calib"
        calib.mkdir()
        for f in files[:20]:
            (calib / f.name).symlink_to(f.resolve())
        for name, (preset, prep) in MODELS.items():
            model = tmp / f"{name}.int8.onnx"
            subprocess.run([args.quantize, str(shared / "models" / name / "model.onnx"), "--calib", str(calib),
                            "--preprocess", preset, "-o", str(model), "--threads", "2", "-q"], check=True)
            import onnx
            iname = onnx.load(str(model)).graph.input[0].name
            feeds = {iname: prep(files[500])}
            o = p = b = float("inf")
            for _ in range(args.rounds):
                o = min(o, ort_min(model, feeds, args.threads, args.repeat))
                p = min(p, ptq_min(args.quantize, model, feeds, args.threads, args.repeat, tmp))
                if args.baseline:
                    b = min(b, ptq_min(args.baseline, model, feeds, args.threads, args.repeat, tmp))
            rows.append((name, o, p, b))
            extra = f"  {args.baseline_label} {b:8.2f} ms ratio {b / o:6.2f}" if args.baseline else ""
            print(f"{name:16} ORT {o:8.2f} ms  ptq integer {p:8.2f} ms  ratio {p / o:5.2f}{extra}", flush=True)
    if args.no_write:
        return 0
    cmd = (f".venv/bin/python bench/int8_speed.py --quantize {args.quantize} --shared {args.shared} "
           f"--threads {args.threads} --repeat {args.repeat} --rounds {args.rounds}")
    if args.baseline:
        cmd += f" --baseline {args.baseline} --baseline-label '{args.baseline_label}'"
    lines = [SECTION, "",
             "ptq's own int8 QDQ models (quantized by `quantize` with 20 calibration images) run batch 1 "
             "by `quantize run --mode integer` (the QDQ groups ORT fuses, run as ORT's integer kernels; "
             "outputs bit-identical with ORT, tests/python/parity_int8.py) and by ONNX Runtime "
             f"(onnxruntime {ort.__version__}, ORT_ENABLE_ALL, CPU EP). {args.threads} intra-op threads on "
             f"both sides; min over {args.rounds} interleaved rounds of {args.repeat} timed runs each "
             "(after a warm-up), ptq timed inside `quantize run --repeat`. Machine: "
             f"{platform.machine()}, {os.cpu_count()} cores, shared with other jobs (load average at the "
             f"start: {' '.join(f'{x:.2f}' for x in load)}).",
             "",
             "The integer kernels (src/runtime/ops/int8_gemm.*, qlinear_conv.cpp, qlinear_matmul.cpp) work on "
             "the 8-bit codes: int32 accumulation with weights packed once per constant, AVX2 with a runtime "
             "CPU check and a scalar fallback, then MLAS's float requantization. They reproduce ORT's "
             "arithmetic on this CPU: without VNNI, MLAS multiplies uint8 activations by int8 weights with "
             "vpmaddubsw, which saturates each pair of adjacent-K products to int16; ptq does the same pairs "
             "(and the exact sums where MLAS is exact: depthwise convolutions, VNNI CPUs, other type pairs). "
             "The work split depends on shapes only, so results do not depend on --threads."]
    if args.baseline:
        lines += ["", f"`{args.baseline_label}` is another `quantize` binary timed in the same rounds: "
                  "the integer mode as it was before these kernels (int8 emulated with float/double "
                  "convolutions and Eigen GEMMs), built from that commit with the same flags."]
    lines += ["", "```sh", cmd, "```", "",
             "| model | ORT int8 min ms | ptq integer min ms | ptq / ORT |"
             + (f" {args.baseline_label} min ms | {args.baseline_label} / ORT |" if args.baseline else ""),
             "|---|---:|---:|---:|" + ("---:|---:|" if args.baseline else "")]
    for n, o, p, b in rows:
        lines.append(f"| {n} | {o:.2f} | {p:.2f} | {p / o:.2f} |"
                     + (f" {b:.2f} | {b / o:.2f} |" if args.baseline else ""))
    write_section(pathlib.Path(args.out), "\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
