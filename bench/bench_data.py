"""Data and preprocessing for the ptq-vs-ORT benchmark (bench/compare_ort.py).

Each benchmark model gets a `Task`: its model file, input name, the calibration samples and the
held-out evaluation samples (as lazily preprocessed items), following the splits in
../shared/data/README.md and the preprocessing in ../shared/models/README.md. Every sample is a
float32 array with a leading batch dim of 1, exactly what is written to the calibration .npy files
and fed to ONNX Runtime for evaluation.
"""
import dataclasses
import gzip
import json
import math
import pathlib
from typing import Callable

import numpy as np
from PIL import Image

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
CAFFE_MEAN_BGR = np.array([104.0, 117.0, 123.0], np.float32)


@dataclasses.dataclass
class Task:
    """One model with its data: calibration samples, evaluation samples and their labels."""
    name: str
    model: pathlib.Path
    input_name: str
    kind: str                      # "classify", "ocr-rec" or "detect"
    calib: list                    # loaders: () -> np.ndarray [1, ...]
    evals: list                    # loaders for the evaluation split
    labels: list                   # one label per eval item (class index, text, or None)
    calib_labels: list             # labels of the calibration items (for the fp32 full-set check)
    fp32_reference: str            # the fp32 figure ../shared/models/README.md gives
    extra: dict = dataclasses.field(default_factory=dict)
    top5: bool = False


# ---------------------------------------------------------------- image helpers

def load_rgb(path: pathlib.Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def resize(img: np.ndarray, w: int, h: int) -> np.ndarray:
    """Bilinear resize of an HxWx3 uint8 image (PIL)."""
    return np.asarray(Image.fromarray(img).resize((w, h), Image.BILINEAR))


def center_crop(img: np.ndarray, size: int) -> np.ndarray:
    """Floor offsets (like ptq's --center-crop); torchvision's round-half-even differs by a pixel on some
    images, and floor is what reproduces the README's fp32 figures (mobilenetv2 827/1000)."""
    h, w = img.shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    return img[top:top + size, left:left + size]


def resize_short(img: np.ndarray, short: int) -> np.ndarray:
    h, w = img.shape[:2]
    if min(h, w) == short:
        return img
    if h < w:
        return resize(img, int(round(w * short / h)), short)
    return resize(img, short, int(round(h * short / w)))


def to_nchw(img: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(img.transpose(2, 0, 1)[None]).astype(np.float32)


def imagenet_torchvision(path: pathlib.Path) -> np.ndarray:
    img = center_crop(resize_short(load_rgb(path), 256), 224).astype(np.float32) / 255.0
    return to_nchw((img - IMAGENET_MEAN) / IMAGENET_STD)


def imagenet_tf(path: pathlib.Path) -> np.ndarray:
    """EfficientNet-Lite (TF weights): RGB, (p - 127) / 128 (../shared/models/README.md)."""
    img = center_crop(resize_short(load_rgb(path), 256), 224).astype(np.float32)
    return to_nchw((img - 127.0) / 128.0)


def imagenet_caffe(path: pathlib.Path) -> np.ndarray:
    img = center_crop(resize_short(load_rgb(path), 256), 224)[..., ::-1].astype(np.float32)
    return to_nchw(img - CAFFE_MEAN_BGR)


def letterbox_bgr(path: pathlib.Path, size: int = 416, pad: float = 114.0) -> np.ndarray:
    """YOLOX preprocessing: fit inside size x size keeping aspect, top-left, pad 114, BGR 0..255."""
    img = load_rgb(path)
    h, w = img.shape[:2]
    r = min(size / h, size / w)
    nw, nh = int(w * r), int(h * r)
    out = np.full((size, size, 3), pad, np.float32)
    out[:nh, :nw] = resize(img, nw, nh)[..., ::-1]
    return to_nchw(out)


def ocr_line(path: pathlib.Path, max_w: int, rotate180: bool = False) -> np.ndarray:
    """PP-OCR: height 48 keeping aspect (W <= max_w), BGR /255, (x-0.5)/0.5, zero-pad right to max_w."""
    img = load_rgb(path)
    if rotate180:
        img = img[::-1, ::-1]
    h, w = img.shape[:2]
    rw = min(max_w, int(math.ceil(48 * w / h)))
    x = resize(np.ascontiguousarray(img), rw, 48)[..., ::-1].astype(np.float32) / 255.0
    out = np.zeros((48, max_w, 3), np.float32)
    out[:, :rw] = (x - 0.5) / 0.5
    return to_nchw(out)


# ---------------------------------------------------------------- datasets

def imagenet_split(data: pathlib.Path):
    """(calib files, calib labels, eval files, eval labels): sorted index % 10 == 0 calibrates."""
    rows = [line.split("\t") for line in (data / "imagenet-labels.tsv").read_text().splitlines()[1:] if line]
    label = {f: int(c) for f, c in rows}
    files = sorted(label)
    calib = [f for i, f in enumerate(files) if i % 10 == 0]
    evals = [f for i, f in enumerate(files) if i % 10 != 0]
    d = data / "imagenet-sample"
    return [d / f for f in calib], [label[f] for f in calib], [d / f for f in evals], [label[f] for f in evals]


def read_mnist(data: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(data / "mnist/t10k-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(data / "mnist/t10k-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8).astype(int)
    return images, labels


def subset(items: list, n: int | None) -> list:
    """A deterministic evenly spaced subset of n items (all when n is None or larger)."""
    if n is None or n >= len(items):
        return list(range(len(items)))
    return [int(i) for i in np.linspace(0, len(items) - 1, n).round()]


def _pick(seq: list, idx: list) -> list:
    return [seq[i] for i in idx]


def imagenet_task(name: str, models: pathlib.Path, data: pathlib.Path, n_eval, caffe: bool, tf: bool = False) -> Task:
    cf, cl, ef, el = imagenet_split(data)
    pre = imagenet_caffe if caffe else imagenet_tf if tf else imagenet_torchvision
    idx = subset(ef, n_eval)
    ref = "top-1 60.6 %, top-5 83.0 %" if caffe else "top-1 87.78 % on the eval split" if tf else "top-1 82.7 %, top-5 95.6 %"
    return Task(name, models / name / "model.onnx", "data_0" if caffe else "input", "classify",
                [lambda p=p: pre(p) for p in cf], [lambda p=p: pre(p) for p in _pick(ef, idx)],
                _pick(el, idx), cl, f"{ref} on all 1000 images", top5=True)


def mnist_task(name: str, models: pathlib.Path, data: pathlib.Path, n_eval) -> Task:
    images, labels = read_mnist(data)
    centred = name == "mnist-cnn-opset20-extdata"

    def pre(i: int) -> np.ndarray:
        x = images[i].astype(np.float32) / 255.0
        if centred:
            x = (x - 0.5) / 0.5
        return x[None, None]

    idx = [1000 + i for i in subset(list(range(9000)), n_eval)]
    ref = "97.37 % on the 10k test set" if centred else "98.90 % on the 10k test set"
    return Task(name, models / name / "model.onnx", "input" if centred else "Input3", "classify",
                [lambda i=i: pre(i) for i in range(1000)], [lambda i=i: pre(i) for i in idx],
                [int(labels[i]) for i in idx], [int(labels[i]) for i in range(1000)], ref)


def ocr_task(name: str, models: pathlib.Path, data: pathlib.Path, n_eval) -> Task:
    d = data / "ocr-lines"
    files = [d / f"aug_{i:04d}.png" for i in range(1000)]
    if name == "ppocr-cls":
        labels = json.loads((d / "labels_ocr_cls.json").read_text())["labels"]
        load = lambda i: ocr_line(files[i], 192, rotate180=bool(labels[i]))  # noqa: E731
        kind, out_name, ref = "classify", "x", "96.5 % on the 1000 augmented lines"
    else:
        labels = json.loads((d / "labels_ocr_rec_aug.json").read_text())["labels"]
        load = lambda i: ocr_line(files[i], 320)  # noqa: E731
        kind, out_name, ref = "ocr-rec", "x", "exact match 99.3 %, CER 0.08 % on the 1000 augmented lines"
    idx = [100 + i for i in subset(list(range(900)), n_eval)]
    task = Task(name, models / name / "model.onnx", out_name, kind,
                [lambda i=i: load(i) for i in range(100)], [lambda i=i: load(i) for i in idx],
                [labels[i] for i in idx], labels[:100], ref)
    if kind == "ocr-rec":
        keys = (models / name / "ppocr_keys_v1.txt").read_text(encoding="utf-8").splitlines()
        task.extra["charset"] = [""] + keys + [" "]
    return task


def yolox_task(name: str, models: pathlib.Path, data: pathlib.Path, n_eval) -> Task:
    """Calibrate on the ImageNet calibration split; evaluate on detect-samples (+ ImageNet eval photos)."""
    cf, _, ef, _ = imagenet_split(data)
    samples = sorted((data / "detect-samples").glob("*.jpg"))
    extra_imgs = _pick(ef, subset(ef, n_eval))
    evals = samples + extra_imgs
    task = Task(name, models / name / "model.onnx", "images", "detect",
                [lambda p=p: letterbox_bgr(p) for p in cf], [lambda p=p: letterbox_bgr(p) for p in evals],
                ["detect-samples"] * len(samples) + ["imagenet"] * len(extra_imgs), [],
                "sensible boxes on detect-samples (no ground truth)")
    task.extra["names"] = [p.stem for p in samples]
    return task


def demo_task(name: str, repo: pathlib.Path, n_eval) -> Task:
    """The project's own demo model (tools/make_demo_model.py) with its calib/ and eval/ .npy files."""
    d = repo / "models/demo"
    rows = [line.split("\t") for line in (d / "labels.tsv").read_text().splitlines()[1:] if line]
    calib = [(d / f, int(c)) for f, c in rows if f.startswith("calib/")]
    evals = [(d / f, int(c)) for f, c in rows if f.startswith("eval/")]
    evals = _pick(evals, subset(evals, n_eval))
    return Task(name, d / "model.onnx", "input", "classify",
                [lambda f=f: np.load(f) for f, _ in calib], [lambda f=f: np.load(f) for f, _ in evals],
                [c for _, c in evals], [], "models/demo/README.md")


MODELS = ["mobilenetv2", "squeezenet1.1", "efficientnet-lite0", "mnist-8", "mnist-cnn-opset20-extdata", "ppocr-cls",
          "ppocrv4-rec", "yolox-nano", "demo"]

EVAL_COUNTS = {  # full / --quick evaluation sample counts per model
    "mobilenetv2": (900, 200), "squeezenet1.1": (900, 200), "mnist-8": (9000, 1000),
    "mnist-cnn-opset20-extdata": (9000, 1000), "ppocr-cls": (900, 200), "ppocrv4-rec": (900, 100),
    "yolox-nano": (300, 40), "demo": (300, 300), "efficientnet-lite0": (900, 200),
}


def make_task(name: str, models: pathlib.Path, data: pathlib.Path, quick: bool) -> Task:
    n_eval = EVAL_COUNTS[name][1 if quick else 0]
    builders: dict[str, Callable] = {
        "mobilenetv2": lambda: imagenet_task(name, models, data, n_eval, caffe=False),
        "squeezenet1.1": lambda: imagenet_task(name, models, data, n_eval, caffe=True),
        # Not in MODELS (compare_ort.py's default set) yet: bench/ablation.py --models efficientnet-lite0.
        "efficientnet-lite0": lambda: imagenet_task(name, models, data, n_eval, caffe=False, tf=True),
        "mnist-8": lambda: mnist_task(name, models, data, n_eval),
        "mnist-cnn-opset20-extdata": lambda: mnist_task(name, models, data, n_eval),
        "ppocr-cls": lambda: ocr_task(name, models, data, n_eval),
        "ppocrv4-rec": lambda: ocr_task(name, models, data, n_eval),
        "yolox-nano": lambda: yolox_task(name, models, data, n_eval),
        "demo": lambda: demo_task(name, pathlib.Path(__file__).resolve().parent.parent, n_eval),
    }
    return builders[name]()
