#!/usr/bin/env python3
"""Dynamic quantization (quantize --mode dynamic) against ONNX Runtime (issue 14 part 3).

- kernels: `quantize run` on DynamicQuantizeLinear -> MatMulInteger (u8 x s8, per-column zero
  points) is bit-identical to ORT on random tensors, ties and one-signed ranges, and
  com.microsoft MatMulIntegerToFloat / DynamicQuantizeMatMul agree to 1e-6 relative (bit-identical
  on the AVX2 machine this was written on);
- MiniLM-L6 with --mode dynamic and no calibration data: ORT fuses every MatMulInteger into
  DynamicQuantizeMatMul / MatMulIntegerToFloat (no MatMulInteger left in its optimized graph),
  and the sentence embeddings' mean cosine to fp32 is >= MIN_COSINE and above ORT's own
  quantize_dynamic(per_channel=True);
- `quantize compare` reads ORT's quantize_dynamic model, as written and after ORT's optimizer
  (DynamicQuantizeMatMul, MatMulIntegerToFloat), and its embedding cosine matches ORT's.
Exit 77 (skip) when ../shared or ONNX Runtime is missing.
"""
import argparse
import pathlib
import re
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper
    from onnxruntime.quantization import QuantType, quantize_dynamic
except ImportError as e:
    print(f"SKIP: ONNX Runtime / onnx / numpy not importable ({e}); run tools/setup.sh")
    sys.exit(77)
from minilm_util import embed, load_sentences, row_cosine, session  # noqa: E402

MIN_COSINE = 0.995  # measured 0.9973 on the full eval split (ORT quantize_dynamic: 0.9920)
N_EVAL = 64


def kernel_model(w, wz, ws, bias):
    ms = "com.microsoft"
    nodes = [helper.make_node("DynamicQuantizeLinear", ["x"], ["q", "s", "z"]),
             helper.make_node("MatMulInteger", ["q", "w", "z", "wz"], ["acc"]),
             helper.make_node("MatMulIntegerToFloat", ["q", "w", "s", "ws", "z", "wz", "bias"], ["itf"], domain=ms),
             helper.make_node("DynamicQuantizeMatMul", ["x", "w", "ws", "wz", "bias"], ["dqmm"], domain=ms)]
    outs = [helper.make_tensor_value_info("q", TensorProto.UINT8, None),
            helper.make_tensor_value_info("s", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("z", TensorProto.UINT8, None),
            helper.make_tensor_value_info("acc", TensorProto.INT32, None),
            helper.make_tensor_value_info("itf", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("dqmm", TensorProto.FLOAT, None)]
    inits = [onnx.numpy_helper.from_array(a, n) for a, n in ((w, "w"), (wz, "wz"), (ws, "ws"), (bias, "bias"))]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["m", w.shape[0]])],
                          outs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(ms, 1)])
    m.ir_version = 8
    return m


def check_kernels(quantize, tmp):
    failures = []
    rng = np.random.default_rng(14)
    k, n = 64, 24
    w = rng.integers(-127, 128, (k, n)).astype(np.int8)
    wz = np.zeros(n, np.int8)
    ws = rng.uniform(0.001, 0.02, n).astype(np.float32)
    bias = rng.normal(0, 1, n).astype(np.float32)
    path = tmp / "kernels.onnx"
    onnx.save(kernel_model(w, wz, ws, bias), str(path))
    sess = session(path)
    cases = {"normal": rng.normal(0, 3, (5, k)), "positive": rng.uniform(0.5, 9, (3, k)),
             "negative": -rng.uniform(0, 2, (2, k)), "zeros": np.zeros((2, k)),
             "ties": np.tile(np.arange(k) + 0.5, (2, 1)) * (255 / (k - 0.5)),
             "outlier": np.concatenate([rng.normal(0, 0.1, (4, k)), np.full((1, k), 80.0)])}
    for name, x in cases.items():
        x = x.astype(np.float32)
        ref = sess.run(None, {"x": x})
        np.save(tmp / "x.npy", x)
        out = tmp / f"out_{name}"
        r = subprocess.run([quantize, "run", str(path), "-i", f"x={tmp / 'x.npy'}", "-o", str(out)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            failures.append(f"kernels/{name}: quantize run failed: {r.stderr[-400:]}")
            continue
        for label, want in zip(("q", "s", "z", "acc", "itf", "dqmm"), ref):
            got = np.load(out / f"{label}.npy")
            # The com.microsoft fusions' float epilogue (acc * scale + bias) may use FMA in MLAS.
            tol = 1e-6 * max(1.0, float(np.abs(want).max())) if label in ("itf", "dqmm") else 0
            if got.dtype != want.dtype or got.shape != want.shape or \
                    np.abs(got.astype(np.float64) - want.astype(np.float64)).max() > tol:
                diff = np.abs(got.astype(np.float64) - want.astype(np.float64)).max() if got.shape == want.shape else "shape"
                failures.append(f"kernels/{name}: {label} differs from ORT (max diff {diff})")
    print(f"kernels: {len(cases)} cases compared bit for bit")
    return failures


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quantize", required=True)
    ap.add_argument("--shared", required=True)
    args = ap.parse_args()
    shared = pathlib.Path(args.shared)
    model = shared / "models/minilm-l6/model.onnx"
    data = shared / "data/sentences/eval"
    if not model.exists() or not data.is_dir():
        print(f"SKIP: {model} or {data} not found (needs ../shared with minilm-l6)")
        return 77
    ev = load_sentences(data, N_EVAL)

    def cosine(a, b):
        return float(np.mean(row_cosine(a, b)))

    ref = embed(session(model), ev)
    with tempfile.TemporaryDirectory() as t:
        tmp = pathlib.Path(t)
        failures = check_kernels(args.quantize, tmp)
        out, opt = tmp / "dynamic.onnx", tmp / "dynamic.opt.onnx"
        r = subprocess.run([args.quantize, str(model), "--mode", "dynamic", "-o", str(out)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            failures.append(f"--mode dynamic: exit {r.returncode}: {r.stderr[-500:]}")
        else:
            ops = [n.op_type for n in onnx.load(str(out)).graph.node]
            ours = cosine(embed(session(out, opt), ev), ref)
            fused_ops = [n.op_type for n in onnx.load(str(opt)).graph.node]
            dqmm, mmitf = fused_ops.count("DynamicQuantizeMatMul"), fused_ops.count("MatMulIntegerToFloat")
            print(f"ptq --mode dynamic: cosine {ours:.4f}; file: {ops.count('MatMulInteger')} MatMulInteger, "
                  f"{ops.count('DynamicQuantizeLinear')} DynamicQuantizeLinear; ORT: {dqmm} DynamicQuantizeMatMul, "
                  f"{mmitf} MatMulIntegerToFloat, {fused_ops.count('MatMulInteger')} MatMulInteger unfused")
            if "Calibrat" in r.stderr or "calibrating" in r.stderr:
                failures.append("--mode dynamic calibrated")
            if ops.count("MatMulInteger") < 24 or dqmm == 0 or dqmm + mmitf != ops.count("MatMulInteger") \
                    or "MatMulInteger" in fused_ops:
                failures.append("ORT did not fuse every MatMulInteger into DynamicQuantizeMatMul/MatMulIntegerToFloat")
            if ours < MIN_COSINE:
                failures.append(f"--mode dynamic: cosine {ours:.4f} < {MIN_COSINE}")
        theirs_path = tmp / "ort_dynamic.onnx"
        quantize_dynamic(str(model), str(theirs_path), per_channel=True, weight_type=QuantType.QInt8)
        theirs_opt = tmp / "ort_dynamic.opt.onnx"
        theirs = cosine(embed(session(theirs_path, theirs_opt), ev), ref)
        print(f"ORT quantize_dynamic: cosine {theirs:.4f}")
        if r.returncode == 0 and ours <= theirs:
            failures.append(f"--mode dynamic ({ours:.4f}) is not above ORT's quantize_dynamic ({theirs:.4f})")
        # The reference runtime reads ORT's dynamic model, as written and as ORT's optimizer fuses
        # it (DynamicQuantizeMatMul, MatMulIntegerToFloat, FusedMatMul, Gelu, SkipLayerNormalization):
        # compare's cosine is ORT's.
        lst = tmp / "eval.txt"
        lst.write_text("\n".join(str(f) for f in sorted(data.glob("*.npz"))[:N_EVAL]) + "\n")
        for label, path in (("ORT's dynamic model", theirs_path), ("ORT's optimized dynamic model", theirs_opt)):
            c = subprocess.run([args.quantize, "compare", str(model), str(path), "--data", str(lst)],
                               capture_output=True, text=True)
            m = re.search(r"output 'sentence_embedding' \S+: SQNR \S+ dB, cosine ([0-9.]+)", c.stdout + c.stderr)
            if c.returncode not in (0, 4) or not m:
                failures.append(f"compare on {label}: exit {c.returncode}: {(c.stdout + c.stderr)[-500:]}")
                continue
            print(f"quantize compare on {label}: cosine {float(m.group(1)):.4f}")
            if abs(float(m.group(1)) - theirs) > 2e-3:
                failures.append(f"compare on {label}: cosine {m.group(1)} differs from ORT's {theirs:.4f}")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
