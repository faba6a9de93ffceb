#!/usr/bin/env python3
"""ConvTranspose (decoders of text detectors and segmenters, issue 13) vs ONNX Runtime.

A small encoder-decoder in the form such decoders take: strided Conv down, ConvTranspose up
(4x4 stride 2 pads 1; a grouped 3x3 stride 2 with output_padding), a 1x1 Conv head. Checks:
- `quantize run` (fp32) matches ORT (max |diff| / max |ORT| <= 1e-5),
- `quantize --calib` exits 0 and quantizes every ConvTranspose's weights (a DequantizeLinear
  feeds W), ORT runs the int8 model with cosine >= MIN_COSINE to fp32,
- `quantize run --mode integer` on the int8 model predicts ORT's int8 output (cosine >= 0.9999).
Exit 77 (skip) when ONNX Runtime is missing.
"""
import argparse
import pathlib
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
except ImportError as e:
    print(f"SKIP: ONNX Runtime / onnx / numpy not importable ({e}); run tools/setup.sh")
    sys.exit(77)

MIN_COSINE = 0.99
rng = np.random.default_rng(13)
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def he(*shape, fan_in):
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def build():
    inits = {
        "w1": he(8, 3, 3, 3, fan_in=27), "b1": he(8, fan_in=27),
        "w2": he(16, 8, 3, 3, fan_in=72), "b2": he(16, fan_in=72),
        # ConvTranspose W is [C_in, C_out / group, kH, kW].
        "wt1": he(16, 8, 4, 4, fan_in=64), "bt1": he(8, fan_in=64),
        "wt2": he(8, 4, 3, 3, fan_in=18), "bt2": he(8, fan_in=18),
        "w3": he(4, 8, 1, 1, fan_in=8), "b3": he(4, fan_in=8),
    }
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "w1", "b1"], ["c1"], strides=[2, 2], pads=[1, 1, 1, 1]),
        n("Relu", ["c1"], ["r1"]),
        n("Conv", ["r1", "w2", "b2"], ["c2"], strides=[2, 2], pads=[1, 1, 1, 1]),
        n("Relu", ["c2"], ["r2"]),
        n("ConvTranspose", ["r2", "wt1", "bt1"], ["t1"], strides=[2, 2], pads=[1, 1, 1, 1]),
        n("Relu", ["t1"], ["r3"]),
        n("ConvTranspose", ["r3", "wt2", "bt2"], ["t2"], strides=[2, 2], pads=[1, 1, 1, 1],
          output_padding=[1, 1], group=2),
        n("Relu", ["t2"], ["r4"]),
        n("Conv", ["r4", "w3", "b3"], ["out"]),
    ]
    g = helper.make_graph(nodes, "decoder", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
                          [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4, 32, 32])],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def sample():
    # Smooth images (a blurred noise field): decoders see structure, not white noise.
    x = rng.random((1, 3, 40, 40)).astype(np.float32)
    k = np.ones(9, np.float32) / 9
    x = np.apply_along_axis(lambda r: np.convolve(r, k, "same"), 3, x)
    x = np.apply_along_axis(lambda r: np.convolve(r, k, "same"), 2, x)
    return np.ascontiguousarray(x[:, :, 4:36, 4:36] * 4 - 2, np.float32)


def ptq_run(quantize, model, x, tmp, extra=()):
    np.save(tmp / "in_x.npy", x)
    out_dir = tmp / "run"
    r = subprocess.run([quantize, "run", str(model), "-i", f"x={tmp}/in_x.npy", "-o", str(out_dir), *extra],
                       capture_output=True, text=True)
    return (np.load(out_dir / "out.npy"), "") if r.returncode == 0 else (None, r.stderr.strip())


def cosine(a, b):
    a, b = np.concatenate([v.ravel() for v in a]), np.concatenate([v.ravel() for v in b])
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quantize", required=True)
    args = ap.parse_args()
    ort.set_default_logger_severity(3)
    with tempfile.TemporaryDirectory() as t:
        tmp = pathlib.Path(t)
        model = tmp / "decoder.onnx"
        onnx.save(build(), model)
        sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        evals = [sample() for _ in range(4)]
        want = [sess.run(["out"], {"x": x})[0] for x in evals]
        worst = 0.0
        for x, w in zip(evals, want):
            got, err = ptq_run(args.quantize, model, x, tmp)
            if got is None:
                check(False, f"quantize run failed: {err}")
                return 1
            worst = max(worst, float(np.max(np.abs(got - w)) / np.max(np.abs(w))))
        check(worst <= 1e-5, f"fp32: max |ptq - ORT| / max |ORT| = {worst:.2e}")

        calib = tmp / "calib"
        calib.mkdir()
        for i in range(24):
            np.save(calib / f"{i:03d}.npy", sample())
        out = tmp / "decoder.int8.onnx"
        r = subprocess.run([args.quantize, str(model), "--calib", str(calib), "-o", str(out)],
                           capture_output=True, text=True)
        check(r.returncode == 0, f"quantize exit {r.returncode}" + (r.stderr[-600:] if r.returncode else ""))
        if r.returncode != 0:
            return 1
        q = onnx.load(str(out))
        producers = {o: nd.op_type for nd in q.graph.node for o in nd.output}
        ct = [nd for nd in q.graph.node if nd.op_type == "ConvTranspose"]
        check(len(ct) == 2 and all(producers.get(nd.input[1]) == "DequantizeLinear" and
                                   producers.get(nd.input[0]) == "DequantizeLinear" for nd in ct),
              "both ConvTranspose read dequantized int8 input and weights")
        qs = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        got8 = [qs.run(["out"], {"x": x})[0] for x in evals]
        cos = cosine(want, got8)
        check(cos >= MIN_COSINE, f"int8 in ORT: cosine to fp32 {cos:.4f}")
        pred = []
        for x in evals:
            y, err = ptq_run(args.quantize, out, x, tmp, ["--mode", "integer"])
            if y is None:
                check(False, f"quantize run --mode integer failed: {err}")
                return 1
            pred.append(y)
        cos_pred = cosine(got8, pred)
        check(cos_pred >= 0.9999, f"integer mode vs ORT int8: cosine {cos_pred:.6f}")
    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
