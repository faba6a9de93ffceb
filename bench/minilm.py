#!/usr/bin/env python3
"""MiniLM-L6 sentence encoder: ptq's int8 models next to ONNX Runtime's quantizers, in ORT.

Quantizes ../shared/models/minilm-l6 with ptq (default static, and any extra flag sets given
with --ptq) and with ORT's quantize_static (QDQ, per-channel, MinMax) and quantize_dynamic
(per-channel) or, with --ort-weight-only, ORT's MatMulNBitsQuantizer (needs onnx-ir from
bench/requirements.txt), and with --nncf OpenVINO NNCF (default and model_type=TRANSFORMER), each
calibrated on ../shared/data/sentences/calib (or calib_pad64 with
--calib-padded), then evaluates every model in ONNX Runtime on the eval split:

  cosine      mean cosine of int8 vs fp32 sentence embeddings, one unpadded sentence per call
  cosine_pad  the same on batches of 8 sentences zero-padded to 64 tokens (what serving does)
  pad_vs_unp  mean cosine of the int8 model's padded vs unpadded embeddings of a sentence
  para_top1   paraphrase top-1: the nearest other sentence is its pair (rows 2k, 2k+1)
  nn_agree    nearest-neighbour agreement with fp32
  ms_b1, ms_16x64  ORT latency (min of interleaved rounds, 2 threads), file size in MB

    .venv/bin/python bench/minilm.py --out docs/minilm.md
    .venv/bin/python bench/minilm.py --ptq "--method minmax" --ptq "--mode dynamic"
    .venv/bin/python bench/minilm.py --nncf
    .venv/bin/python bench/minilm.py --ptq "--mode weight-only --bits 8" --ptq "--mode weight-only" --ort-weight-only
"""
import argparse
import pathlib
import shlex
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


def load_dir(d: pathlib.Path) -> list:
    out = []
    for f in sorted(d.glob("*.npz")):
        z = np.load(f)
        out.append({k: z[k] for k in ("input_ids", "attention_mask", "token_type_ids")})
    return out


def batches(samples: list, n: int) -> list:
    return [{k: np.concatenate([s[k] for s in samples[i:i + n]]) for k in samples[0]}
            for i in range(0, len(samples), n)]


def session(path, threads=2):
    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    o.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), o, providers=["CPUExecutionProvider"])


def embed(sess, feeds: list) -> np.ndarray:
    return np.concatenate([sess.run(["sentence_embedding"], f)[0] for f in feeds])


def cos_rows(a, b):
    return np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)


def nearest(e):
    n = e / np.linalg.norm(e, axis=1, keepdims=True)
    s = n @ n.T
    np.fill_diagonal(s, -np.inf)
    return s.argmax(1)


def latency(sess, feed, rounds=5, runs=20):
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(runs):
            sess.run(["sentence_embedding"], feed)
        best = min(best, (time.perf_counter() - t) / runs * 1e3)
    return best


class CalibReader:  # ORT CalibrationDataReader
    def __init__(self, samples):
        self.it = iter(samples)

    def get_next(self):
        return next(self.it, None)


def ort_models(model, calib, work):
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType, quantize_dynamic,
                                          quantize_static)
    st = work / "ort_static.onnx"
    quantize_static(str(model), str(st), CalibReader(calib), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax)
    dy = work / "ort_dynamic.onnx"
    quantize_dynamic(str(model), str(dy), per_channel=True, weight_type=QuantType.QInt8)
    return {"ORT quantize_static (MinMax)": st, "ORT quantize_dynamic": dy}


def nncf_models(model, calib, work):
    """OpenVINO NNCF (ONNX backend) on the same calibration arrays: its default, and
    model_type=TRANSFORMER (its recommended setting for transformers: no Q/DQ on the residual Adds
    and other ops it knows int8 hurts there)."""
    import nncf
    import onnx
    out = {}
    for label, kwargs in (("NNCF default", {}), ("NNCF model_type=TRANSFORMER", {"model_type": nncf.ModelType.TRANSFORMER})):
        path = work / ("nncf_" + ("transformer" if kwargs else "default") + ".onnx")
        q = nncf.quantize(onnx.load(str(model)), nncf.Dataset(calib), subset_size=len(calib), **kwargs)
        onnx.save(q, str(path))
        out[label] = path
    return out


def ort_weight_only_models(model, work):
    """ORT's own weight-only quantizer (RTN, asymmetric, MatMulNBits + GatherBlockQuantized), the peer."""
    try:
        from onnxruntime.quantization.matmul_nbits_quantizer import (DefaultWeightOnlyQuantConfig,
                                                                     MatMulNBitsQuantizer)
    except ImportError as e:
        sys.exit(f"ORT's MatMulNBitsQuantizer needs onnx-ir ({e}): pip install -r bench/requirements.txt")
    import logging
    import onnx
    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.WARNING)
    out = {}
    for bits, block, ops in ((4, 32, ("MatMul", "Gather")), (4, 128, ("MatMul", "Gather")), (8, 128, ("MatMul",))):
        path = work / f"ort_nbits_{bits}_{block}.onnx"
        cfg = DefaultWeightOnlyQuantConfig(block_size=block, is_symmetric=False, bits=bits, op_types_to_quantize=ops)
        q = MatMulNBitsQuantizer(onnx.load(str(model)), algo_config=cfg)
        q.process()
        q.model.save_model_to_file(str(path), use_external_data_format=False)
        out[f"ORT MatMulNBitsQuantizer int{bits} block {block} ({'+'.join(ops)})"] = path
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quantize", default=str(ROOT / "build/tools/quantize"))
    ap.add_argument("--ptq", action="append", default=None, help="extra ptq flag set (repeatable)")
    ap.add_argument("--calib-padded", action="store_true", help="calibrate on calib_pad64")
    ap.add_argument("--no-ort", action="store_true", help="skip ORT's quantizers")
    ap.add_argument("--ort-weight-only", action="store_true",
                    help="ORT's MatMulNBitsQuantizer (int4 block 32/128, int8) instead of quantize_static/dynamic")
    ap.add_argument("--nncf", action="store_true", help="also OpenVINO NNCF: default and model_type=TRANSFORMER")
    ap.add_argument("--work", default=str(ROOT / "bench/.work/minilm"))
    ap.add_argument("--out", help="write a markdown table here")
    args = ap.parse_args()
    model = SHARED / "models/minilm-l6/model.onnx"
    data = SHARED / "data/sentences"
    if not model.exists():
        sys.exit(f"skip: {model} not found (needs ../shared)")
    work = pathlib.Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    calib_dir = data / ("calib_pad64" if args.calib_padded else "calib")
    ev, ev_pad = load_dir(data / "eval"), load_dir(data / "eval_pad64")
    pad_batches = batches(ev_pad, 8)

    models = {}
    for i, flags in enumerate(args.ptq or [""]):
        out = work / f"ptq_{i}.onnx"
        cmd = [args.quantize, str(model), "--calib", str(calib_dir), "-o", str(out), "-q"] + shlex.split(flags)
        if "--mode dynamic" in flags or "--mode weight-only" in flags:  # --mode=... keeps --calib
            cmd.remove("--calib"), cmd.remove(str(calib_dir))
        t = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode not in (0, 4):
            sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr}")
        models[f"ptq {flags or '(default)'}"] = out
        print(f"ptq {flags}: {time.perf_counter() - t:.1f} s", file=sys.stderr)
    if args.ort_weight_only:
        models.update(ort_weight_only_models(model, work))
    elif not args.no_ort:
        models.update(ort_models(model, load_dir(calib_dir), work))
    if args.nncf:
        models.update(nncf_models(model, load_dir(calib_dir), work))

    fp = session(model)
    ref, ref_pad = embed(fp, ev), embed(fp, pad_batches)
    pairs = np.arange(len(ev)) ^ 1
    b1 = ev[0]
    b16 = batches(ev_pad[:16], 16)[0]
    rows = [("fp32", model, ref, ref_pad, fp)]
    for name, path in models.items():
        s = session(path)
        rows.append((name, path, embed(s, ev), embed(s, pad_batches), s))
    lines = ["| model | cosine | cosine padded | padded vs unpadded | paraphrase top-1 | NN agreement "
             "| ms b1 | ms 16x64 | MB |", "|---|---|---|---|---|---|---|---|---|"]
    lat = {name: [0.0, 0.0] for name, *_ in rows}
    for _ in range(3):  # interleaved rounds: the machine is noisy
        for name, _, _, _, s in rows:
            l1, l16 = latency(s, b1), latency(s, b16, runs=5)
            lat[name] = [min(lat[name][0] or l1, l1), min(lat[name][1] or l16, l16)]
    nn_ref = nearest(ref)
    for name, path, e, ep, _ in rows:
        top1 = np.mean(nearest(e) == pairs) * 100
        lines.append(f"| {name} | {cos_rows(e, ref).mean():.4f} | {cos_rows(ep, ref_pad).mean():.4f} "
                     f"| {cos_rows(ep, e).mean():.4f} | {top1:.2f} % | {np.mean(nearest(e) == nn_ref) * 100:.2f} % "
                     f"| {lat[name][0]:.2f} | {lat[name][1]:.1f} | {path.stat().st_size / 1e6:.1f} |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        cmd = " ".join(["bench/minilm.py"] + sys.argv[1:])
        pathlib.Path(args.out).write_text(f"Calibrated on `{calib_dir.name}`; command: `{cmd}`\n\n{text}\n")


if __name__ == "__main__":
    main()
