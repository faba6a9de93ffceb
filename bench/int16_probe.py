#!/usr/bin/env python3
"""Mixed precision probe: a ptq int8 model with its most costly activation Q/DQ pairs made int16.

Ranks the model's activation QuantizeLinear -> DequantizeLinear pairs by what each costs (output
SQNR on ROWS calibration rows with that pair alone removed, minus the model's), then rewrites the
top K pairs as 16-bit Q/DQ (com.microsoft QuantizeLinear/DequantizeLinear, int16, the same range)
and evaluates each model in ORT on the eval split with compare_ort.py's metrics:

    .venv/bin/python bench/int16_probe.py ppocrv4-rec bench/.work/ppocrv4-rec/ptq_auto.onnx --k 1,2,4,8
"""
import argparse
import copy
import pathlib
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import bench_data  # noqa: E402
import compare_ort as co  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent


def activation_pairs(m: onnx.ModelProto) -> list:
    """(Q node index, [DQ node indices]) for every QuantizeLinear of a non-constant tensor."""
    inits = {i.name for i in m.graph.initializer}
    readers: dict = {}
    for j, n in enumerate(m.graph.node):
        for x in n.input:
            readers.setdefault(x, []).append(j)
    pairs = []
    for i, n in enumerate(m.graph.node):
        if n.op_type == "QuantizeLinear" and n.input[0] not in inits:
            dqs = [j for j in readers.get(n.output[0], []) if m.graph.node[j].op_type == "DequantizeLinear"]
            if dqs and len(dqs) == len(readers[n.output[0]]):
                pairs.append((i, dqs))
    return pairs


def without_pair(m: onnx.ModelProto, pair) -> onnx.ModelProto:
    """The pair removed: the DQs' readers read the Q's float input."""
    out = copy.deepcopy(m)
    q, dqs = pair
    src = out.graph.node[q].input[0]
    renamed = {out.graph.node[j].output[0]: src for j in dqs}
    for n in out.graph.node:
        for k, x in enumerate(n.input):
            if x in renamed:
                n.input[k] = renamed[x]
    for o in out.graph.output:
        if o.name in renamed:  # keep graph outputs' names: an Identity writes them
            out.graph.node.append(helper.make_node("Identity", [src], [o.name]))
    drop = {q, *dqs}
    keep = [n for k, n in enumerate(out.graph.node) if k not in drop]
    del out.graph.node[:]
    out.graph.node.extend(keep)
    return out


def to_int16(m: onnx.ModelProto, pairs) -> onnx.ModelProto:
    """The pairs as int16 Q/DQ over the same range (com.microsoft, which ORT runs at opset 13)."""
    out = copy.deepcopy(m)
    inits = {i.name: i for i in out.graph.initializer}
    for q, dqs in pairs:
        qn = out.graph.node[q]
        scale = numpy_helper.to_array(inits[qn.input[1]]).astype(np.float32)
        zp = numpy_helper.to_array(inits[qn.input[2]]).astype(np.int64)
        lo, hi = (0, 255) if inits[qn.input[2]].data_type == onnx.TensorProto.UINT8 else (-128, 127)
        fmin, fmax = (lo - zp) * scale, (hi - zp) * scale
        s16 = ((fmax - fmin) / 65535.0).astype(np.float32)
        z16 = np.clip(np.round(-32768 - fmin / s16), -32768, 32767).astype(np.int16)
        sname, zname = qn.input[1] + "_int16", qn.input[2] + "_int16"
        out.graph.initializer.extend([numpy_helper.from_array(s16, sname), numpy_helper.from_array(z16, zname)])
        for k in [q, *dqs]:
            n = out.graph.node[k]
            n.domain = "com.microsoft"
            n.input[1], n.input[2] = sname, zname
    if not any(o.domain == "com.microsoft" for o in out.opset_import):
        out.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    vi = {n.output[0] for q, _ in pairs for n in [out.graph.node[q]]}
    keep = [v for v in out.graph.value_info if v.name not in vi]
    del out.graph.value_info[:]
    out.graph.value_info.extend(keep)
    return out


def sqnr(ref: list, got: list) -> float:
    s = sum(float(np.sum(r.astype(np.float64) ** 2)) for r in ref)
    e = sum(float(np.sum((r.astype(np.float64) - g) ** 2)) for r, g in zip(ref, got))
    return 10 * np.log10(s / e) if e > 0 else float("inf")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_name")
    ap.add_argument("int8", type=pathlib.Path)
    ap.add_argument("--k", default="1,2,4,8")
    ap.add_argument("--rows", type=int, default=16)
    ap.add_argument("--shared", type=pathlib.Path, default=ROOT.parent / "shared")
    ap.add_argument("--work", type=pathlib.Path, default=pathlib.Path("/tmp/int16_probe"))
    a = ap.parse_args()
    if not (a.shared / "models").is_dir():
        print(f"skip: {a.shared}/models not found (needs ../shared)")
        return 0
    task = bench_data.make_task(a.model_name, a.shared / "models", a.shared / "data", False)
    a.work.mkdir(parents=True, exist_ok=True)
    rows = [f() for f in task.calib[: a.rows]]
    fp = co.session(str(task.model), 2)
    name = fp.get_inputs()[0].name
    ref = [fp.run(None, {name: x})[0] for x in rows]
    m = onnx.load(str(a.int8))

    def measure(model: onnx.ModelProto) -> float:
        p = a.work / "probe.onnx"
        onnx.save(model, str(p))
        s = co.session(str(p), 2)
        return sqnr(ref, [s.run(None, {name: x})[0] for x in rows])

    base = measure(m)
    pairs = activation_pairs(m)
    cost = []
    for pair in pairs:
        cost.append((measure(without_pair(m, pair)) - base, pair))
    cost.sort(key=lambda c: -c[0])
    print(f"base {base:.2f} dB on {a.rows} rows; {len(pairs)} activation pairs; most costly:")
    for gain, (q, _) in cost[:10]:
        print(f"  {m.graph.node[q].input[0]}: +{gain:.2f} dB without its Q/DQ")
    sessions = {"fp32": fp, "int8": co.session(str(a.int8), 2)}
    for k in [int(v) for v in a.k.split(",")]:
        model = to_int16(m, [p for _, p in cost[:k]])
        path = a.work / f"int16_top{k}.onnx"
        onnx.save(model, str(path))
        sessions[f"int16 top {k}"] = co.session(str(path), 2)
    accs = co.evaluate(task, sessions)
    x = task.evals[0]()
    for key, s in sessions.items():
        met = co.task_metrics(task, accs[key], task.labels, None if key == "fp32" else accs["fp32"])
        print(f"| {key} | {met} | {co.latency_ms(s, x, 20):.2f} ms |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
