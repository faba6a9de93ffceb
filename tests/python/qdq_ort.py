#!/usr/bin/env python3
"""ptq's int8 QDQ models load and run as int8 in ONNX Runtime (issue 5 acceptance).

For each model in ../shared/models: calibrate ptq on a few real samples, then check
- the output passes the onnx checker (`quantize inspect --check`, where it knows the opset),
- ONNX Runtime loads it, and its optimized graph (ORT_ENABLE_EXTENDED) holds no float
  Conv/Gemm/MatMul for nodes ptq quantized (every input from a DequantizeLinear),
- outputs are finite and close to fp32 (cosine similarity); mobilenetv2's logits are float,
- `--target trt`: every zero point is 0 and every activation is int8.
Exit 77 (skip) when ../shared or ONNX Runtime is missing.
"""
import argparse
import gzip
import json
import pathlib
import subprocess
import sys
import tempfile
import wave

try:
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper
except ImportError as e:
    print(f"SKIP: ONNX Runtime / onnx / numpy not importable ({e}); run tools/setup.sh")
    sys.exit(77)

WEIGHTED = {"Conv", "Gemm", "MatMul"}
MIN_COSINE = 0.85
OCR = ["--scale", "1/255", "--mean", "0.5", "--std", "0.5", "--channel-order", "bgr", "--letterbox-pad", "127.5"]


def mnist_npy(shared, out, normalize):
    with gzip.open(shared / "data/mnist/t10k-images-idx3-ubyte.gz") as f:
        raw = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 1, 28, 28)
    out.mkdir()
    for i in range(16):
        np.save(out / f"{i:04d}.npy", normalize(raw[i].astype(np.float32)))
    return out


def vad_npz(shared, out):
    with wave.open(str(shared / "data/vad/track.wav")) as w:
        audio = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768
    out.mkdir()
    for i in range(8):
        chunk = audio[i * 16000: i * 16000 + 576][None]
        np.savez(out / f"{i:04d}.npz", input=chunk, state=np.zeros((2, 1, 128), np.float32),
                 sr=np.array(16000, np.int64))
    return out


def image_dir(src, out, files):
    out.mkdir()
    for f in files:
        (out / f.name).symlink_to(f.resolve())
    return out


def cases(shared, tmp):
    imgs = sorted((shared / "data/imagenet-sample").glob("*.jpg"))[::125]
    ocr = sorted((shared / "data/ocr-lines").glob("aug_*.png"))[:32]
    return {
        "mobilenetv2": (image_dir(None, tmp / "in1k-a", imgs), ["--preprocess", "torchvision"]),
        "squeezenet1.1": (image_dir(None, tmp / "in1k-b", imgs), ["--preprocess", "caffe"]),
        "mnist-8": (mnist_npy(shared, tmp / "mnist-a", lambda x: x / 255), []),
        "mnist-cnn-opset20-extdata": (mnist_npy(shared, tmp / "mnist-b", lambda x: (x / 255 - 0.5) / 0.5), []),
        "yolox-nano": (image_dir(None, tmp / "det", sorted((shared / "data/detect-samples").glob("*.jpg"))),
                       ["--letterbox", "416x416", "--letterbox-pad", "114", "--channel-order", "bgr"]),
        "ppocr-cls": (image_dir(None, tmp / "ocr-a", ocr), ["--letterbox", "192x48", *OCR]),
        "ppocrv4-rec": (image_dir(None, tmp / "ocr-b", ocr), ["--letterbox", "320x48", *OCR]),
        "silero-vad": (vad_npz(shared, tmp / "vad"), []),
    }


def comparison_feeds(shared, name, model_path):
    """Real preprocessed inputs, built as the parity test builds them."""
    sys.path.insert(0, str(pathlib.Path(__file__).parent))
    import parity
    if name == "silero-vad":
        return parity.silero(shared / "data", model_path)
    return parity.MODELS[name](shared / "data")


def quantized_weighted_nodes(model):
    """Conv/Gemm/MatMul whose every input comes from a DequantizeLinear."""
    dq_outputs = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    return [n for n in model.graph.node
            if n.op_type in WEIGHTED and all(i in dq_outputs for i in n.input if i)]


def check_trt(model):
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear") and len(n.input) > 2:
            zp = inits[n.input[2]]
            if np.any(zp != 0):
                return f"{n.name}: zero point {zp.ravel()[:4]} is not 0"
            if n.op_type == "QuantizeLinear" and zp.dtype != np.int8:
                return f"{n.name}: activation type {zp.dtype} is not int8"
    return ""


def run(args, name, data_dir, flags, tmp, target):
    model_path = args.shared / "models" / name / "model.onnx"
    out = tmp / f"{name}-{target}.onnx"
    cmd = [args.quantize, str(model_path), "--calib", str(data_dir), "-o", str(out), "--method", "percentile",
           "--target", target, "-q", *flags]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        return [f"quantize exited {r.returncode}: {r.stderr.strip()}"]
    problems = []
    chk = subprocess.run([args.quantize, "inspect", "--check", "--json", str(out)], capture_output=True, text=True)
    if chk.returncode != 0:
        problems.append(f"onnx checker: {chk.stderr.strip()}")
    checker = json.loads(chk.stdout)["checker"] if chk.returncode == 0 else "failed"
    model = onnx.load(str(out))
    quantized = quantized_weighted_nodes(model)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.optimized_model_filepath = str(tmp / f"{name}-{target}.opt.onnx")
    so.intra_op_num_threads = 1
    sq = ort.InferenceSession(str(out), so, providers=["CPUExecutionProvider"])
    opt = onnx.load(so.optimized_model_filepath)
    float_left = sum(1 for n in opt.graph.node if n.op_type in WEIGHTED)
    weighted_total = sum(1 for n in model.graph.node if n.op_type in WEIGHTED)
    # Every quantized Conv/Gemm/MatMul must have become an integer kernel in ORT.
    if target == "ort-x86" and float_left > weighted_total - len(quantized):
        problems.append(f"ORT left {float_left} float Conv/Gemm/MatMul, but ptq quantized "
                        f"{len(quantized)} of {weighted_total}")
    sf = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    feeds = comparison_feeds(args.shared, name, model_path)
    a, b = sf.run(None, feeds), sq.run(None, feeds)
    cos = []
    for x, y in zip(a, b):
        x, y = x.astype(np.float64).ravel(), y.astype(np.float64).ravel()
        if not np.all(np.isfinite(y)):
            problems.append("int8 output is not finite")
        cos.append(float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y) + 1e-30)))
    # A sanity bound (the model is not garbage); accuracy budgets are measured in bench/.
    if min(cos) < MIN_COSINE:
        problems.append(f"int8 output too far from fp32: cosine {min(cos):.3f}")
    # A classifier's logits (MatMul -> Add(bias) -> output) stay float: no Q after the MatMul,
    # which ORT runs as a QGemm writing float (the check above fails on a float Gemm).
    if name == "mobilenetv2" and target == "ort-x86":
        q_inputs = {n.input[0] for n in model.graph.node if n.op_type == "QuantizeLinear"}
        rounded = [n.name for n in model.graph.node if n.op_type == "MatMul" and n.output[0] in q_inputs]
        if rounded:
            problems.append(f"logits quantized: a QuantizeLinear reads the output of {rounded}")
    if target == "trt":
        msg = check_trt(model)
        if msg:
            problems.append(msg)
    print(f"{'ok  ' if not problems else 'FAIL'} {name:28s} {target:8s} quantized {len(quantized):3d}/"
          f"{weighted_total:3d} weighted, ORT float left {float_left:3d}, cosine {min(cos):.4f}, checker: {checker}")
    return problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quantize", required=True)
    ap.add_argument("--shared", type=pathlib.Path, required=True)
    ap.add_argument("--models", nargs="*")
    args = ap.parse_args()
    if not (args.shared / "models").is_dir():
        print(f"SKIP: {args.shared}/models is absent (the real models are needed)")
        sys.exit(77)
    failures = total = 0
    with tempfile.TemporaryDirectory() as t:
        tmp = pathlib.Path(t)
        for name, (data_dir, flags) in cases(args.shared, tmp).items():
            if args.models and name not in args.models:
                continue
            targets = ["ort-x86", "trt"] if name in ("mobilenetv2", "squeezenet1.1") else ["ort-x86"]
            for target in targets:
                total += 1
                problems = run(args, name, data_dir, flags, tmp, target)
                for p in problems:
                    print(f"     {name} {target}: {p}")
                failures += bool(problems)
    print(f"{total - failures} passed, {failures} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
