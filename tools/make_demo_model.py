#!/usr/bin/env python3
"""Trains and writes the demo model: a small CNN for scikit-learn's 8x8 digits, with its data.

Writes under models/demo/:
  model.onnx     input `input` [N,1,8,8] (raw pixel values 0..16, as load_digits gives them),
                 output `logits` [N,10]: Conv(8,3x3) ReLU MaxPool Conv(16,3x3) ReLU MaxPool Flatten Gemm
  calib/NNNN.npy 100 calibration samples, float32 [1,1,8,8]
  eval/NNNN.npy  300 held-out evaluation samples, float32 [1,1,8,8]
  labels.tsv     `file<TAB>class_index` for every calib/ and eval/ file (with a header line)

The 1797 digits are shuffled with a fixed seed and split into 100 calibration, 300 evaluation and
1397 training samples; the net is trained with plain numpy (float64, Adam, fixed seeds), so the
run is deterministic. Requires scikit-learn (tools/requirements-demo.txt) for the data only:

    .venv/bin/pip install -r tools/requirements-demo.txt
    .venv/bin/python tools/make_demo_model.py
"""
import argparse
import pathlib
import shutil

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

N_CALIB, N_EVAL = 100, 300
PIXEL_MAX = 16.0  # load_digits pixels are 0..16; the net trains on x/16 and the scale is folded into conv1


# ---------------------------------------------------------------- data

def load_split(seed: int):
    from sklearn.datasets import load_digits  # the data ships inside the scikit-learn package
    digits = load_digits()
    x = digits.images.astype(np.float32)[:, None]          # [1797, 1, 8, 8], values 0..16
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    calib, evals, train = order[:N_CALIB], order[N_CALIB:N_CALIB + N_EVAL], order[N_CALIB + N_EVAL:]
    return (x[calib], y[calib]), (x[evals], y[evals]), (x[train], y[train])


# ---------------------------------------------------------------- layers (NCHW, float64)

def im2col(x: np.ndarray) -> np.ndarray:
    """3x3 patches with padding 1: [N,C,H,W] -> [N*H*W, C*9]."""
    n, c, h, w = x.shape
    p = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    cols = np.stack([p[:, :, i:i + h, j:j + w] for i in range(3) for j in range(3)], axis=2)  # N,C,9,H,W
    return cols.transpose(0, 3, 4, 1, 2).reshape(n * h * w, c * 9)


def col2im(dcols: np.ndarray, shape: tuple) -> np.ndarray:
    n, c, h, w = shape
    d = dcols.reshape(n, h, w, c, 9).transpose(0, 3, 4, 1, 2)
    dp = np.zeros((n, c, h + 2, w + 2))
    for k in range(9):
        i, j = divmod(k, 3)
        dp[:, :, i:i + h, j:j + w] += d[:, :, k]
    return dp[:, :, 1:-1, 1:-1]


def conv_fwd(x, w, b):
    n, _, h, wd = x.shape
    cols = im2col(x)
    out = cols @ w.reshape(len(w), -1).T + b
    return out.reshape(n, h, wd, -1).transpose(0, 3, 1, 2), cols


def conv_bwd(dout, cols, x_shape, w):
    d = dout.transpose(0, 2, 3, 1).reshape(-1, len(w))
    dw = (d.T @ cols).reshape(w.shape)
    return col2im(d @ w.reshape(len(w), -1), x_shape), dw, d.sum(0)


def pool_fwd(x):
    n, c, h, w = x.shape
    r = x.reshape(n, c, h // 2, 2, w // 2, 2)
    out = r.max(axis=(3, 5))
    mask = r == out[:, :, :, None, :, None]
    return out, mask / mask.sum(axis=(3, 5), keepdims=True)


def pool_bwd(dout, mask):
    n, c, h2, _, w2, _ = mask.shape
    return (mask * dout[:, :, :, None, :, None]).reshape(n, c, h2 * 2, w2 * 2)


# ---------------------------------------------------------------- the net

def init_params(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    he = lambda shape, fan: rng.standard_normal(shape) * np.sqrt(2.0 / fan)  # noqa: E731
    return {"conv1.w": he((8, 1, 3, 3), 9), "conv1.b": np.zeros(8),
            "conv2.w": he((16, 8, 3, 3), 72), "conv2.b": np.zeros(16),
            "fc.w": he((10, 64), 64), "fc.b": np.zeros(10)}


def forward(p: dict, x: np.ndarray):
    c1, cols1 = conv_fwd(x, p["conv1.w"], p["conv1.b"])
    r1 = np.maximum(c1, 0)
    p1, m1 = pool_fwd(r1)
    c2, cols2 = conv_fwd(p1, p["conv2.w"], p["conv2.b"])
    r2 = np.maximum(c2, 0)
    p2, m2 = pool_fwd(r2)
    flat = p2.reshape(len(x), -1)
    logits = flat @ p["fc.w"].T + p["fc.b"]
    return logits, (x, cols1, c1, m1, p1, cols2, c2, m2, flat)


def backward(p: dict, cache, dlogits: np.ndarray) -> dict:
    x, cols1, c1, m1, p1, cols2, c2, m2, flat = cache
    g = {"fc.w": dlogits.T @ flat, "fc.b": dlogits.sum(0)}
    d = pool_bwd((dlogits @ p["fc.w"]).reshape(len(x), 16, 2, 2), m2) * (c2 > 0)
    d, g["conv2.w"], g["conv2.b"] = conv_bwd(d, cols2, p1.shape, p["conv2.w"])
    d = pool_bwd(d, m1) * (c1 > 0)
    _, g["conv1.w"], g["conv1.b"] = conv_bwd(d, cols1, x.shape, p["conv1.w"])
    return g


def softmax_xent(logits: np.ndarray, y: np.ndarray):
    z = logits - logits.max(1, keepdims=True)
    prob = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    loss = -np.log(prob[np.arange(len(y)), y] + 1e-12).mean()
    prob[np.arange(len(y)), y] -= 1.0
    return loss, prob / len(y)


def train(x: np.ndarray, y: np.ndarray, seed: int, epochs: int, lr: float = 3e-3, batch: int = 32,
          weight_decay: float = 1e-4) -> dict:
    """Adam on mini-batches; x is [N,1,8,8] scaled to 0..1."""
    p = init_params(seed)
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}
    rng = np.random.default_rng(seed + 1)
    step = 0
    for epoch in range(epochs):
        order = rng.permutation(len(y))
        total = 0.0
        for s in range(0, len(y), batch):
            idx = order[s:s + batch]
            logits, cache = forward(p, x[idx])
            loss, dlogits = softmax_xent(logits, y[idx])
            total += loss * len(idx)
            grads = backward(p, cache, dlogits)
            step += 1
            for k in p:
                g = grads[k] + weight_decay * p[k]
                m[k] = 0.9 * m[k] + 0.1 * g
                v[k] = 0.999 * v[k] + 0.001 * g * g
                p[k] -= lr * (m[k] / (1 - 0.9 ** step)) / (np.sqrt(v[k] / (1 - 0.999 ** step)) + 1e-8)
        if epoch % 5 == 4 or epoch == epochs - 1:
            acc = float((forward(p, x)[0].argmax(1) == y).mean())
            print(f"epoch {epoch + 1:3d}: loss {total / len(y):.4f}, train accuracy {100 * acc:.2f} %")
    return p


# ---------------------------------------------------------------- export

def export(p: dict) -> onnx.ModelProto:
    """ONNX model taking raw 0..16 pixels: the 1/16 input scale is folded into conv1's weights."""
    w = {k: v.astype(np.float32) for k, v in p.items()}
    w["conv1.w"] = (p["conv1.w"] / PIXEL_MAX).astype(np.float32)
    inits = [numpy_helper.from_array(w[k], k) for k in ("conv1.w", "conv1.b", "conv2.w", "conv2.b", "fc.w", "fc.b")]
    nodes = [
        helper.make_node("Conv", ["input", "conv1.w", "conv1.b"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "conv2.w", "conv2.b"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("MaxPool", ["r2"], ["p2"], name="pool2", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p2"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["logits"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes, "demo_digits_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="ptq tools/make_demo_model.py")
    model.ir_version = 8
    model.doc_string = "8x8 digits CNN trained on scikit-learn load_digits; input: raw pixels 0..16"
    onnx.checker.check_model(model)
    return model


def write_data(out: pathlib.Path, calib, evals) -> None:
    rows = ["file\tclass_index"]
    for sub, (x, y) in (("calib", calib), ("eval", evals)):
        d = out / sub
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        for i, (xi, yi) in enumerate(zip(x, y)):
            np.save(d / f"{i:04d}.npy", xi[None].astype(np.float32))
            rows.append(f"{sub}/{i:04d}.npy\t{int(yi)}")
    (out / "labels.tsv").write_text("\n".join(rows) + "\n")


def accuracy_onnx(model: onnx.ModelProto, x: np.ndarray, y: np.ndarray) -> float | None:
    """Accuracy of the exported model in ONNX Runtime (None when onnxruntime is not installed)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return float((sess.run(None, {"input": x})[0].argmax(1) == y).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--out-dir", type=pathlib.Path,
                    default=pathlib.Path(__file__).resolve().parent.parent / "models/demo")
    ap.add_argument("--seed", type=int, default=2345)
    ap.add_argument("--epochs", type=int, default=40)
    args = ap.parse_args()

    np.random.seed(args.seed)
    calib, evals, (xt, yt) = load_split(args.seed)
    params = train(xt.astype(np.float64) / PIXEL_MAX, yt, args.seed, args.epochs)
    model = export(params)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(args.out_dir / "model.onnx"))
    write_data(args.out_dir, calib, evals)
    acc = accuracy_onnx(model, evals[0], evals[1])
    print(f"wrote {args.out_dir}/model.onnx, calib/ ({len(calib[1])}), eval/ ({len(evals[1])}), labels.tsv"
          + (f"; fp32 eval accuracy {100 * acc:.2f} % ({round(acc * len(evals[1]))}/{len(evals[1])})"
             if acc is not None else ""))


if __name__ == "__main__":
    main()
