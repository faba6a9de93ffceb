#!/usr/bin/env python3
"""Quantizes a generated model with more than 2 GB of float weights (external data) end to end.

A MatMul/Relu chain of LAYERS square DIM x DIM float weights is written straight to an external
data file (never held in memory as one protobuf), a few calibration samples beside it, then
`quantize MODEL -o OUT --calib DATA --external-data` runs while os.wait4 records its peak RSS and
the wall clock. Prints a Markdown table row for docs/benchmarks.md ("Models over 2 GB") and
removes everything it generated unless --keep.

    .venv/bin/python bench/big_model.py --quantize build-rel/tools/quantize
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
from onnx import TensorProto, helper


def write_model(d, dim, layers, seed):
    """big.onnx + big.onnx.data: x[1,dim] -> (MatMul W_i -> Relu) x layers -> y. Returns weight bytes."""
    rng = np.random.default_rng(seed)
    data_path = os.path.join(d, "big.onnx.data")
    inits, nodes, offset = [], [], 0
    prev = "x"
    with open(data_path, "wb") as f:
        for i in range(layers):
            w = (rng.standard_normal((dim, dim), dtype=np.float32) * np.float32(1.5 / np.sqrt(dim)))
            f.write(w.tobytes())
            t = TensorProto(name=f"w{i}", data_type=TensorProto.FLOAT, dims=[dim, dim],
                            data_location=TensorProto.EXTERNAL)
            for k, v in (("location", "big.onnx.data"), ("offset", str(offset)), ("length", str(w.nbytes))):
                e = t.external_data.add()
                e.key, e.value = k, v
            offset += w.nbytes
            inits.append(t)
            mm = f"mm{i}"
            nodes.append(helper.make_node("MatMul", [prev, f"w{i}"], [mm], name=f"matmul{i}"))
            last = i == layers - 1
            out = "y" if last else f"relu{i}"
            nodes.append(helper.make_node("Relu", [mm], [out], name=f"relu{i}"))
            prev = out
            del w
    graph = helper.make_graph(
        nodes, "big_chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, dim])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, dim])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    with open(os.path.join(d, "big.onnx"), "wb") as f:
        f.write(model.SerializeToString())
    return offset


def run_measured(cmd):
    """(exit code, wall seconds, peak RSS in bytes) of cmd, through os.wait4."""
    start = time.monotonic()
    p = subprocess.Popen(cmd)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - start
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, wall, ru.ru_maxrss * 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quantize", required=True, help="the quantize binary")
    ap.add_argument("--dim", type=int, default=8192)
    ap.add_argument("--layers", type=int, default=9, help="9 x 8192^2 floats = 2.25 GiB")
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workdir", default=None, help="where to generate (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    a = ap.parse_args()

    d = tempfile.mkdtemp(prefix="ptq-big-", dir=a.workdir)
    try:
        t0 = time.monotonic()
        weight_bytes = write_model(d, a.dim, a.layers, seed=2345)
        calib = os.path.join(d, "calib")
        os.makedirs(calib)
        rng = np.random.default_rng(7)
        for i in range(a.samples):
            np.save(os.path.join(calib, f"{i:04d}.npy"), rng.random((1, a.dim), dtype=np.float32))
        print(f"generated {weight_bytes / 2**30:.2f} GiB of weights in {time.monotonic() - t0:.1f} s "
              f"({a.layers} x {a.dim}x{a.dim}) in {d}", file=sys.stderr)

        out = os.path.join(d, "out")
        os.makedirs(out)
        q = os.path.join(out, "big_int8.onnx")
        cmd = [a.quantize, os.path.join(d, "big.onnx"), "-o", q, "--calib", calib, "--external-data",
               "--threads", str(a.threads)]
        print("$ " + " ".join(cmd), file=sys.stderr)
        rc, wall, rss = run_measured(cmd)
        if rc != 0:
            print(f"quantize failed with exit code {rc}", file=sys.stderr)
            return 1

        m = onnx.load(q, load_external_data=False)
        external = [t.name for t in m.graph.initializer if t.data_location == TensorProto.EXTERNAL]
        data_file = q + ".data"
        assert os.path.exists(data_file) and external, "output has no external data"
        ops = {}
        for n in m.graph.node:
            ops[n.op_type] = ops.get(n.op_type, 0) + 1
        onnx.checker.check_model(q)  # by path: the checker reads external data itself
        print(f"output: {os.path.getsize(q)} B model + {os.path.getsize(data_file)} B external data, "
              f"{len(external)} external tensors, ops {ops}", file=sys.stderr)
        print("| weights (fp32) | layers | peak RSS | RSS / weights | wall | output (model + .data) |")
        print("|---:|---|---:|---:|---:|---:|")
        print(f"| {weight_bytes / 2**30:.2f} GiB | {a.layers} x MatMul {a.dim}x{a.dim} + Relu "
              f"| {rss / 2**30:.2f} GiB | {rss / weight_bytes:.2f}x | {wall:.1f} s "
              f"| {os.path.getsize(q) / 2**10:.0f} KiB + {os.path.getsize(data_file) / 2**20:.0f} MiB |")
        return 0
    finally:
        if a.keep:
            print(f"kept {d}", file=sys.stderr)
        else:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
