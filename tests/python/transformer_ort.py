#!/usr/bin/env python3
"""Transformer int8 models in ONNX Runtime (issue 14): MiniLM-L6 with attention masks and padding.

For calibration on unpadded and on padded sentences, and for --preset auto and cnn:
- the attention-mask tensor gets a warning naming it and stays fp32 (no Q/DQ on it),
- in ORT, a sentence's int8 embedding is the same padded to 64 tokens as unpadded (cosine >= 0.999),
- int8 embeddings stay close to fp32 (mean cosine >= MIN_COSINE),
- auto placement: every MatMul runs as an ORT integer kernel, the weight MatMuls as MatMulIntegerToFloat;
  the file is <= 0.3x fp32 and ORT gathers embedding rows from a uint8 table.
Exit 77 (skip) when ../shared or ONNX Runtime is missing.
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
except ImportError as e:
    print(f"SKIP: ONNX Runtime / onnx / numpy not importable ({e}); run tools/setup.sh")
    sys.exit(77)
from minilm_util import embed, load_sentences, row_cosine, session  # noqa: E402

MIN_COSINE = 0.995  # measured 0.996 (auto: transformer placement + SmoothQuant 0.8); the cnn preset gives 0.853
N_EVAL = 48
MASK = "/m/Where_1_output_0"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quantize", required=True)
    ap.add_argument("--shared", required=True)
    args = ap.parse_args()
    shared = pathlib.Path(args.shared)
    model = shared / "models/minilm-l6/model.onnx"
    data = shared / "data/sentences"
    if not model.exists() or not (data / "eval_pad64").is_dir():
        print(f"SKIP: {model} or {data} not found (needs ../shared with minilm-l6)")
        return 77
    ev, ev_pad = load_sentences(data / "eval", N_EVAL), load_sentences(data / "eval_pad64", N_EVAL)
    pad_batches = [{k: np.concatenate([s[k] for s in ev_pad[i:i + 8]]) for k in ev_pad[0]}
                   for i in range(0, N_EVAL, 8)]
    ref = embed(session(model), ev)
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        for calib in ("calib", "calib_pad64"):
            for preset in ("auto", "cnn"):
                name = f"{calib}/{preset}"
                out = pathlib.Path(tmp) / f"{calib}_{preset}.onnx"
                r = subprocess.run([args.quantize, str(model), "--calib", str(data / calib), "-o", str(out),
                                    "--preset", preset], capture_output=True, text=True)
                if r.returncode != 0:
                    failures.append(f"{name}: exit {r.returncode}: {r.stderr[-500:]}")
                    continue
                if MASK not in r.stderr or "mask-like" not in r.stderr:
                    failures.append(f"{name}: no warning names the mask tensor {MASK}")
                m = onnx.load(str(out))
                qdq_inputs = {n.input[0] for n in m.graph.node if n.op_type == "QuantizeLinear"}
                if MASK in qdq_inputs:
                    failures.append(f"{name}: the mask tensor is quantized")
                opt = pathlib.Path(tmp) / f"{calib}_{preset}.opt.onnx"
                s = session(out, opt)
                e, e_pad = embed(s, ev), embed(s, pad_batches)
                pad_cos, ref_cos = row_cosine(e, e_pad).min(), row_cosine(e, ref).mean()
                print(f"{name}: cosine to fp32 {ref_cos:.4f}, padded vs unpadded min {pad_cos:.5f}")
                if pad_cos < 0.999:
                    failures.append(f"{name}: padded vs unpadded cosine {pad_cos:.5f} < 0.999")
                if preset == "auto":
                    if ref_cos < MIN_COSINE:
                        failures.append(f"{name}: cosine to fp32 {ref_cos:.4f} < {MIN_COSINE}")
                    ops = [n.op_type for n in onnx.load(str(opt)).graph.node]
                    fused, qlinear = ops.count("MatMulIntegerToFloat"), ops.count("QLinearMatMul")
                    print(f"{name}: ORT runs {fused} MatMulIntegerToFloat, {qlinear} QLinearMatMul "
                          f"(its QDQ propagation moves a Q above Transpose/Reshape), {ops.count('MatMul')} float MatMul")
                    # The embedding table is stored in 8 bits and ORT gathers integer rows (no
                    # DequantizeLinear expanding the table on every run).
                    size = out.stat().st_size / model.stat().st_size
                    om = onnx.load(str(opt))
                    inits = {i.name: i.data_type for i in om.graph.initializer}
                    int_gather = any(n.op_type == "Gather" and inits.get(n.input[0]) == onnx.TensorProto.UINT8
                                     for n in om.graph.node)
                    print(f"{name}: file {size:.3f}x fp32, ORT gathers a uint8 table: {int_gather}")
                    if size > 0.3 or not int_gather:
                        failures.append(f"{name}: file {size:.3f}x fp32 (want <= 0.3), uint8 Gather in ORT: {int_gather}")
                    if fused < 36 or ops.count("MatMul"):
                        failures.append(f"{name}: {fused} MatMulIntegerToFloat (expected the 36 weight MatMuls "
                                        f"at least), {ops.count('MatMul')} float MatMul (expected 0)")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
