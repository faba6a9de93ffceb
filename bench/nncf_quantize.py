#!/usr/bin/env python3
"""OpenVINO NNCF's side of the benchmark: one `nncf.quantize` (ONNX backend), run as a subprocess.

Feeds the calibration tensors bench/compare_ort.py wrote as .npy files (the same arrays ptq and ORT
read), all of them (subset_size = their count), with NNCF's default preset or `preset=MIXED`
(symmetric weights, asymmetric activations: its most accurate on YOLOX-nano in issue 13). NNCF's
ONNX backend needs opset >= 13, so older models are first converted with onnx.version_converter.
NNCF puts Q/DQ on op inputs only, which ORT cannot fuse into QLinearConv: its models are measured
as they come, in ORT like the others.

Prints one JSON line on stdout: {"opset": N, "quantize_s": seconds}. Exits non-zero on failure.
"""
import argparse
import json
import os
import pathlib
import sys
import tempfile
import time

import numpy as np
import onnx
from onnx import version_converter


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=pathlib.Path)
    ap.add_argument("--calib", type=pathlib.Path, required=True, help="folder of .npy samples (one each)")
    ap.add_argument("--input-name", required=True)
    ap.add_argument("--preset", choices=["default", "mixed"], default="default")
    ap.add_argument("-o", "--output", type=pathlib.Path, required=True)
    a = ap.parse_args()
    a.model, a.calib, a.output = (p.resolve() for p in (a.model, a.calib, a.output))
    import nncf  # imported late: --help works without it

    # Scratch files its backends may write into the working directory stay out of the caller's.
    scratch = tempfile.TemporaryDirectory(prefix="nncf_")
    os.chdir(scratch.name)

    model = onnx.load(str(a.model))
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 13:
        model = version_converter.convert_version(model, 13)
        opset = 13
    files = sorted(a.calib.glob("*.npy"))
    if not files:
        print(f"error: {a.calib}: no .npy calibration samples", file=sys.stderr)
        return 2
    data = nncf.Dataset(files, lambda f: {a.input_name: np.load(f)})
    kw = {"preset": nncf.QuantizationPreset.MIXED} if a.preset == "mixed" else {}
    t0 = time.perf_counter()
    q = nncf.quantize(model, data, subset_size=len(files), **kw)
    took = time.perf_counter() - t0
    onnx.save(q, str(a.output))
    print(json.dumps({"opset": opset, "quantize_s": round(took, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
