#!/usr/bin/env python3
"""ONNX Runtime's side of the ptq-vs-ORT benchmark: one static quantization, run as a subprocess.

Runs `quant_pre_process` (as ORT's quantization docs recommend) and then `quantize_static` with
QDQ, per-channel int8 weights and uint8 activations, feeding the calibration tensors that
bench/compare_ort.py wrote as .npy files (the same arrays ptq reads). compare_ort.py runs this
script in its own process so that wall time and peak RSS measure ORT's quantization alone.

Workarounds for ORT failures, which compare_ort.py applies only after a plain attempt failed: with
--no-bias-weight-adjust ORT skips its int32-bias weight-scale adjustment (which crashes on a bias
of shape [C,1,1], as in mnist-8); with --calib-count N it calibrates on fewer samples when the
histogram calibrators run out of memory; with --opset N the model is first converted to opset N with onnx.version_converter (compare_ort.py
retries with --opset 13 when ORT's own output for an older-opset model does not load: per-channel
DequantizeLinear needs opset 13, but ORT only upgrades such models to opset 11).

Prints one JSON line on stdout: {"pre_process": "ok" | "failed: ...", "pre_process_s", "quantize_s"}.
Exits non-zero if quantize_static fails (the traceback goes to stderr).
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
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                      quant_pre_process, quantize_static)

METHODS = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
           "entropy": CalibrationMethod.Entropy}


class NpyFolderReader(CalibrationDataReader):
    """Feeds the sorted .npy files of a folder, one sample each, to the single model input."""

    def __init__(self, folder: pathlib.Path, input_name: str, count: int | None = None):
        self.files = sorted(folder.glob("*.npy"))[:count]
        self.input_name = input_name
        self.pos = 0

    def get_next(self):
        if self.pos >= len(self.files):
            return None
        arr = np.load(self.files[self.pos])
        self.pos += 1
        return {self.input_name: arr}

    def rewind(self):
        self.pos = 0


def pre_process(model: pathlib.Path, out: pathlib.Path) -> tuple[pathlib.Path, str]:
    """ORT's recommended pre-processing; on failure, quantize the original model and say why."""
    try:
        quant_pre_process(str(model), str(out))
        return out, "ok"
    except Exception as exc:  # recorded in the results, not hidden
        msg = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        print(f"quant_pre_process failed, quantizing the original model: {msg}", file=sys.stderr)
        return model, f"failed: {msg}"


def upgrade_opset(model: pathlib.Path, opset: int, out: pathlib.Path) -> pathlib.Path:
    proto = onnx.load(str(model))
    current = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    if current >= opset:
        return model
    onnx.save(version_converter.convert_version(proto, opset), str(out))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=pathlib.Path)
    ap.add_argument("--calib", type=pathlib.Path, required=True, help="folder of .npy samples")
    ap.add_argument("--input-name", required=True)
    ap.add_argument("--method", choices=sorted(METHODS), required=True)
    ap.add_argument("-o", "--output", type=pathlib.Path, required=True)
    ap.add_argument("--opset", type=int, help="convert to this opset first (onnx.version_converter)")
    ap.add_argument("--no-bias-weight-adjust", action="store_true",
                    help="extra_options QDQDisableWeightAdjustForInt32Bias=True (works around an ORT crash)")
    ap.add_argument("--calib-count", type=int, help="use only the first N calibration files (ORT's histogram "
                    "calibrators keep every activation of every sample in memory)")
    args = ap.parse_args()
    args.model, args.calib, args.output = (p.resolve() for p in (args.model, args.calib, args.output))

    with tempfile.TemporaryDirectory(prefix="ort_pre_") as tmp:
        # ORT writes scratch files (sym_shape_infer_temp.onnx, <uuid>.data) into the working directory.
        os.chdir(tmp)
        t0 = time.perf_counter()
        model = upgrade_opset(args.model, args.opset, pathlib.Path(tmp) / "up.onnx") if args.opset else args.model
        src, status = pre_process(model, pathlib.Path(tmp) / "pre.onnx")
        t1 = time.perf_counter()
        quantize_static(str(src), str(args.output), NpyFolderReader(args.calib, args.input_name, args.calib_count),
                        quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=METHODS[args.method],
                        extra_options={"QDQDisableWeightAdjustForInt32Bias": True} if args.no_bias_weight_adjust else None)
        t2 = time.perf_counter()
    print(json.dumps({"pre_process": status, "pre_process_s": round(t1 - t0, 3),
                      "quantize_s": round(t2 - t1, 3)}))


if __name__ == "__main__":
    main()
