#!/usr/bin/env python3
"""Probe: per-tensor range choice by the error it causes (docs/quantization.md, "Per-tensor range choice").

Quantizes MODEL with ptq's default command, and with --effort fast for each calibration method
(percentile, minmax, minmax --minmax-average, entropy, mse), which gives every activation
scale group (a QuantizeLinear scale, shared by a Concat's inputs) one candidate (scale, zero
point) per method. Starting from the default model, it then visits the groups in graph order
and tries each method's candidate, the rest of the model (biases, fp32 nodes) as the default
command left it; a candidate is kept when the output SQNR (YOLOX: its objectness column) on
ROWS calibration rows rises by EPS dB, and, with --gate, also on the ROWS rows after them.
With --local the SQNR is instead that of what the nodes reading the group write (the mean over
those nodes), given the model upstream as chosen so far. The scales become graph inputs, so one
ORT session (Q and DQ run as float ops) serves every try.
The chosen model is evaluated in ORT next to the default one: yolox-nano with bench/yolox.py,
the classifiers on the eval split (top-1, agreement, SQNR).

    .venv/bin/python bench/range_choice_probe.py yolox-nano --rows 8
    .venv/bin/python bench/range_choice_probe.py yolox-nano --rows 16 --gate
"""
import argparse
import pathlib
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper as nh

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import bench_metrics as bm  # noqa: E402
from weight_rounding_probe import calib_rows, evaluate, model_and_calib  # noqa: E402

METHODS = {"percentile": [], "minmax": [], "minmax_average": ["--minmax-average"], "entropy": [], "mse": []}


def zp_name(scale):
    return scale[: -len("_scale")] + "_zero_point"


def variable_scales(model, groups):
    """The model with each group's scale and zero point as graph inputs instead of initializers."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    moved = set(groups) | {zp_name(g) for g in groups}
    keep = [i for i in m.graph.initializer if i.name not in moved]
    elem = {i.name: i.data_type for i in m.graph.initializer if i.name in moved}
    del m.graph.initializer[:]
    m.graph.initializer.extend(keep)
    for name in sorted(moved):
        m.graph.input.append(onnx.helper.make_tensor_value_info(name, elem[name], []))
    return m


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="a shared model name: yolox-nano, mobilenetv2, ...")
    ap.add_argument("--rows", type=int, default=8, help="calibration rows the choice is measured on")
    ap.add_argument("--eps", type=float, default=0.02, help="dB a candidate must gain")
    ap.add_argument("--gate", action="store_true", help="also require the gain on the next ROWS rows")
    ap.add_argument("--local", action="store_true",
                    help="measure the SQNR of the outputs of the nodes reading the group instead of the model's")
    ap.add_argument("--quantize", default=str(ROOT / "build/tools/quantize"))
    ap.add_argument("--work", type=pathlib.Path, default=ROOT / "bench/.work/range_choice")
    a = ap.parse_args()
    model, calib = model_and_calib(a.model)
    a.work.mkdir(parents=True, exist_ok=True)

    def quantize(out, flags):
        subprocess.run([a.quantize, str(model), "--calib", str(calib), "-o", str(out), "-q"] + flags,
                       check=True, capture_output=True)
        return onnx.load(str(out))

    base = quantize(a.work / f"{a.model}_default.onnx", [])
    cand_models = {k: quantize(a.work / f"{a.model}_{k}_fast.onnx", ["--method", k.split("_")[0], "--effort", "fast"] + f)
                   for k, f in METHODS.items()}
    init = {k: {i.name: nh.to_array(i) for i in m.graph.initializer} for k, m in cand_models.items()}
    binit = {i.name: nh.to_array(i) for i in base.graph.initializer}
    names = list(METHODS)
    # Activation groups whose default value is one method's fast value (the steps after
    # calibration left it alone: not rescaled by depthwise input scales).
    groups, start = [], {}
    for n in base.graph.node:
        g = n.input[1] if n.op_type == "QuantizeLinear" else None
        if g is None or n.input[0] in binit or g in start or binit[g].size != 1:
            continue
        same = [k for k in names if g in init[k] and np.array_equal(init[k][g], binit[g])
                and np.array_equal(init[k][zp_name(g)], binit[zp_name(g)])]
        if same and all(g in init[k] for k in names):
            groups.append(g)
            start[g] = names.index(same[0])
    fp32_model = onnx.load(str(model))
    consumers = {}  # --local: group -> the float outputs of the nodes reading its dequantized values
    if a.local:
        inferred = onnx.shape_inference.infer_shapes(fp32_model).graph
        fvalues = {v.name for v in list(inferred.value_info) + list(inferred.output)
                   if v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT}
        readers = {}
        for n in base.graph.node:
            for i in n.input:
                readers.setdefault(i, []).append(n)
        for q in base.graph.node:
            if q.op_type == "QuantizeLinear" and q.input[1] in start:
                consumers.setdefault(q.input[1], set()).update(
                    r.output[0] for dq in readers.get(q.output[0], []) for r in readers.get(dq.output[0], [])
                    if r.output[0] in fvalues)
        consumers = {g: sorted(cs) for g, cs in consumers.items()}
    extra = sorted({c for cs in consumers.values() for c in cs})
    o = ort.SessionOptions()
    o.intra_op_num_threads = 2
    vm, fm = variable_scales(base, groups), fp32_model
    for m in (vm, fm):
        have = {v.name for v in m.graph.output}
        m.graph.output.extend(onnx.helper.make_tensor_value_info(e, onnx.TensorProto.FLOAT, None)
                              for e in extra if e not in have)
    s = ort.InferenceSession(vm.SerializeToString(), o, providers=["CPUExecutionProvider"])
    fp = ort.InferenceSession(fm.SerializeToString(), o, providers=["CPUExecutionProvider"])
    inp = fp.get_inputs()[0].name
    xs = calib_rows(calib, 2 * a.rows)
    out0 = fp.get_outputs()[0].name
    refs = [fp.run([out0], {inp: x})[0] for x in xs]
    local_refs = {}  # group -> per row, its consumers' fp32 outputs (only the group being visited)
    halves = (range(a.rows), range(a.rows, min(2 * a.rows, len(xs))))
    column = 4 if a.model == "yolox-nano" else None  # objectness decides YOLOX's detections

    def sqnr(choice, half, group=None):
        feed = {}
        for g, k in choice.items():
            feed[g], feed[zp_name(g)] = init[names[k]][g], init[names[k]][zp_name(g)]
        if consumers.get(group):
            cs = consumers[group]
            if group not in local_refs:
                local_refs.clear()
                local_refs[group] = [fp.run(cs, {inp: x}) for x in xs]
            outs = [s.run(cs, dict(feed, **{inp: xs[i]})) for i in half]
            return float(np.mean([bm.sqnr_db(np.concatenate([local_refs[group][i][j].ravel() for i in half]),
                                     np.concatenate([o[j].ravel() for o in outs])) for j in range(len(cs))]))
        ref = np.concatenate([refs[i] for i in half])
        out = np.concatenate([s.run([out0], dict(feed, **{inp: xs[i]}))[0] for i in half])
        if column is not None:
            ref, out = ref[..., column], out[..., column]
        return bm.sqnr_db(ref, out)

    choice = dict(start)
    cur = [sqnr(choice, h) for h in halves]
    first = list(cur)
    for g in groups:
        if a.local:
            cur = [sqnr(choice, h, g) for h in halves]
        orig, best = choice[g], (list(cur), choice[g])
        for k in range(len(names)):
            if k == orig or all(np.array_equal(init[names[k]][n], init[names[orig]][n]) for n in (g, zp_name(g))):
                continue
            choice[g] = k
            v = [sqnr(choice, halves[0], g), None]
            if v[0] > best[0][0] + a.eps:
                v[1] = sqnr(choice, halves[1], g) if a.gate else best[0][1]
                if not a.gate or v[1] > best[0][1] + a.eps:
                    best = (v, k)
        cur, choice[g] = best
    if a.local:
        cur = [sqnr(choice, h) for h in halves]
    elif not a.gate:
        cur[1] = sqnr(choice, halves[1])
    changed = {g: names[k] for g, k in choice.items() if k != start[g]}
    print(f"{a.model}: {len(groups)} groups, {len(changed)} changed "
          f"({', '.join(f'{k} {list(changed.values()).count(k)}' for k in names if k in changed.values())}); "
          f"SQNR dB on rows 0-{a.rows - 1}: {first[0]:.2f} -> {cur[0]:.2f}, "
          f"on rows {a.rows}-{2 * a.rows - 1}: {first[1]:.2f} -> {cur[1]:.2f}")
    chosen = onnx.ModelProto()
    chosen.CopyFrom(base)
    values = {n: init[k][n] for g, k in changed.items() for n in (g, zp_name(g))}
    for i in chosen.graph.initializer:
        if i.name in values:
            i.CopyFrom(nh.from_array(values[i.name], i.name))
    paths = {"default": a.work / f"{a.model}_default.onnx", "chosen": a.work / f"{a.model}_chosen.onnx"}
    onnx.save(chosen, str(paths["chosen"]))
    evaluate(a.model, paths)


if __name__ == "__main__":
    main()
