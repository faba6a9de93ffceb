#!/usr/bin/env python3
"""Where an int8 QDQ model loses accuracy: a copy with the Q/DQ pairs of chosen tensors removed.

The chosen activations then stay float (their consumers read them unquantized; ORT runs those
nodes in float, so such a model is for accuracy only, not latency). Tensors are chosen by the op
type that produces them and, optionally, a slice of their order in the graph; evaluate the copy
with bench/yolox.py --ptq=@OUT or bench/ablation.py's metrics. Pairs whose Q also acts as a
folded Relu/Clip (ptq folds them) would lose that clamp: choose such tensors with care.

    .venv/bin/python bench/float_groups.py int8.onnx --producer Mul --slice 0:25 -o float_mul.onnx
    .venv/bin/python bench/yolox.py --ptq=@float_mul.onnx --photos 300
"""
import argparse
import sys

import onnx


def activation_pairs(g):
    """(tensor, its QuantizeLinear, the DequantizeLinear reading it) for every activation Q."""
    inits = {i.name for i in g.initializer}
    readers = {}
    for n in g.node:
        for i in n.input:
            readers.setdefault(i, []).append(n)
    out = []
    for q in g.node:
        if q.op_type != "QuantizeLinear" or q.input[0] in inits:
            continue
        dqs = [d for d in readers.get(q.output[0], []) if d.op_type == "DequantizeLinear"]
        if len(dqs) == len(readers.get(q.output[0], [])) and dqs:
            out.append((q.input[0], q, dqs))
    return out


def float_pairs(g, chosen) -> None:
    """Removes the chosen (tensor, Q, DQs) pairs from graph g: their readers read the float tensor."""
    drop, rename = set(), {}
    for tensor, q, dqs in chosen:
        drop.add(id(q))
        for d in dqs:
            drop.add(id(d))
            rename[d.output[0]] = tensor
    keep = [n for n in g.node if id(n) not in drop]
    for n in keep:
        for i, x in enumerate(n.input):
            if x in rename:
                n.input[i] = rename[x]
    for o in g.output:
        if o.name in rename:  # a graph output keeps its name: the float tensor takes it
            old = rename[o.name]
            for n in keep:
                for i, x in enumerate(n.input):
                    if x == old:
                        n.input[i] = o.name
                for i, x in enumerate(n.output):
                    if x == old:
                        n.output[i] = o.name
    del g.node[:]
    g.node.extend(keep)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--producer", required=True, help="op type producing the tensors (e.g. Mul, Conv, Sigmoid)")
    ap.add_argument("--slice", default=":", help="START:END of those tensors in graph order (default all)")
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()
    m = onnx.load(a.model)
    g = m.graph
    producer = {o: n.op_type for n in g.node for o in n.output}
    chosen = [p for p in activation_pairs(g) if producer.get(p[0]) == a.producer]
    start, _, end = a.slice.partition(":")
    chosen = chosen[int(start) if start else None:int(end) if end else None]
    if not chosen:
        print(f"error: {a.model}: no quantized tensor produced by {a.producer} in slice {a.slice}", file=sys.stderr)
        return 2
    float_pairs(g, chosen)
    onnx.checker.check_model(m)
    onnx.save(m, a.output)
    print(f"{len(chosen)} tensors float: {chosen[0][0]} .. {chosen[-1][0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
