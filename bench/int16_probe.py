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
import bench_metrics as bm  # noqa: E402
import compare_ort as co  # noqa: E402
from float_groups import activation_pairs, float_pairs  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent


def without_pair(m: onnx.ModelProto, tensor: str) -> onnx.ModelProto:
    """A copy with the pair quantizing `tensor` removed: its readers read the float tensor."""
    out = copy.deepcopy(m)
    float_pairs(out.graph, [p for p in activation_pairs(out.graph) if p[0] == tensor])
    return out


def to_int16(m: onnx.ModelProto, tensors: list) -> onnx.ModelProto:
    """A copy with the pairs quantizing `tensors` as int16 Q/DQ over the same range (com.microsoft,
    which ORT runs at opset 13)."""
    out = copy.deepcopy(m)
    inits = {i.name: i for i in out.graph.initializer}
    chosen = [p for p in activation_pairs(out.graph) if p[0] in tensors]
    for _, qn, dqs in chosen:
        scale = numpy_helper.to_array(inits[qn.input[1]]).astype(np.float32)
        zp = numpy_helper.to_array(inits[qn.input[2]]).astype(np.int64)
        lo, hi = (0, 255) if inits[qn.input[2]].data_type == onnx.TensorProto.UINT8 else (-128, 127)
        fmin, fmax = (lo - zp) * scale, (hi - zp) * scale
        s16 = ((fmax - fmin) / 65535.0).astype(np.float32)
        z16 = np.clip(np.round(-32768 - fmin / s16), -32768, 32767).astype(np.int16)
        sname, zname = qn.input[1] + "_int16", qn.input[2] + "_int16"
        out.graph.initializer.extend([numpy_helper.from_array(s16, sname), numpy_helper.from_array(z16, zname)])
        for n in [qn, *dqs]:
            n.domain = "com.microsoft"
            n.input[1], n.input[2] = sname, zname
    if not any(o.domain == "com.microsoft" for o in out.opset_import):
        out.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    int16 = {qn.output[0] for _, qn, _ in chosen}  # declared uint8 in value_info, if at all
    keep = [v for v in out.graph.value_info if v.name not in int16]
    del out.graph.value_info[:]
    out.graph.value_info.extend(keep)
    return out


def sqnr(ref: list, got: list) -> float:
    """Output SQNR pooled over rows."""
    return bm.sqnr_db(np.concatenate([r.ravel() for r in ref]), np.concatenate([g.ravel() for g in got]))


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
    tensors = [t for t, _, _ in activation_pairs(m.graph)]
    cost = sorted(((measure(without_pair(m, t)) - base, t) for t in tensors), key=lambda c: -c[0])
    print(f"base {base:.2f} dB on {a.rows} rows; {len(tensors)} activation pairs; most costly:")
    for gain, t in cost[:10]:
        print(f"  {t}: +{gain:.2f} dB without its Q/DQ")
    sessions = {"fp32": fp, "int8": co.session(str(a.int8), 2)}
    for k in [int(v) for v in a.k.split(",")]:
        model = to_int16(m, [t for _, t in cost[:k]])
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
