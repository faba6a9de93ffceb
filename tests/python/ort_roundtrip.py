#!/usr/bin/env python3
"""ONNX Runtime gives bit-identical outputs for each model and its `quantize convert` re-save.

Covers the demo model and every model in ../shared/models (skipped with a message when absent),
saved inline and with --external-data. Exit 77 tells ctest the test was skipped.
"""
import argparse
import pathlib
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import onnxruntime as ort
except ImportError as e:  # the venv from tools/setup.sh is missing
    print(f"SKIP: ONNX Runtime is not importable ({e}); run tools/setup.sh")
    sys.exit(77)

# Inputs that random data would make meaningless or invalid.
OVERRIDES = {
    "silero-vad": {"input": (1, 576), "sr": np.array(16000, np.int64)},
    "ppocrv4-rec": {"x": (1, 3, 48, 320)},
    "ppocr-cls": {"x": (1, 3, 48, 192)},
}
DTYPES = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32,
          "tensor(bool)": np.bool_, "tensor(uint8)": np.uint8, "tensor(int8)": np.int8}


def make_inputs(sess, model_key, rng):
    feeds = {}
    for i in sess.get_inputs():
        o = OVERRIDES.get(model_key, {}).get(i.name)
        if isinstance(o, np.ndarray):
            feeds[i.name] = o
            continue
        shape = o or tuple(d if isinstance(d, int) else 1 for d in i.shape)
        dt = DTYPES[i.type]
        if dt == np.float32:
            feeds[i.name] = rng.standard_normal(shape).astype(np.float32)
        else:
            feeds[i.name] = rng.integers(0, 2, size=shape).astype(dt)
    return feeds


def run(path, feeds):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quantize", required=True)
    ap.add_argument("--shared", required=True)
    ap.add_argument("--demo", required=True)
    args = ap.parse_args()
    models = [("demo", pathlib.Path(args.demo))]
    shared = pathlib.Path(args.shared) / "models"
    if shared.is_dir():
        models += [(d.name, d / "model.onnx") for d in sorted(shared.iterdir()) if (d / "model.onnx").exists()]
    else:
        print(f"note: {shared} is absent; only the demo model is checked")
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for key, path in models:
            for variant, extra in (("inline", []), ("external", ["--external-data"])):
                out = pathlib.Path(tmp) / f"{key}-{variant}.onnx"
                r = subprocess.run([args.quantize, "convert", str(path), "-o", str(out), *extra],
                                   capture_output=True, text=True)
                if r.returncode != 0:
                    print(f"FAIL {key} {variant}: quantize convert exited {r.returncode}: {r.stderr.strip()}")
                    failures += 1
                    continue
                rng = np.random.default_rng(2345)
                sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
                feeds = make_inputs(sess, key, rng)
                a, b = run(path, feeds), run(out, feeds)
                same = len(a) == len(b) and all(
                    x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes() for x, y in zip(a, b))
                print(f"{'ok  ' if same else 'FAIL'} {key:28s} {variant:8s} outputs={len(a)} bit-identical={same}")
                failures += 0 if same else 1
    print(f"{len(models) * 2 - failures} passed, {failures} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
