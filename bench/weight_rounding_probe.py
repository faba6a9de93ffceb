#!/usr/bin/env python3
"""Probe: do data-aware weights help ptq's static int8 models? (docs/quantization.md, "Weights fitted to data")

Quantizes MODEL with ptq (--no-bias-correction --no-depthwise-scales, so each int8 Conv's weights are
the fp32 model's at ptq's per-channel scales), then writes, into WORK:
  wonly_rtn / wonly_gptq  the fp32 model with fake-quantized Conv weights (round to nearest / GPTQ at
                          ptq's scales, Hessians of the fp32 inputs on ROWS calibration rows) and the
                          biases corrected for the weights' mean error as ptq's bias correction does
  int8_rtn / int8_gptq    ptq's int8 model with those codes and biases (int8_rtn is ptq's
                          --no-empirical-bias-correction model but for the rows and sampled
                          positions the input means come from)
  aonly                   ptq's int8 model with the fp32 weights (activations still quantized)
  lsq_bias / lsq_ridge    ptq's int8 model, each Conv in graph order refitted on its quantized inputs
                          (least squares to the fp32 output): the bias only (empirical bias
                          correction without a gate), or weights and bias with ridge LAMBDA towards the
                          fp32 weights, rounded at ptq's scales
and evaluates them in ORT: yolox-nano with bench/yolox.py (detections reproduced), the classifiers on
the eval split (top-1, agreement, SQNR).

    .venv/bin/python bench/weight_rounding_probe.py yolox-nano --rows 8
    .venv/bin/python bench/weight_rounding_probe.py mobilenetv2 --rows 4
"""
import argparse
import pathlib
import subprocess
import sys

import numpy as np
import onnx
from onnx import numpy_helper as nh

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import bench_data  # noqa: E402
import compare_ort as co  # noqa: E402
from bias_correction_probe import session  # noqa: E402  (no graph optimization: every Conv input addressable)


def attr(n, k, d):
    for a in n.attribute:
        if a.name == k:
            return list(a.ints) if a.ints else a.i
    return d


def patches(a, n, wshape):
    """[group, Cg*kh*kw, positions] im2col columns of a [C, H, W] input."""
    _, cg, kh, kw = wshape
    g, st, pd = attr(n, "group", 1), attr(n, "strides", [1, 1]), attr(n, "pads", [0, 0, 0, 0])
    assert attr(n, "dilations", [1, 1]) == [1, 1]
    a = np.pad(a.astype(np.float64), ((0, 0), (pd[0], pd[2]), (pd[1], pd[3])))
    v = np.lib.stride_tricks.sliding_window_view(a, (kh, kw), axis=(1, 2))[:, ::st[0], ::st[1]]
    v = v.reshape(v.shape[0], -1, kh * kw)
    return v.reshape(g, cg, v.shape[1], kh * kw).transpose(0, 1, 3, 2).reshape(g, cg * kh * kw, v.shape[1])


class Probe:
    """ptq's int8 model, its fp32 model, the Convs they share, and the fp32 Conv inputs on the rows."""

    def __init__(self, fp32_path, int8_path, rows, max_positions=8192):
        self.f, self.q = onnx.load(fp32_path), onnx.load(int8_path)
        self.rows, self.maxpos = rows, max_positions
        self.fp32_stats = {}  # fp32 Conv name -> stats() on its fp32 input, shared by the RTN and GPTQ builds
        self.fw = {i.name: nh.to_array(i) for i in self.f.graph.initializer}
        prod = {o: n for n in self.q.graph.node for o in n.output}
        qinit = {i.name for i in self.q.graph.initializer}
        fconv = {n.name: n for n in self.f.graph.node if n.op_type == "Conv"}
        self.convs = []  # (int8 Conv, fp32 Conv, weight DQ, bias DQ)
        for n in self.q.graph.node:
            w, b = (prod.get(n.input[i]) if len(n.input) > i else None for i in (1, 2))
            if (n.op_type == "Conv" and n.name in fconv and w and b and w.op_type == b.op_type == "DequantizeLinear"
                    and w.input[0] in qinit and b.input[0] in qinit):
                self.convs.append((n, fconv[n.name], w, b))
        names = sorted({c[1].input[0] for c in self.convs})  # the fp32 Convs' inputs, on every row
        fs = session(self.f, names)
        self.inp = fs.get_inputs()[0].name
        self.acts = [dict(zip(names, fs.run(names, {self.inp: x}))) for x in rows]

    def weights(self, fc):
        w = self.fw[fc.input[1]].astype(np.float64)
        b = self.fw[fc.input[2]].astype(np.float64) if len(fc.input) > 2 else np.zeros(w.shape[0])
        return w, b

    def scales(self, model, wdq, m):
        s = nh.to_array(next(i for i in model.graph.initializer if i.name == wdq.input[1])).astype(np.float64)
        return np.broadcast_to(s.reshape(-1), (m,)) if s.size > 1 else np.full(m, s.reshape(-1)[0])

    def stats(self, fc, wshape, int8_inputs=None):
        """Per group: sums of [x;1][x;1]^T over (at most max_positions sampled) positions of the Conv's
        fp32 input, or of the given int8 model's inputs, and of [x;1] y^T, y the fp32 Conv output."""
        if int8_inputs is None and fc.name in self.fp32_stats:
            return self.fp32_stats[fc.name]
        rng = np.random.default_rng(0)
        w, b = self.weights(fc)
        g = attr(fc, "group", 1)
        k, mg = w[0].size, w.shape[0] // g
        A, B = np.zeros((g, k + 1, k + 1)), np.zeros((g, k + 1, mg))
        for r, acts in enumerate(self.acts):
            pf = patches(acts[fc.input[0]][0], fc, wshape)
            px = pf if int8_inputs is None else patches(int8_inputs[r][0], fc, wshape)
            n = pf.shape[2]
            idx = rng.choice(n, self.maxpos, replace=False) if n > self.maxpos else np.arange(n)
            pf, px = pf[:, :, idx], px[:, :, idx]
            x1 = np.concatenate([px, np.ones((g, 1, len(idx)))], 1)
            y = np.einsum("gmk,gkp->gpm", w.reshape(g, mg, k), pf) + b.reshape(g, 1, mg)
            A += np.einsum("gkp,glp->gkl", x1, x1)
            B += np.einsum("gkp,gpm->gkm", x1, y)
        if int8_inputs is None:
            self.fp32_stats[fc.name] = (A, B)
        return A, B


def gptq(w, h, s, damp=0.01):
    """GPTQ (Frantar et al.) of w [m, K] on the Hessian h [K, K] at fixed per-row scales s, int8 [-127, 127]."""
    w, h = w.copy(), h.copy()
    dead = np.diag(h) == 0
    h[dead, dead] = 1
    w[:, dead] = 0
    h += damp * np.mean(np.diag(h)) * np.eye(len(h))
    hinv = np.linalg.cholesky(np.linalg.inv(h)).T
    q = np.zeros_like(w)
    for i in range(w.shape[1]):
        q[:, i] = np.clip(np.round(w[:, i] / s), -127, 127) * s
        err = (w[:, i] - q[:, i]) / hinv[i, i]
        w[:, i + 1:] -= np.outer(err, hinv[i, i + 1:])
    return q


def set_init(model, name, arr):
    next(i for i in model.graph.initializer if i.name == name).CopyFrom(nh.from_array(arr, name))


def build(p, kind, lam=1.0):
    f, q = onnx.ModelProto(), onnx.ModelProto()
    f.CopyFrom(p.f)
    q.CopyFrom(p.q)
    for qc, fc, wdq, bdq in p.convs:
        w, b = p.weights(fc)
        m, g = w.shape[0], attr(fc, "group", 1)
        mg, k = m // g, w[0].size
        s = p.scales(q, wdq, m)
        if kind == "aonly":
            q.graph.initializer.append(nh.from_array(w.astype(np.float32), qc.name + "_fp32_weight"))
            next(n for n in q.graph.node if n.name == qc.name).input[1] = qc.name + "_fp32_weight"  # q is a copy
            continue
        if kind in ("rtn", "gptq"):
            A, _ = p.stats(fc, w.shape)
            ex = A[:, :k, k] / A[:, k, k][:, None]  # E[x] per group and column
            wq = np.zeros((m, k))
            for gi in range(g):
                r = slice(gi * mg, (gi + 1) * mg)
                wf = w.reshape(m, k)[r]
                wq[r] = gptq(wf, A[gi, :k, :k], s[r]) if kind == "gptq" else \
                    np.clip(np.round(wf / s[r, None]), -127, 127) * s[r, None]
            bn = b + np.einsum("gmk,gk->gm", (w.reshape(m, k) - wq).reshape(g, mg, k), ex).reshape(-1)
            set_init(f, fc.input[1], wq.reshape(w.shape).astype(np.float32))
            if len(fc.input) > 2:
                set_init(f, fc.input[2], bn.astype(np.float32))
        else:  # lsq_bias / lsq_ridge: sequential, on the inputs of the int8 model as refitted so far
            s8 = session(q, [qc.input[0]])
            xq = [s8.run([qc.input[0]], {p.inp: x})[0] for x in p.rows]
            A, B = p.stats(fc, w.shape, xq)
            wq = np.zeros((m, k))
            bn = np.zeros(m)
            for gi in range(g):
                r = slice(gi * mg, (gi + 1) * mg)
                wf = w.reshape(m, k)[r]
                if kind == "lsq_bias":
                    wn = wf
                    bias = B[gi, k] / A[gi, k, k] - wf @ (A[gi, :k, k] / A[gi, k, k])
                else:
                    a = A[gi].copy()
                    d = lam * np.mean(np.diag(a)[:k])
                    a[:k, :k] += d * np.eye(k)
                    sol = np.linalg.lstsq(a, B[gi] + np.concatenate([d * wf.T, np.zeros((1, mg))], 0), rcond=None)[0]
                    wn, bias = sol[:k].T, sol[k]
                wq[r] = np.clip(np.round(wn / s[r, None]), -127, 127) * s[r, None]
                # the bias also absorbs the rounding's mean on these inputs
                bn[r] = bias + (wn - wq[r]) @ (A[gi, :k, k] / A[gi, k, k])
        set_codes(q, wdq, bdq, wq.reshape(w.shape), bn, s)
    return f, q


def set_codes(q, wdq, bdq, wq, bn, s):
    codes = np.clip(np.round(wq / s.reshape([-1] + [1] * (wq.ndim - 1))), -127, 127).astype(np.int8)
    set_init(q, wdq.input[0], codes)
    bs = nh.to_array(next(i for i in q.graph.initializer if i.name == bdq.input[1])).astype(np.float64)
    set_init(q, bdq.input[0], np.rint(bn / bs).astype(np.int32))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="a shared model name: yolox-nano, mobilenetv2, ...")
    ap.add_argument("--rows", type=int, default=8, help="calibration rows for Hessians and refits")
    ap.add_argument("--lam", type=float, default=1.0, help="lsq_ridge: ridge towards the fp32 weights")
    ap.add_argument("--quantize", default=str(ROOT / "build/tools/quantize"))
    ap.add_argument("--work", type=pathlib.Path, default=ROOT / "bench/.work/weight_rounding")
    a = ap.parse_args()
    model, calib = model_and_calib(a.model)
    a.work.mkdir(parents=True, exist_ok=True)
    base = a.work / f"{a.model}_base.onnx"
    subprocess.run([a.quantize, str(model), "--calib", str(calib), "-o", str(base), "-q",
                    "--no-bias-correction", "--no-depthwise-scales"], check=True, capture_output=True)
    rows = calib_rows(calib, a.rows)
    p = Probe(str(model), str(base), rows)
    out = {}
    for kind in ("rtn", "gptq"):
        f, q = build(p, kind)
        out[f"wonly_{kind}"], out[f"int8_{kind}"] = f, q
    out["aonly"] = build(p, "aonly")[1]
    out["lsq_bias"] = build(p, "lsq_bias")[1]
    out["lsq_ridge"] = build(p, "lsq_ridge", a.lam)[1]
    paths = {}
    for name, m in out.items():
        paths[name] = a.work / f"{a.model}_{name}.onnx"
        onnx.save(m, str(paths[name]))
    print(f"{a.model}: {len(p.convs)} Convs, {a.rows} rows; models in {a.work}")
    evaluate(a.model, paths)


def model_and_calib(name):
    """A shared model's fp32 file and the folder of calibration arrays the benches wrote for it."""
    model = ROOT.parent / "shared/models" / name / "model.onnx"
    if not model.exists():
        sys.exit(f"skip: {model} not found (needs ../shared)")
    calib = ROOT / "bench/.work" / ("yolox" if name == "yolox-nano" else name) / "calib"
    if not calib.is_dir():
        sys.exit(f"{calib}: run bench/yolox.py or bench/compare_ort.py once to write the calibration arrays")
    return model, calib


def calib_rows(calib, n):
    """The first n calibration arrays, each with a batch dimension."""
    return [(lambda x: x[None] if x.ndim == 3 else x)(np.load(p)).astype(np.float32)
            for p in sorted(calib.glob("*.npy"))[:n]]


def evaluate(model, paths):
    """Each int8 model of {name: path} in ORT: YOLOX-nano with bench/yolox.py (detect-samples and
    300 photos), the classifiers and recognizers on their eval split (metric, agreement, SQNR)."""
    if model == "yolox-nano":
        subprocess.run([sys.executable, str(ROOT / "bench/yolox.py"), "--photos", "300"]
                       + [f"--ptq=@{paths[n]}" for n in paths], check=True)
        return
    shared = ROOT.parent / "shared"
    task = bench_data.make_task(model, shared / "models", shared / "data", False)
    sessions = {"fp32": co.session(str(task.model), 2)}
    sessions.update({n: co.session(str(pth), 2) for n, pth in paths.items()})
    accs = co.evaluate(task, sessions)
    print("| model | metric | agree % | SQNR dB |\n|---|---|---|---|")
    for n in paths:
        m = co.task_metrics(task, accs[n], task.labels, accs["fp32"])
        print(f"| {n} | {m['value']:.2f} | {co.agreement(task, accs[n], accs['fp32']):.1f} | {accs[n].sqnr():.2f} |")


if __name__ == "__main__":
    main()
