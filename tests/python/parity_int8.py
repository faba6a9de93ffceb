#!/usr/bin/env python3
"""Integer kernels vs ONNX Runtime on int8 models, with real preprocessed ImageNet inputs.

1. The model zoo's QOperator mobilenetv2 (QLinearConv, QLinearAdd, ...): `quantize run` vs ORT.
2. mobilenetv2 and squeezenet1.1 quantized by `quantize` itself (QDQ, 20 calibration images):
   `quantize run --mode integer` vs ORT (which fuses the QDQ groups into integer kernels);
   mobilenetv2 also with `--uint8-weights on` (uint8 weights on every non-depthwise Conv and the
   classifier: ORT's u8 x u8 kernels, exact sums).
Outputs are compared in units of the quantization step of the last quantized tensor (the
input of the final DequantizeLinear, exposed as an extra graph output): the integer kernels
reproduce ORT's arithmetic on this CPU (int32 accumulation, u8 x s8 int16 pair saturation where
MLAS uses vpmaddubsw, float requantization), so every element must be bit-identical (0 LSB).
Results must also be bit-identical for 1, 2 and 3 threads. Exit 77 tells ctest the test was skipped (no ../shared, or no onnxruntime).
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

from parity import center_crop_224, imagenet_files

MAX_LSB = 0  # bit-exact
EVAL_IMAGES = range(500, 506)  # disjoint from the 20 calibration images


def torchvision(path):
    x = center_crop_224(path) / 255.0
    x = (x - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    return x.transpose(2, 0, 1)[None].astype(np.float32)


def caffe(path):
    bgr = center_crop_224(path)[:, :, ::-1] - np.array([104, 117, 123], np.float32)
    return np.ascontiguousarray(bgr.transpose(2, 0, 1)[None]).astype(np.float32)


def last_quantized(model):
    """The input of the DequantizeLinear the first graph output is computed from (through
    float-only ops such as Reshape/Softmax), with that DQ's scale."""
    producer = {o: n for n in model.graph.node for o in n.output}
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    name = model.graph.output[0].name
    while name in producer:
        node = producer[name]
        if node.op_type == "DequantizeLinear":
            return node.input[0], float(inits[node.input[1]])
        name = node.input[0]
    raise RuntimeError("no DequantizeLinear on the output path")


def with_output(model, name, path):
    if name not in {o.name for o in model.graph.output}:
        model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    onnx.save(model, str(path))


def run_ours(quantize, model, feeds, tmp, mode, threads):
    cmd = [quantize, "run", str(model), "-o", str(tmp / "out"), "--threads", str(threads), "--mode", mode]
    for k, v in feeds.items():
        np.save(tmp / f"in_{k}.npy", v)
        cmd += ["--input", f"{k}={tmp / f'in_{k}.npy'}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"quantize run exit {proc.returncode}: {proc.stderr.strip()[:300]}")
    return lambda name: np.load(tmp / "out" / (name.replace("/", "_") + ".npy"))


def compare(label, quantize, model_path, preprocess, files, tmp, mode):
    """Returns (agreement within 1 LSB, max |diff| in LSB, elements, thread-identical)."""
    model = onnx.load(str(model_path))
    qname, _ = last_quantized(model)
    probe = tmp / f"{label}_probe.onnx"
    with_output(model, qname, probe)
    iname = model.graph.input[0].name
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(str(probe), so, providers=["CPUExecutionProvider"])
    within = total = 0
    worst = 0
    identical = True
    for i, f in enumerate(files):
        feeds = {iname: preprocess(f)}
        ref = sess.run([qname], feeds)[0].astype(np.int32)
        ours = run_ours(quantize, probe, feeds, tmp, mode, 2)(qname)
        if ours.shape != ref.shape:
            raise RuntimeError(f"{label}: shape {ours.shape} vs ORT {ref.shape}")
        d = np.abs(ours.astype(np.int32) - ref)
        within += int((d <= 1).sum())
        total += d.size
        worst = max(worst, int(d.max()))
        if i == 0:  # the thread count must not change a bit
            for t in (1, 3):
                other = run_ours(quantize, probe, feeds, tmp, mode, t)(qname)
                identical = identical and np.array_equal(other, ours)
    return within / total, worst, total, identical


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quantize", required=True)
    ap.add_argument("--shared", required=True)
    args = ap.parse_args()
    shared = pathlib.Path(args.shared)
    if not (shared / "models").is_dir() or not (shared / "data" / "imagenet-sample").is_dir():
        print(f"SKIP: {shared} (shared models and data) is not present")
        return 77
    files = imagenet_files(shared / "data")
    evals = [files[i] for i in EVAL_IMAGES]
    rows, failed = [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        calib = tmp / "calib"
        calib.mkdir()
        for f in files[:20]:
            (calib / f.name).symlink_to(f.resolve())
        cases = [("zoo mobilenetv2 (QOperator)", shared / "models/mobilenetv2/zoo-int8-qoperator.onnx",
                  torchvision, None, "fake-quant", [])]
        for name, preset, prep, flags in (("mobilenetv2", "torchvision", torchvision, []),
                                          ("squeezenet1.1", "caffe", caffe, []),
                                          ("mobilenetv2", "torchvision", torchvision, ["--uint8-weights", "on"])):
            cases.append((f"ptq {name} (QDQ, integer mode{', ' if flags else ''}{' '.join(flags)})",
                          shared / "models" / name / "model.onnx", prep, preset, "integer", flags))
        for i, (label, src, prep, preset, mode, flags) in enumerate(cases):
            model = src
            if preset:
                model = tmp / f"{src.parent.name}_{i}_int8.onnx"
                proc = subprocess.run([args.quantize, str(src), "--calib", str(calib), "--preprocess",
                                       preset, "-o", str(model), "--threads", "2", "-q"] + flags,
                                      capture_output=True, text=True)
                if proc.returncode != 0:
                    failed.append(label)
                    rows.append((label, "-", "-", "-", f"quantize exit {proc.returncode}: {proc.stderr.strip()[:200]}"))
                    continue
            try:
                agree, worst, n, same = compare(f"{src.parent.name}_{i}", args.quantize, model, prep, evals, tmp, mode)
            except RuntimeError as e:
                failed.append(label)
                rows.append((label, "-", "-", "-", str(e)))
                continue
            if worst > MAX_LSB or not same:
                failed.append(label)
            rows.append((label, f"{agree * 100:.3f}%", str(worst), "yes" if same else "NO", f"{n} elements"))
    print(f"{'model':40} {'<=1 LSB':>9} {'max LSB':>8} {'threads 1/2/3 identical':>24}")
    for r in rows:
        print(f"{r[0]:40} {r[1]:>9} {r[2]:>8} {r[3]:>24}  {r[4]}")
    if failed:
        print(f"FAILED (need bit-identical outputs, max {MAX_LSB} LSB, identical across threads): {', '.join(failed)}")
        return 1
    print("all int8 models are bit-identical with ONNX Runtime")
    return 0


if __name__ == "__main__":
    sys.exit(main())
