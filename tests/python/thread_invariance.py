#!/usr/bin/env python3
"""`quantize run` gives byte-identical outputs for --threads 1, 2 and 3 on every shared model.

The fast float kernels (src/runtime/ops/fast_kernels.*) split work by the problem shape only and
give each output element one fixed accumulation order; this checks that promise end to end on
the real models and inputs of parity.py (plus efficientnet-lite0 and minilm-l6 from the
runtime benchmark). Exit 77 tells ctest the test was skipped (no ../shared or no venv).
"""
import argparse
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent.parent / "bench"))
import parity  # noqa: E402  (exits 77 itself when numpy/onnxruntime are missing)
import numpy as np  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quantize", required=True)
    ap.add_argument("--shared", required=True)
    args = ap.parse_args()
    shared = pathlib.Path(args.shared)
    if not (shared / "models").is_dir() or not (shared / "data").is_dir():
        print(f"SKIP: {shared} (shared models and data) is not present")
        return 77
    import runtime_speed  # bench/: the efficientnet-lite0 and minilm-l6 inputs
    data = shared / "data"
    models = dict(parity.MODELS)
    models["efficientnet-lite0"] = runtime_speed.efficientnet_lite0
    models["minilm-l6"] = runtime_speed.minilm_l6
    failed = []
    for name, make in models.items():
        model = shared / "models" / name / "model.onnx"
        if not model.exists():
            print(f"{name:28} model missing")
            failed.append(name)
            continue
        feeds = parity.silero(data, model) if make is None else make(data)
        with tempfile.TemporaryDirectory() as tmp:
            tmp = pathlib.Path(tmp)
            cmd = [args.quantize, "run", str(model)]
            for k, v in feeds.items():
                np.save(tmp / f"in_{k}.npy", v)
                cmd += ["--input", f"{k}={tmp / f'in_{k}.npy'}"]
            outs = {}
            for t in ("1", "2", "3"):
                proc = subprocess.run(cmd + ["-o", str(tmp / f"out{t}"), "--threads", t],
                                      capture_output=True, text=True)
                if proc.returncode != 0:
                    outs[t] = f"exit {proc.returncode}: {proc.stderr.strip()[:200]}"
                    continue
                outs[t] = {p.name: p.read_bytes() for p in sorted((tmp / f"out{t}").glob("*.npy"))}
            same = isinstance(outs["1"], dict) and outs["1"] and outs["1"] == outs["2"] == outs["3"]
            print(f"{name:28} {'identical' if same else 'DIFFERS'}"
                  + ("" if same else f"  {[o if isinstance(o, str) else sorted(o) for o in outs.values()]}"))
            if not same:
                failed.append(name)
    if failed:
        print(f"FAILED: outputs depend on --threads for {', '.join(failed)}")
        return 1
    print(f"all {len(models)} models byte-identical for --threads 1, 2, 3")
    return 0


if __name__ == "__main__":
    sys.exit(main())
