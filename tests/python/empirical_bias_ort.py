#!/usr/bin/env python3
"""Empirical bias correction checked in ONNX Runtime on mobilenetv2 (pipeline/empirical_bias.h).

ptq quantizes mobilenetv2 on 20 ImageNet images (.npy rows written here) with --save-calib. Its
table names the Convs whose biases the correction moved, by output name, with each shift. In ORT
(optimizations off, so each Conv output is the float value before its QuantizeLinear), on the 16
rows the correction measured on (the first 16):
- each of the first 8 moved Convs' output mean per channel equals fp32's (times the depthwise input scale, where
  ptq rescaled that Conv's output) to within half a bias step: ptq's one pass over the graph
  computed the same int8 values as a full run of the model it wrote;
- without the correction (--no-empirical-bias-correction) some of those means miss by more;
- the table reloaded with --load-calib writes the same model.
Exit 77 (skip) when ../shared or ONNX Runtime is missing.
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
    import onnxruntime as ort
    from onnx import numpy_helper
    from PIL import Image
except ImportError as e:
    print(f"SKIP: ONNX Runtime / onnx / numpy / Pillow not importable ({e}); run tools/setup.sh")
    sys.exit(77)

ROWS = 16  # empirical bias correction's rows, whatever the --effort: the first 16
CHECKED = 8  # moved Convs checked (below)
CHANNEL_SCALE_KEY = "ptq.channel_scale:"


def rows(shared: pathlib.Path, out: pathlib.Path) -> list:
    out.mkdir()
    feeds = []
    mean = np.array([0.485, 0.456, 0.406], np.float32).reshape(3, 1, 1)
    std = np.array([0.229, 0.224, 0.225], np.float32).reshape(3, 1, 1)
    for i, p in enumerate(sorted((shared / "data/imagenet-sample").glob("*.jpg"))[:20]):
        img = Image.open(p).convert("RGB").resize((224, 224), Image.BILINEAR)
        x = ((np.asarray(img, np.float32).transpose(2, 0, 1) / 255 - mean) / std)[None].astype(np.float32)
        np.save(out / f"{i:04d}.npy", x)
        feeds.append(x)
    return feeds


def session(model: onnx.ModelProto, names) -> ort.InferenceSession:
    m = onnx.ModelProto()
    m.CopyFrom(model)
    del m.graph.output[:]
    for n in names:
        m.graph.output.append(onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None))
    o = ort.SessionOptions()
    o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(m.SerializeToString(), o, providers=["CPUExecutionProvider"])


def channel_means(model: onnx.ModelProto, names, feeds) -> dict:
    s = session(model, names)
    inp = s.get_inputs()[0].name
    sums = {n: 0 for n in names}
    for x in feeds:
        for n, y in zip(names, s.run(names, {inp: x})):
            sums[n] = sums[n] + y.astype(np.float64).mean(axis=(0, 2, 3))
    return {n: v / len(feeds) for n, v in sums.items()}


def bias_steps(model: onnx.ModelProto, names) -> dict:
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}
    steps = {}
    for n in model.graph.node:
        if n.op_type == "Conv" and n.output[0] in names:
            dq = producer[n.input[2]]
            steps[n.output[0]] = inits[dq.input[1]].astype(np.float64)
    return steps


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quantize", required=True)
    ap.add_argument("--shared", type=pathlib.Path, required=True)
    a = ap.parse_args()
    fp32_path = a.shared / "models/mobilenetv2/model.onnx"
    if not fp32_path.is_file() or not (a.shared / "data/imagenet-sample").is_dir():
        print(f"SKIP: {fp32_path} or the ImageNet sample is missing")
        return 77
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        t = pathlib.Path(tmp)
        feeds = rows(a.shared, t / "calib")

        # int8 weights (--uint8-weights off) keep the model the tolerance below was set on: ORT's
        # unfused float run and ptq's fake-quant run round a few upstream Q inputs differently
        # (float summation order; the largest element differences are alike with both weight
        # encodings), which moved channel means of the last moved Conv by 2-3e-4 in the model with
        # uint8 weights, past the tolerance's 1e-4 floor; uint8 weights are checked bit-exact
        # against ORT's fused kernels in parity_int8.py.
        pinned = ("--uint8-weights", "off")

        def quantize(out, *flags):
            r = subprocess.run([a.quantize, str(fp32_path), "--calib", str(t / "calib"), "-o", str(t / out), "-q",
                                *pinned, *flags], capture_output=True, text=True)
            if r.returncode != 0:
                raise SystemExit(f"FAIL: quantize {' '.join(flags)} exited {r.returncode}: {r.stderr}")
            return onnx.load(str(t / out))

        with_bc = quantize("with.onnx", "--save-calib", str(t / "table.json"))
        without = quantize("without.onnx", "--no-empirical-bias-correction")
        shifts = json.loads((t / "table.json").read_text()).get("empirical_bias_correction", {}).get("bias_shift", {})
        if not shifts:
            failures.append("the table records no empirical bias shift on mobilenetv2")
        # The first moved Convs in graph order: deeper down, ORT's float Convs and ptq's (other
        # summation orders) have flipped enough upstream Q codes that channel means differ by more
        # than the tolerance whatever the biases (on these 16 rows, ORT vs ptq's own fake-quant
        # run of the same model: 1e-7 at the first moved Conv, 1e-4 at the ninth, 9e-3 at the last).
        order = {n.output[0]: i for i, n in enumerate(onnx.load(str(t / "with.onnx")).graph.node)}
        names = sorted(shifts, key=lambda n: order.get(n, len(order)))[:CHECKED]
        fp32 = onnx.load(str(fp32_path))
        scale = {p.key[len(CHANNEL_SCALE_KEY):]: np.array([float(v) for v in p.value.split(",")])
                 for p in with_bc.metadata_props if p.key.startswith(CHANNEL_SCALE_KEY)}
        want = channel_means(fp32, names, feeds[:ROWS])
        got = channel_means(with_bc, names, feeds[:ROWS])
        before = channel_means(without, names, feeds[:ROWS])
        steps = bias_steps(with_bc, names)
        missed_before = 0
        for n in names:
            ref = want[n] * scale.get(n, 1.0)
            tol = steps[n] / 2 + 1e-4 + 1e-4 * np.abs(ref)
            miss = np.abs(got[n] - ref) - tol
            if (miss > 0).any():
                c = int(np.argmax(miss))
                failures.append(f"{n}: channel {c} mean {got[n][c]:.6g} vs fp32 {ref[c]:.6g} (bias step {steps[n][c]:.3g})")
            missed_before += int((np.abs(before[n] - ref) > tol).any())
        if names and missed_before == 0:
            failures.append("without the correction every moved Conv's mean already matched fp32: the test shows nothing")
        again = subprocess.run([a.quantize, str(fp32_path), "--load-calib", str(t / "table.json"), "-o",
                                str(t / "again.onnx"), "-q", *pinned], capture_output=True, text=True)
        if again.returncode != 0 or (t / "again.onnx").read_bytes() != (t / "with.onnx").read_bytes():
            failures.append(f"--load-calib did not rebuild the same model: {again.stderr}")
        print(f"{len(names)} Convs moved; {missed_before} of them missed fp32's means by more than half a bias step "
              f"without the correction")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
