#!/usr/bin/env python3
"""Probe: YOLOX-nano's fp32 stem made integer by splitting its channels into groups.

ptq's placement search keeps YOLOX's stem fp32 (Conv_41 -> SiLU -> depthwise Conv_44): the SiLU
output's channels reach 0.8 next to 98, and one uint8 grid for all of them costs most of the
model's accuracy (docs/quantization.md). The depthwise Conv treats each channel on its own, so the
stem can be cut by channels into groups of similar range, each quantized with its own scales,
exactly: Conv_41 by output channels, its SiLU, Conv_44 by channels, then a Concat at Conv_44's
output scale. Channels are sorted by range first; the one reader of the stem's second SiLU (the
1x1 Conv_47) gets its input channels permuted to match, also exact. Measured, it does not help
(docs/quantization.md): the range is inside each channel (maxima near 100, median |y| 0.24).

Takes ptq's default int8 model (stem fp32), rewrites the stem so, and writes the model; evaluate
it with `bench/yolox.py --ptq=@OUT`. Ranges: per channel over the calibration rows given, the
SiLU input's low end clipped where the SiLU output stops changing (-8).

    .venv/bin/python bench/stem_split_probe.py INT8 bench/.work/yolox/calib --groups 3 -o OUT
"""
import argparse
import pathlib

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

FP32 = pathlib.Path(__file__).resolve().parent.parent.parent / "shared/models/yolox-nano/model.onnx"


def channel_ranges(calib, rows):
    """Per-channel min/max of the stem's Conv output (SiLU input) and SiLU output, fp32."""
    m = onnx.load(str(FP32))
    for name in ("onnx::Sigmoid_1177", "input.7"):
        m.graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    lo_x = hi_x = lo_y = hi_y = None
    for f in sorted(pathlib.Path(calib).glob("*.npy"))[:rows]:
        x, y = s.run(["onnx::Sigmoid_1177", "input.7"], {"images": np.load(f)})
        ax = (0, 2, 3)
        cur = (x.min(ax), x.max(ax), y.min(ax), y.max(ax))
        if lo_x is None:
            lo_x, hi_x, lo_y, hi_y = cur
        else:
            lo_x, hi_x = np.minimum(lo_x, cur[0]), np.maximum(hi_x, cur[1])
            lo_y, hi_y = np.minimum(lo_y, cur[2]), np.maximum(hi_y, cur[3])
    return np.maximum(lo_x, -8.0), hi_x, lo_y, hi_y


def groups_by_range(hi, n):
    """Channels sorted by range, cut into n groups at equal steps of log range."""
    order = np.argsort(hi, kind="stable")
    logs = np.log(np.maximum(hi[order].astype(np.float64), 1e-3))
    span = max(logs[-1] - logs[0], 1e-12)
    k = np.minimum(((logs - logs[0]) / span * n).astype(int), n - 1)
    return [order[k == i] for i in range(n) if np.any(k == i)]


def uint8_qparams(lo, hi):
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    scale = (hi - lo) / 255.0 or 1.0
    zp = int(np.clip(round(-lo / scale), 0, 255))
    return np.float32(scale), np.uint8(zp)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("int8", type=pathlib.Path)
    ap.add_argument("calib", type=pathlib.Path)
    ap.add_argument("--groups", type=int, default=3)
    ap.add_argument("--rows", type=int, default=32)
    ap.add_argument("-o", "--out", type=pathlib.Path, required=True)
    a = ap.parse_args()
    lo_x, hi_x, lo_y, hi_y = channel_ranges(a.calib, a.rows)
    groups = groups_by_range(hi_y, a.groups)
    perm = np.concatenate(groups)
    m = onnx.load(str(a.int8))
    g = m.graph
    init = {t.name: t for t in g.initializer}
    arr = lambda name: numpy_helper.to_array(init[name])  # noqa: E731
    by_name = {n.name: n for n in g.node}
    conv41, conv44 = by_name["Conv_41"], by_name["Conv_44"]
    w41, b41 = arr(conv41.input[1]), arr(conv41.input[2])
    w44, b44 = arr(conv44.input[1]), arr(conv44.input[2])
    readers = [n for n in g.node if "onnx::Sigmoid_1180" in n.input]
    assert len(readers) == 1 and readers[0].op_type == "QuantizeLinear", readers
    out_q = readers[0]
    s_out = numpy_helper.to_array(init[out_q.input[1]])
    z_out = numpy_helper.to_array(init[out_q.input[2]])
    new_nodes, new_init = [], []

    def const(name, value):
        new_init.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def qdq(x, scale, zp, tag):
        q = const(f"{tag}_scale", scale), const(f"{tag}_zp", zp)
        new_nodes.append(helper.make_node("QuantizeLinear", [x, *q], [f"{tag}_q"], name=f"{tag}_Q"))
        new_nodes.append(helper.make_node("DequantizeLinear", [f"{tag}_q", *q], [f"{tag}_dq"], name=f"{tag}_DQ"))
        return f"{tag}_dq"

    def weights(w, b, s_in, tag):
        """Per-output-channel int8 weights (symmetric, 127) and an int32 bias at s_in * s_w."""
        s_w = (np.abs(w).reshape(len(w), -1).max(1) / 127).astype(np.float32)
        s_w[s_w == 0] = 1
        wq = np.clip(np.round(w / s_w[:, None, None, None]), -127, 127).astype(np.int8)
        sb = (s_in * s_w).astype(np.float32)
        bq = np.round(b / sb).astype(np.int32)
        wn, bn = f"{tag}_w", f"{tag}_b"
        new_nodes.append(helper.make_node("DequantizeLinear", [const(wn + "_q", wq), const(wn + "_s", s_w),
                                                               const(wn + "_z", np.zeros(len(w), np.int8))],
                                          [wn], name=wn + "_DQ", axis=0))
        new_nodes.append(helper.make_node("DequantizeLinear", [const(bn + "_q", bq), const(bn + "_s", sb),
                                                               const(bn + "_z", np.zeros(len(b), np.int32))],
                                          [bn], name=bn + "_DQ", axis=0))
        return wn, bn

    # The image (Focus slices, values 0..255) on its exact uint8 grid.
    x_in = qdq(conv41.input[0], np.float32(1.0), np.uint8(0), "stem_in")
    attrs41 = {at.name: helper.get_attribute_value(at) for at in conv41.attribute}
    attrs44 = {at.name: helper.get_attribute_value(at) for at in conv44.attribute}
    outs = []
    for k, idx in enumerate(groups):
        t = f"stem_g{k}"
        wn, bn = weights(w41[idx], b41[idx], np.float32(1.0), t + "_c41")
        new_nodes.append(helper.make_node("Conv", [x_in, wn, bn], [t + "_x"], name=t + "_Conv41", **attrs41))
        sx, zx = uint8_qparams(lo_x[idx].min(), hi_x[idx].max())
        xq = qdq(t + "_x", sx, zx, t + "_xq")
        new_nodes.append(helper.make_node("Sigmoid", [xq], [t + "_s"], name=t + "_Sigmoid"))
        sq = qdq(t + "_s", np.float32(1 / 255), np.uint8(0), t + "_sq")
        new_nodes.append(helper.make_node("Mul", [xq, sq], [t + "_y"], name=t + "_Mul"))
        sy, zy = uint8_qparams(lo_y[idx].min(), hi_y[idx].max())
        yq = qdq(t + "_y", sy, zy, t + "_yq")
        a44 = dict(attrs44, group=len(idx))
        wn, bn = weights(w44[idx], b44[idx], sy, t + "_c44")
        new_nodes.append(helper.make_node("Conv", [yq, wn, bn], [t + "_z"], name=t + "_Conv44", **a44))
        outs.append(qdq(t + "_z", s_out, z_out, t + "_zq"))
    new_nodes.append(helper.make_node("Concat", outs, ["onnx::Sigmoid_1180"], name="stem_Concat", axis=1))
    # Conv_47 reads the second SiLU of the permuted channels: permute its input channels.
    conv47 = by_name["Conv_47"]
    w47_dq = next(n for n in g.node if n.output[0] == conv47.input[1])
    w47 = init[w47_dq.input[0]]
    w47.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(w47)[:, perm], w47.name))
    drop = {"Conv_41", "Sigmoid_42", "Mul_43", "Conv_44"}
    kept = [n for n in g.node if n.name not in drop]
    at = next(i for i, n in enumerate(kept) if n.name == out_q.name)
    del g.node[:]
    g.node.extend(kept[:at] + new_nodes + kept[at:])
    g.initializer.extend(new_init)
    onnx.save(m, str(a.out))
    print(f"groups (channels, SiLU output max): {[(len(i), round(float(hi_y[i].max()), 2)) for i in groups]}")


if __name__ == "__main__":
    main()
