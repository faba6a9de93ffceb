#!/usr/bin/env python3
"""Empirical bias correction's gains checked in ONNX Runtime on YOLOX-nano (pipeline/empirical_bias.h).

ptq quantizes YOLOX-nano on 20 letterboxed ImageNet photos (.npy rows written here) with
--save-calib. Its table names the Convs read through a SiLU that got a gain per output channel.
In ORT (optimizations off, so each Conv output is the float value before its QuantizeLinear), on
the 16 rows the correction measured on: for the first gained Convs in graph order, the slope of
the int8 output on fp32's (over the elements whose fp32 value lies inside the range of the Q that
reads the Conv, as ptq fits it) is 1 where the gain was not clamped: the emitter folded the gain
into the weight and bias scales as ptq's own run assumed. Without the correction
(--no-empirical-bias-correction) the slopes miss 1 by more. The table reloaded with --load-calib
writes the same model. Exit 77 (skip) when ../shared or ONNX Runtime is missing.
"""
import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import onnx
    import onnxruntime as ort  # noqa: F401 (a clear skip when missing)
    from onnx import numpy_helper
    from PIL import Image

    from empirical_bias_ort import session  # ORT, optimizations off, the named values as outputs
except ImportError as e:
    print(f"SKIP: ONNX Runtime / onnx / numpy / Pillow not importable ({e}); run tools/setup.sh")
    sys.exit(77)

ROWS = 16  # empirical bias correction's rows: the first 16
CHECKED = 4  # gained Convs checked (deeper down ORT's and ptq's float sums differ by more; below)
SIZE = 416
# |slope - 1| allowed: ORT measured at most 4e-6 on the first four gained Convs (float sums in
# other orders than ptq's), against 3e-2 to 6e-2 at most without the correction.
TOLERANCE = 1e-4


def rows(shared: pathlib.Path, out: pathlib.Path) -> list:
    """YOLOX's preprocessing: fit inside 416x416 keeping aspect, top-left, pad 114, BGR 0..255."""
    out.mkdir()
    feeds = []
    for i, p in enumerate(sorted((shared / "data/imagenet-sample").glob("*.jpg"))[:20]):
        img = Image.open(p).convert("RGB")
        r = min(SIZE / img.height, SIZE / img.width)
        nw, nh = int(img.width * r), int(img.height * r)
        canvas = np.full((SIZE, SIZE, 3), 114.0, np.float32)
        canvas[:nh, :nw] = np.asarray(img.resize((nw, nh), Image.BILINEAR), np.float32)[..., ::-1]
        x = canvas.transpose(2, 0, 1)[None].copy()
        np.save(out / f"{i:04d}.npy", x)
        feeds.append(x)
    return feeds


def outputs(model: onnx.ModelProto, names, feeds) -> dict:
    s = session(model, names)
    inp = s.get_inputs()[0].name
    got = {n: [] for n in names}
    for x in feeds:
        for n, y in zip(names, s.run(names, {inp: x})):
            got[n].append(y)
    return {n: np.concatenate(v) for n, v in got.items()}


def reader_range(model: onnx.ModelProto, name: str):
    """The float range of the QuantizeLinear reading `name` (uint8 or int8)."""
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "QuantizeLinear" and n.input[0] == name:
            scale, zp = float(inits[n.input[1]]), inits[n.input[2]]
            lo, hi = (0, 255) if zp.dtype == np.uint8 else (-128, 127)
            return (lo - int(zp)) * scale, (hi - int(zp)) * scale
    return -np.inf, np.inf


def slopes(q: np.ndarray, f: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Per channel, the slope of the int8 output on fp32's over the elements with lo < f < hi."""
    out = []
    for c in range(q.shape[1]):
        x, y = f[:, c].ravel().astype(np.float64), q[:, c].ravel().astype(np.float64)
        keep = (x > lo) & (x < hi)
        x, y = x[keep], y[keep]
        vx = x.var()
        out.append(((x - x.mean()) * (y - y.mean())).mean() / vx if vx > 0 else 1.0)
    return np.array(out)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quantize", required=True)
    ap.add_argument("--shared", type=pathlib.Path, required=True)
    a = ap.parse_args()
    fp32_path = a.shared / "models/yolox-nano/model.onnx"
    if not fp32_path.is_file() or not (a.shared / "data/imagenet-sample").is_dir():
        print(f"SKIP: {fp32_path} or the ImageNet sample is missing")
        return 77
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        t = pathlib.Path(tmp)
        feeds = rows(a.shared, t / "calib")

        def quantize(out, *flags):
            r = subprocess.run([a.quantize, str(fp32_path), "--calib", str(t / "calib"), "-o", str(t / out), "-q",
                                *flags], capture_output=True, text=True)
            if r.returncode != 0:
                raise SystemExit(f"FAIL: quantize {' '.join(flags)} exited {r.returncode}: {r.stderr}")
            return onnx.load(str(t / out))

        with_gain = quantize("with.onnx", "--save-calib", str(t / "table.json"))
        without = quantize("without.onnx", "--no-empirical-bias-correction")
        gains = json.loads((t / "table.json").read_text()).get("empirical_bias_correction", {}).get("gain", {})
        if not gains:
            failures.append("the table records no gain on YOLOX-nano")
        order = {n.output[0]: i for i, n in enumerate(with_gain.graph.node)}
        names = sorted(gains, key=lambda n: order.get(n, len(order)))[:CHECKED]
        want = outputs(onnx.load(str(fp32_path)), names, feeds[:ROWS])
        got = outputs(with_gain, names, feeds[:ROWS])
        before = outputs(without, names, feeds[:ROWS])
        worst_before = 0.0
        for n in names:
            lo, hi = reader_range(with_gain, n)
            g = np.array(gains[n])
            free = (g > 0.8) & (g < 1.25)  # clamped gains do not reach a slope of 1
            s = slopes(got[n], want[n], lo, hi)[free]
            b = slopes(before[n], want[n], *reader_range(without, n))[free]
            miss = np.abs(s - 1)
            print(f"{n}: {free.sum()} of {len(g)} channels' gains free; |slope - 1| max {miss.max():.2e} "
                  f"(without the correction: max {np.abs(b - 1).max():.2e}, median {np.median(np.abs(b - 1)):.2e})")
            if (miss > TOLERANCE).any():
                c = int(np.argmax(miss))
                failures.append(f"{n}: a free channel's slope is {s[c]:.6f}, not 1 within {TOLERANCE}")
            worst_before = max(worst_before, float(np.abs(b - 1).max()))
        if names and worst_before <= TOLERANCE:
            failures.append("without the correction every slope was already 1: the test shows nothing")
        again = subprocess.run([a.quantize, str(fp32_path), "--load-calib", str(t / "table.json"), "-o",
                                str(t / "again.onnx"), "-q"], capture_output=True, text=True)
        if again.returncode != 0 or (t / "again.onnx").read_bytes() != (t / "with.onnx").read_bytes():
            failures.append(f"--load-calib did not rebuild the same model: {again.stderr}")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
