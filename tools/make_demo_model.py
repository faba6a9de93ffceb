#!/usr/bin/env python3
"""Writes models/demo/model.onnx: a small CNN (8x8 grey digits -> 10 classes) with seeded weights.

Placeholder for the quick start until the trained demo model lands; regenerate with
`.venv/bin/python tools/make_demo_model.py` (byte-identical for the same onnx version).
"""
import argparse
import pathlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def build(seed: int = 2345) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)

    def weight(name, shape, fan_in):
        w = rng.standard_normal(shape).astype(np.float32) * np.float32(np.sqrt(2.0 / fan_in))
        return numpy_helper.from_array(w, name)

    inits = [
        weight("conv1.w", (8, 1, 3, 3), 9),
        numpy_helper.from_array(np.zeros(8, np.float32), "conv1.b"),
        weight("conv2.w", (16, 8, 3, 3), 72),
        numpy_helper.from_array(np.zeros(16, np.float32), "conv2.b"),
        weight("fc.w", (10, 16), 16),
        numpy_helper.from_array(np.zeros(10, np.float32), "fc.b"),
    ]
    nodes = [
        helper.make_node("Conv", ["input", "conv1.w", "conv1.b"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "conv2.w", "conv2.b"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["logits"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes, "demo_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="ptq tools/make_demo_model.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-o", "--output", default=str(pathlib.Path(__file__).parent.parent / "models/demo/model.onnx"))
    args = ap.parse_args()
    onnx.save(build(), args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
