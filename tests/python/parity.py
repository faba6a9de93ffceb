#!/usr/bin/env python3
"""`quantize run` (the Eigen reference runtime) matches ONNX Runtime on every shared model.

For each model in ../shared/models: build a real preprocessed input from ../shared/data (as
../shared/models/README.md describes), run ONNX Runtime, write the inputs as .npy, run
`quantize run`, and require max|ours - ORT| / max|ORT| <= 1e-4 for every output.
Exit 77 tells ctest the test was skipped (no ../shared, or no onnxruntime).
"""
import argparse
import gzip
import pathlib
import subprocess
import sys
import tempfile
import wave

try:
    import numpy as np
    import onnxruntime as ort
    from PIL import Image
except ImportError as e:  # the venv from tools/setup.sh is missing
    print(f"SKIP: ONNX Runtime / numpy / PIL not importable ({e}); run tools/setup.sh")
    sys.exit(77)

TOLERANCE = 1e-4


def center_crop_224(path):
    img = Image.open(path).convert("RGB")
    w, h = img.size
    s = 256 / min(w, h)
    if abs(s - 1) > 1e-6:
        img = img.resize((round(w * s), round(h * s)), Image.BILINEAR)
        w, h = img.size
    left, top = (w - 224) // 2, (h - 224) // 2
    return np.asarray(img.crop((left, top, left + 224, top + 224)), dtype=np.float32)


def imagenet_files(data):
    return sorted((data / "imagenet-sample").glob("*.jpg"))


def squeezenet(data):
    rgb = center_crop_224(imagenet_files(data)[3])
    bgr = rgb[:, :, ::-1] - np.array([104, 117, 123], np.float32)
    return {"data_0": np.ascontiguousarray(bgr.transpose(2, 0, 1)[None])}


def mobilenetv2(data):
    # Batch of two: the batch dim is symbolic, and two images check the batch loop too.
    xs = []
    for f in imagenet_files(data)[:2]:
        x = center_crop_224(f) / 255.0
        x = (x - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
        xs.append(x.transpose(2, 0, 1))
    return {"input": np.stack(xs).astype(np.float32)}


def mnist_digits(data, n):
    with gzip.open(data / "mnist" / "t10k-images-idx3-ubyte.gz") as f:
        raw = f.read()
    return np.frombuffer(raw, np.uint8, offset=16)[: n * 784].reshape(n, 1, 28, 28).astype(np.float32)


def mnist8(data):
    return {"Input3": mnist_digits(data, 1) / 255.0}


def mnist_cnn(data):
    return {"input": ((mnist_digits(data, 3) / 255.0 - 0.5) / 0.5).astype(np.float32)}


def yolox(data):
    img = np.asarray(Image.open(data / "detect-samples" / "dog.jpg").convert("RGB"))
    h, w = img.shape[:2]
    r = min(416 / h, 416 / w)
    nh, nw = int(h * r), int(w * r)
    resized = np.asarray(Image.fromarray(img).resize((nw, nh), Image.BILINEAR))
    canvas = np.full((416, 416, 3), 114, np.uint8)
    canvas[:nh, :nw] = resized
    bgr = canvas[:, :, ::-1].astype(np.float32)
    return {"images": np.ascontiguousarray(bgr.transpose(2, 0, 1)[None])}


def ocr_line(data, max_w):
    img = Image.open(data / "ocr-lines" / "0007.png").convert("RGB")
    w, h = img.size
    nw = min(max_w, max(1, int(round(w * 48 / h))))
    img = img.resize((nw, 48), Image.BILINEAR)
    x = np.asarray(img, np.float32)[:, :, ::-1] / 255.0
    x = (x - 0.5) / 0.5
    out = np.zeros((1, 3, 48, max_w), np.float32)
    out[0, :, :, :nw] = x.transpose(2, 0, 1)
    return out


def ppocr_cls(data):
    return {"x": ocr_line(data, 192)}


def ppocrv4_rec(data):
    return {"x": ocr_line(data, 320)}


def silero(data, model):
    with wave.open(str(data / "vad" / "track.wav")) as w:
        audio = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768
    # Carry the state through a few ORT calls so the tested call starts from a real state.
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    state = np.zeros((2, 1, 128), np.float32)
    sr = np.array(16000, np.int64)
    start = 16000 * 3
    for k in range(4):
        chunk = audio[start + k * 512 - 64: start + (k + 1) * 512][None].astype(np.float32)
        feeds = {"input": chunk, "state": state, "sr": sr}
        if k == 3:
            return feeds
        state = sess.run(None, feeds)[1]


MODELS = {
    "mobilenetv2": mobilenetv2,
    "squeezenet1.1": squeezenet,
    "mnist-8": mnist8,
    "mnist-cnn-opset20-extdata": mnist_cnn,
    "yolox-nano": yolox,
    "ppocr-cls": ppocr_cls,
    "ppocrv4-rec": ppocrv4_rec,
    "silero-vad": None,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quantize", required=True)
    ap.add_argument("--shared", required=True)
    ap.add_argument("--threads", default="2")
    args = ap.parse_args()
    shared = pathlib.Path(args.shared)
    if not (shared / "models").is_dir() or not (shared / "data").is_dir():
        print(f"SKIP: {shared} (shared models and data) is not present")
        return 77
    data = shared / "data"
    rows, failed = [], []
    for name, make in MODELS.items():
        model = shared / "models" / name / "model.onnx"
        if not model.exists():
            failed.append(name)
            rows.append((name, "-", "model missing"))
            continue
        feeds = silero(data, model) if make is None else make(data)
        sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        ref = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
        with tempfile.TemporaryDirectory() as tmp:
            tmp = pathlib.Path(tmp)
            cmd = [args.quantize, "run", str(model), "-o", str(tmp / "out"), "--threads", args.threads]
            for k, v in feeds.items():
                np.save(tmp / f"in_{k}.npy", v)
                cmd += ["--input", f"{k}={tmp / f'in_{k}.npy'}"]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                failed.append(name)
                rows.append((name, "-", f"quantize run exit {proc.returncode}: {proc.stderr.strip()[:200]}"))
                continue
            worst, notes = 0.0, []
            for oname, r in ref.items():
                ours = np.load(tmp / "out" / (oname.replace("/", "_") + ".npy"))
                if ours.shape != r.shape or ours.dtype != r.dtype:
                    notes.append(f"{oname}: shape/dtype {ours.shape}/{ours.dtype} vs {r.shape}/{r.dtype}")
                    worst = float("inf")
                    continue
                denom = float(np.max(np.abs(r))) or 1.0
                err = float(np.max(np.abs(ours.astype(np.float64) - r))) / denom if r.size else 0.0
                worst = max(worst, err)
                notes.append(f"{oname} {list(r.shape)} {err:.2e}")
            if not worst <= TOLERANCE:
                failed.append(name)
            rows.append((name, f"{worst:.2e}", "; ".join(notes)))
    print(f"{'model':28} {'max rel err':>12}  outputs")
    for n, e, note in rows:
        print(f"{n:28} {e:>12}  {note}")
    if failed:
        print(f"FAILED (tolerance {TOLERANCE}): {', '.join(failed)}")
        return 1
    print(f"all {len(rows)} models within {TOLERANCE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
