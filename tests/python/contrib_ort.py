#!/usr/bin/env python3
"""com.microsoft ops (issue 14) vs ONNX Runtime: ptq's reference runtime and quantize on them.

1. One-node models of each contrib kernel (Attention with every mask form, MultiHeadAttention,
   EmbedLayerNormalization, SkipLayerNormalization, SkipSimplifiedLayerNormalization, Gelu,
   BiasGelu, FastGelu, QuickGelu, BiasAdd, FusedMatMul) with random weights: `quantize run` == ORT.
2. A small BERT block built from contrib ops (EmbedLayerNormalization -> Attention ->
   SkipLayerNormalization -> MatMul -> BiasGelu -> MatMul -> SkipLayerNormalization): quantize
   --calib exits 0, warns about each contrib node, and ORT runs the output.
3. MiniLM-L6 through ORT's transformer optimizer, as it is (SkipLayerNormalization, BiasGelu: the
   torch-SDPA mask defeats Attention fusion) and with the mask rewritten to the classic BERT form
   (then also EmbedLayerNormalization and Attention with 1-D mask_index): fp32 `quantize run` ==
   ORT on unpadded and padded sentences; quantize --calib exits 0, picks transformer placement,
   lists the com.microsoft nodes left fp32, and ORT's int8 sentence embeddings have mean cosine
   >= MIN_COSINE to fp32. The same for ORT's own extended graph optimization (FusedMatMul, BiasGelu).
Exit 77 (skip) when ONNX Runtime is missing; part 3 is skipped (with a message) without ../shared,
and its optimizer variants without the optimizer's dependency sympy (tools/requirements.txt pins it).
"""
import argparse
import pathlib
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
except ImportError as e:
    print(f"SKIP: ONNX Runtime / onnx / numpy not importable ({e}); run tools/setup.sh")
    sys.exit(77)
from minilm_util import embed, load_sentences, row_cosine  # noqa: E402

MIN_COSINE = 0.98  # measured on 200 eval sentences: optimized 0.9958, fully fused 0.9981, ORT extended 0.9958 (unoptimized 0.9958)
MS = "com.microsoft"
rng = np.random.default_rng(0)
ort.set_default_logger_severity(3)
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def f32(*shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def make_model(nodes, inputs, outputs, inits):
    g = helper.make_graph(nodes, "g", inputs, outputs, [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)])
    m.ir_version = 8
    return m


def vi(name, arr):
    return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(arr.dtype), list(arr.shape))


def ort_run(path, feeds):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)


def ptq_run(quantize, path, feeds, names, tmp):
    out = tmp / "run_out"
    out.mkdir(exist_ok=True)
    args = [quantize, "run", str(path), "-o", str(out)]
    for k, v in feeds.items():
        np.save(tmp / f"in_{k}.npy", v)
        args += ["-i", f"{k}=" + str(tmp / f"in_{k}.npy")]
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        return None, r.stderr.strip()
    return [np.load(out / f"{n}.npy") for n in names], ""


def one_node(quantize, tmp, label, node, feeds, inits, want=None, tol=1e-4):
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT if not n.endswith("_i32") else TensorProto.INT32, None)
               for n in node.output if n]
    m = make_model([node], [vi(k, v) for k, v in feeds.items()], outputs, inits)
    path = tmp / f"{label}.onnx"
    onnx.save(m, path)
    names = [n for n in node.output if n]
    want = want or ort_run(path, feeds)
    got, err = ptq_run(quantize, path, feeds, names, tmp)
    if got is None:
        check(False, f"{label}: quantize run failed: {err}")
        return
    worst = max(float(np.max(np.abs(g.astype(np.float64) - w))) if w.size else 0.0 for g, w in zip(got, want))
    scale = max(float(np.max(np.abs(w))) if w.size else 0.0 for w in want)
    check(all(g.shape == w.shape for g, w in zip(got, want)) and worst <= tol * max(1.0, scale),
          f"{label}: max |ptq - ORT| = {worst:.2e} (max |ORT| {scale:.2f})")


def part1(quantize, tmp):
    B, S, D, N = 2, 7, 24, 4
    x = f32(B, S, D)
    w, b = f32(D, 3 * D, scale=0.3), f32(3 * D, scale=0.1)
    lengths = np.array([7, 4], np.int32)
    mask2 = (np.arange(S)[None, :] < lengths[:, None]).astype(np.int32)
    masks = {"none": None, "lengths": lengths, "start_end": np.array([6, 5, 1, 0], np.int32),
             "mask2d": mask2, "mask3d": np.broadcast_to(mask2[:, None, :], (B, S, S)).astype(np.int32).copy()}
    for name, mk in masks.items():
        for uni in (0, 1) if name in ("none", "mask2d") else (0,):
            feeds = {"x": x} if mk is None else {"x": x, "mask": mk}
            node = helper.make_node("Attention", ["x", "w", "b"] + (["mask"] if mk is not None else []), ["y"],
                                    domain=MS, num_heads=N, unidirectional=uni)
            one_node(quantize, tmp, f"Attention_{name}_uni{uni}", node, feeds, {"w": w, "b": b})
    node = helper.make_node("Attention", ["x", "w", "b", "mask", "", "ab"], ["y"], domain=MS, num_heads=N,
                            qkv_hidden_sizes=[D, D, 2 * D], mask_filter_value=-1e4, scale=0.3)
    w2, b2 = f32(D, 4 * D, scale=0.3), f32(4 * D, scale=0.1)
    one_node(quantize, tmp, "Attention_qkv_sizes_bias", node, {"x": x, "mask": mask2, "ab": f32(1, N, S, S)},
             {"w": w2, "b": b2})
    L = 5
    node = helper.make_node("MultiHeadAttention", ["q", "k", "v", "bias", "kpm"], ["y"], domain=MS, num_heads=N)
    one_node(quantize, tmp, "MultiHeadAttention", node,
             {"q": f32(B, S, D), "k": f32(B, L, D), "v": f32(B, L, D),
              "kpm": np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], np.int32)}, {"bias": f32(3 * D)})
    V, P = 30, 16
    ids = rng.integers(0, V, (B, S)).astype(np.int32)
    seg = rng.integers(0, 2, (B, S)).astype(np.int32)
    emb = {"we": f32(V, D), "pe": f32(P, D), "se": f32(2, D), "g": f32(D), "bt": f32(D)}
    node = helper.make_node("EmbedLayerNormalization", ["ids", "seg", "we", "pe", "se", "g", "bt", "mask"],
                            ["y", "mask_index_i32", "sum"], domain=MS, epsilon=1e-12)
    one_node(quantize, tmp, "EmbedLayerNormalization", node, {"ids": ids, "seg": seg, "mask": mask2}, emb)
    h = {"g": f32(D), "bt": f32(D), "bias": f32(D)}
    for label, skip in (("full", f32(B, S, D)), ("broadcast", f32(S, D))):
        node = helper.make_node("SkipLayerNormalization", ["x", "skip", "g", "bt", "bias"], ["y", "", "", "sum"],
                                domain=MS, epsilon=1e-5)
        one_node(quantize, tmp, f"SkipLayerNormalization_{label}", node, {"x": x, "skip": skip}, h)
    node = helper.make_node("SkipSimplifiedLayerNormalization", ["x", "skip", "g", "bias"], ["y"], domain=MS,
                            epsilon=1e-6)
    one_node(quantize, tmp, "SkipSimplifiedLayerNormalization", node, {"x": x, "skip": f32(B, S, D)}, h)
    for op, ins in (("Gelu", ["x"]), ("BiasGelu", ["x", "bias"]), ("FastGelu", ["x", "bias"]), ("FastGelu", ["x"]),
                    ("QuickGelu", ["x"])):
        node = helper.make_node(op, ins, ["y"], domain=MS)
        one_node(quantize, tmp, f"{op}_{len(ins)}", node, {"x": x * 3}, {"bias": h["bias"]})
    for ta, tb, alpha, sa, sb in ((0, 1, 0.125, (B, N, S, 8), (B, N, S, 8)), (1, 0, 1.0, (B, 1, 8, S), (N, 8, 5)),
                                  (1, 1, 2.0, (3, 6), (4, 3)), (0, 0, 0.5, (B, S, D), (D, 5))):
        node = helper.make_node("FusedMatMul", ["a", "b"], ["y"], domain=MS, alpha=alpha, transA=ta, transB=tb)
        one_node(quantize, tmp, f"FusedMatMul_t{ta}{tb}", node, {"a": f32(*sa), "b": f32(*sb)}, {})
    # ORT has BiasAdd on CUDA only: numpy is the oracle.
    skip = f32(B, S, D)
    node = helper.make_node("BiasAdd", ["x", "bias", "skip"], ["y"], domain=MS)
    one_node(quantize, tmp, "BiasAdd", node, {"x": x, "skip": skip}, {"bias": h["bias"]}, [x + h["bias"] + skip])


def part2(quantize, tmp):
    """A BERT layer made of contrib ops: quantize exits 0, warns, ORT runs the result."""
    B, S, D, N, V, P = 1, 12, 32, 4, 50, 16
    inits = {"we": f32(V, D), "pe": f32(P, D), "se": f32(2, D), "g0": 1 + f32(D, scale=0.1), "b0": f32(D, scale=0.1),
             "wqkv": f32(D, 3 * D, scale=0.2), "bqkv": f32(3 * D, scale=0.1), "wo": f32(D, D, scale=0.2),
             "g1": 1 + f32(D, scale=0.1), "b1": f32(D, scale=0.1), "bo": f32(D, scale=0.1),
             "w1": f32(D, 4 * D, scale=0.2), "bi": f32(4 * D, scale=0.1), "w2": f32(4 * D, D, scale=0.1),
             "g2": 1 + f32(D, scale=0.1), "b2": f32(D, scale=0.1), "bo2": f32(D, scale=0.1)}
    nodes = [
        helper.make_node("EmbedLayerNormalization", ["ids", "seg", "we", "pe", "se", "g0", "b0", "mask"],
                         ["e", "mi"], domain=MS, name="emb"),
        helper.make_node("Attention", ["e", "wqkv", "bqkv", "mi"], ["a"], domain=MS, num_heads=N, name="attn"),
        helper.make_node("MatMul", ["a", "wo"], ["ao"], name="out_proj"),
        helper.make_node("SkipLayerNormalization", ["ao", "e", "g1", "b1", "bo"], ["h1"], domain=MS, name="sln1"),
        helper.make_node("MatMul", ["h1", "w1"], ["f1"], name="ffn1"),
        helper.make_node("BiasGelu", ["f1", "bi"], ["f2"], domain=MS, name="gelu"),
        helper.make_node("MatMul", ["f2", "w2"], ["f3"], name="ffn2"),
        helper.make_node("SkipLayerNormalization", ["f3", "h1", "g2", "b2", "bo2"], ["out"], domain=MS, name="sln2"),
    ]
    ins = [helper.make_tensor_value_info(n, TensorProto.INT32, ["batch", "seq"]) for n in ("ids", "seg", "mask")]
    m = make_model(nodes, ins, [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)], inits)
    path, calib = tmp / "bert_block.onnx", tmp / "calib_block"
    onnx.save(m, path)
    calib.mkdir(exist_ok=True)
    for i in range(8):
        n = int(rng.integers(4, S + 1))
        mask = (np.arange(S) < n).astype(np.int32)[None]
        np.savez(calib / f"{i:03d}.npz", ids=rng.integers(0, V, (B, S)).astype(np.int32),
                 seg=np.zeros((B, S), np.int32), mask=mask)
    feeds = dict(np.load(calib / "000.npz"))
    got, err = ptq_run(quantize, path, feeds, ["out"], tmp)
    want = ort_run(path, feeds)[0]
    check(got is not None and np.max(np.abs(got[0] - want)) < 1e-4, f"BERT block fp32: ptq == ORT {err}")
    out = tmp / "bert_block.int8.onnx"
    r = subprocess.run([quantize, str(path), "--calib", str(calib), "-o", str(out)], capture_output=True, text=True)
    check(r.returncode == 0, f"BERT block: quantize exit {r.returncode}" + (r.stderr[-400:] if r.returncode else ""))
    if r.returncode != 0:
        return
    for name in ("emb", "attn", "sln1", "gelu", "sln2"):
        check(f"'{name}'" in r.stderr and "com.microsoft" in r.stderr, f"BERT block: warning names node {name}")
    q = ort_run(out, feeds)[0]
    # random weights, 8 calibration samples: measured 0.997 (0.988 with --preset cnn)
    cos = float(np.sum(q * want) / (np.linalg.norm(q) * np.linalg.norm(want)))
    check(cos >= 0.99, f"BERT block: ORT runs the int8 model, cosine to fp32 {cos:.4f}")


def classic_mask(model):
    """MiniLM's torch-SDPA mask (Where with finfo.min) and dynamic Q/K/V reshapes rewritten to the
    classic BERT form ((1 - mask) * -10000, constant [0, 0, 12, 32], Div for the scale) that the
    optimizer fuses into EmbedLayerNormalization + Attention."""
    g = model.graph
    g.node.extend([helper.make_node("Unsqueeze", ["attention_mask", "cm_ax1"], ["cm_u1"]),
                   helper.make_node("Unsqueeze", ["cm_u1", "cm_ax2"], ["cm_u"]),
                   helper.make_node("Cast", ["cm_u"], ["cm_f"], to=TensorProto.FLOAT),
                   helper.make_node("Sub", ["cm_one", "cm_f"], ["cm_s"]),
                   helper.make_node("Mul", ["cm_s", "cm_neg"], ["cm_ext"])])
    inits = {"cm_ax1": np.array([1], np.int64), "cm_ax2": np.array([2], np.int64), "cm_one": np.float32(1),
             "cm_neg": np.float32(-10000), "cm_shape": np.array([0, 0, 12, 32], np.int64)}
    consts = {n.output[0]: n for n in g.node if n.op_type == "Constant"}
    for n in g.node:
        n.input[:] = ["cm_ext" if x == "/m/Where_1_output_0" else x for x in n.input]
        if n.op_type == "Reshape" and any(n.name.endswith("attention/self/" + r) for r in ("Reshape", "Reshape_1", "Reshape_2")):
            n.input[1] = "cm_shape"
        if n.op_type == "Mul" and n.name.endswith("attention/self/Mul") and n.input[1] in consts:
            n.op_type, inv = "Div", n.name + "_inv"
            inits[inv] = (1 / numpy_helper.to_array(consts[n.input[1]].attribute[0].t)).astype(np.float32)
            n.input[1] = inv
    g.initializer.extend(numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items())
    while True:  # drop dead nodes, then sort
        used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
        live = [n for n in g.node if any(o in used for o in n.output)]
        if len(live) == len(g.node):
            break
        del g.node[:]
        g.node.extend(live)
    done, order, pending = {i.name for i in g.input} | {i.name for i in g.initializer}, [], list(g.node)
    while pending:
        ready = [n for n in pending if all(not i or i in done for i in n.input)]
        for n in ready:
            done.update(n.output)
        order += ready
        pending = [n for n in pending if n not in ready]
    del g.node[:]
    g.node.extend(order)
    return model


def check_optimized(quantize, path, label, data, tmp, expect):
    ops = {n.op_type for n in onnx.load(path).graph.node if n.domain == MS}
    print(f"{label}: optimizer emitted", sorted(ops))
    check(expect <= ops, f"{label}: has {sorted(expect)}")
    sentences = load_sentences(data / "eval", 8) + load_sentences(data / "eval_pad64", 2)
    fp32 = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for feeds in sentences[:3] + sentences[-2:]:
        want = fp32.run(["last_hidden_state", "sentence_embedding"], feeds)
        got, err = ptq_run(quantize, path, feeds, ["last_hidden_state", "sentence_embedding"], tmp)
        if got is None:
            check(False, f"{label}: quantize run failed: {err}")
            return
        worst = max(worst, max(float(np.max(np.abs(g - w)) / np.max(np.abs(w))) for g, w in zip(got, want)))
    check(worst < 1e-4, f"{label} fp32 (unpadded and padded): max |ptq - ORT| / max |ORT| = {worst:.2e}")
    out = tmp / f"{label}.int8.onnx"
    r = subprocess.run([quantize, str(path), "--calib", str(data / "calib"), "-o", str(out)],
                       capture_output=True, text=True)
    check(r.returncode == 0, f"{label}: quantize exit {r.returncode}" + (r.stderr[-400:] if r.returncode else ""))
    if r.returncode != 0:
        return
    warned = r.stderr.count("custom domain 'com.microsoft'")
    n_ms = sum(1 for n in onnx.load(path).graph.node if n.domain == MS)
    check(warned == n_ms, f"{label}: {warned} of {n_ms} com.microsoft nodes listed as staying fp32")
    check("placement: transformer" in r.stderr, f"{label}: transformer placement detected")
    int8 = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    cos = row_cosine(embed(fp32, sentences), embed(int8, sentences))
    check(cos.mean() >= MIN_COSINE, f"{label} int8 in ORT: mean cosine {cos.mean():.4f}, min {cos.min():.4f}")


def part3(quantize, shared, tmp):
    model = shared / "models/minilm-l6/model.onnx"
    data = shared / "data/sentences"
    if not model.exists() or not (data / "calib").is_dir():
        print(f"SKIP part 3: {model} or {data} is absent")
        return
    # ORT's own extended-level graph optimization: FusedMatMul (Q @ K^T * scale) and BiasGelu.
    o = ort.SessionOptions()
    o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    o.optimized_model_filepath = str(tmp / "minilm_ort_ext.onnx")
    ort.InferenceSession(str(model), o, providers=["CPUExecutionProvider"])
    check_optimized(quantize, tmp / "minilm_ort_ext.onnx", "MiniLM ORT extended", data, tmp,
                    {"FusedMatMul", "BiasGelu"})
    try:
        from onnxruntime.transformers.optimizer import optimize_model
        opt = optimize_model(str(model), model_type="bert", num_heads=12, hidden_size=384, opt_level=0)
    except ImportError as e:
        print(f"SKIP part 3: ORT's transformer optimizer is not usable ({e})")
        return
    opt.save_model_to_file(str(tmp / "minilm_opt.onnx"))
    check_optimized(quantize, tmp / "minilm_opt.onnx", "MiniLM optimized", data, tmp,
                    {"SkipLayerNormalization", "BiasGelu"})
    onnx.save(classic_mask(onnx.load(model)), tmp / "minilm_classic.onnx")
    opt = optimize_model(str(tmp / "minilm_classic.onnx"), model_type="bert", num_heads=12, hidden_size=384,
                         opt_level=0)
    opt.save_model_to_file(str(tmp / "minilm_fused.onnx"))
    check_optimized(quantize, tmp / "minilm_fused.onnx", "MiniLM fully fused", data, tmp,
                    {"EmbedLayerNormalization", "Attention", "SkipLayerNormalization", "BiasGelu"})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quantize", required=True)
    ap.add_argument("--shared", required=True)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as t:
        tmp = pathlib.Path(t)
        part1(args.quantize, tmp)
        part2(args.quantize, tmp)
        part3(args.quantize, pathlib.Path(args.shared), tmp)
    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
