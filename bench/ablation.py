#!/usr/bin/env python3
"""ptq flag sets side by side on shared models, int8 evaluated in ONNX Runtime: for ablations.

Each --ptq flag set quantizes every --models model on its calibration split (the .npy files
compare_ort.py writes under bench/.work/MODEL/calib) and is evaluated in ORT on the eval split:
the task metric (top-1, exact match / CER, detections reproduced), its drop from fp32, output
SQNR, and int8 vs fp32 latency (median, one sample). Same splits and preprocessing as
compare_ort.py, so rows compare with docs/results.md.

    .venv/bin/python bench/ablation.py --models mobilenetv2,squeezenet1.1 \\
        --ptq="--effort fast --no-bias-correction" --ptq="--effort fast" --ptq=""

A result on one calibration set is one draw: PP-OCRv4-rec's CER moved from 0.17 to 0.58 % across
eight sets with the same flags (docs/quantization.md). --rotations 0,10,25,35,50,60,75,85 runs
every flag set on each (0: all 100 samples, the set of docs/results.md; R: 80 samples from
sample R on) and ends with each flag set's mean and worst over them.
"""
import argparse
import pathlib
import shlex
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import bench_data  # noqa: E402
import compare_ort as co  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent


def rotated_calib(calib: pathlib.Path, start: int, count: int = 80) -> pathlib.Path:
    """A folder of links to `count` of calib's samples from sample `start` on (wrapping), in order."""
    files = sorted(calib.glob("*.npy"))
    out = calib.parent / f"calib_rot{start}"
    out.mkdir(exist_ok=True)
    for f in out.glob("*.npy"):
        f.unlink()
    for i in range(min(count, len(files))):
        (out / f"{i:04d}.npy").symlink_to(files[(start + i) % len(files)].resolve())
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="mobilenetv2,squeezenet1.1")
    ap.add_argument("--ptq", action="append", default=None,
                    help="ptq flag set (repeatable; \"\" = defaults; @FILE = an int8 model made elsewhere)")
    ap.add_argument("--quantize", type=pathlib.Path, default=ROOT / "build/tools/quantize")
    ap.add_argument("--shared", type=pathlib.Path, default=ROOT.parent / "shared")
    ap.add_argument("--work", type=pathlib.Path, default=ROOT / "bench/.work")
    ap.add_argument("--quick", action="store_true", help="the smaller eval split of compare_ort.py --quick")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--latency-runs", type=int, default=30)
    ap.add_argument("--rotate", type=int, default=None, metavar="R",
                    help="calibrate on 80 of the 100 calibration samples, starting at sample R (wrapping), "
                         "so the first rows the gates measure on differ; eval split unchanged")
    ap.add_argument("--rotations", default=None, metavar="R,R,...",
                    help="run on several calibration sets (0: all samples; R: as --rotate R) and summarise "
                         "each flag set's mean and worst")
    a = ap.parse_args()
    if a.rotations is not None and a.rotate is not None:
        ap.error("--rotate and --rotations exclude each other")
    if not (a.shared / "models").is_dir():
        print(f"skip: {a.shared}/models not found (needs ../shared)")
        return 0
    print("| model | ptq flags | metric | int8 | drop (pt) | agree % | SQNR dB | quant s | int8 ms | fp32 ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    rotations = [int(r) for r in a.rotations.split(",")] if a.rotations is not None else [a.rotate]
    for name in a.models.split(","):
        task = bench_data.make_task(name, a.shared / "models", a.shared / "data", a.quick)
        full = a.work / name / "calib"
        co.write_calib(task, full)
        per_flags: dict = {}
        for rot in rotations:
            # (--rotations: 0 is the whole set; --rotate 0: 80 samples from sample 0)
            calib = full if rot is None or (a.rotations is not None and rot == 0) else rotated_calib(full, rot)
            for flags, m in run_set(a, task, name, calib, "" if a.rotations is None else f" (set {rot})").items():
                per_flags.setdefault(flags, []).append(m)
        if len(rotations) > 1:
            summarise(name, per_flags, len(rotations))
    return 0


def summarise(name: str, per_flags: dict, sets: int) -> None:
    """Each flag set's mean and worst over the calibration sets."""
    print(f"\n{name}, {sets} calibration sets: mean (worst)\n")
    print("| ptq flags | task % | CER % | agree % | SQNR dB |")
    print("|---|---|---|---|---|")
    for flags, ms in per_flags.items():
        val = [m["value"] for m in ms]
        cer = [m["cer"] for m in ms if "cer" in m]
        agree = [m["agree"] for m in ms]
        sq = [m["sqnr"] for m in ms if m["sqnr"] is not None]
        cer_s = f"{np.mean(cer):.3f} ({max(cer):.2f})" if cer else ""
        sq_s = f"{np.mean(sq):.2f} ({min(sq):.2f})" if sq else ""
        label = flags or "(default)"
        if len(ms) < sets:  # failed on some sets: the figures cover the others
            label += f" ({len(ms)} of {sets} sets)"
        print(f"| {label} | {np.mean(val):.2f} ({min(val):.2f}) | {cer_s} "
              f"| {np.mean(agree):.2f} ({min(agree):.1f}) | {sq_s} |", flush=True)


def run_set(a, task, name: str, calib: pathlib.Path, label: str) -> dict:
    """Quantizes with each flag set on `calib`, evaluates in ORT, prints the rows; metrics by flags."""
    results = {}
    fp = co.session(str(task.model), a.threads)
    sessions, walls = {"fp32": fp}, {}
    for i, flags in enumerate(a.ptq or [""]):
        out = a.work / name / f"ablation_{i}.onnx"
        cmd = [str(a.quantize), str(task.model), "--calib", str(calib), "-o", str(out), "-q",
               "--threads", str(a.threads)] + shlex.split(flags)
        if flags.startswith("@"):  # an int8 model made elsewhere (e.g. by a prototype rewrite)
            out, cmd = pathlib.Path(flags[1:]), ["true"]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True)
        walls[flags] = time.perf_counter() - t0
        if r.returncode not in (0, 4):
            print(f"| {name}{label} | {flags} | failed ({r.returncode}): {r.stderr.strip().splitlines()[-1]} |")
            continue
        sessions[flags] = co.session(str(out), a.threads)
    accs = co.evaluate(task, sessions)
    base = co.task_metrics(task, accs["fp32"], task.labels)
    x = task.evals[0]()
    fp_ms = co.latency_ms(fp, x, a.latency_runs)
    base_cer = f", CER {base['cer']:.2f} %" if "cer" in base else ""
    print(f"| {name}{label} | fp32 | {base['metric']} | {base['value']:.2f} %{base_cer} | | | | | | {fp_ms:.2f} |", flush=True)
    for flags, sess in sessions.items():
        if flags == "fp32":
            continue
        m = co.task_metrics(task, accs[flags], task.labels, accs["fp32"])
        drop = base["value"] - m["value"] if task.kind != "detect" else 100.0 - m["value"]
        extra = f", CER {m['cer']:.2f} %" if "cer" in m else ""
        agree = co.agreement(task, accs[flags], accs["fp32"])
        print(f"| {name}{label} | {flags or '(default)'} | {m['metric']} | {m['value']:.2f} %{extra} | {drop:+.2f} "
              f"| {agree:.1f} | {accs[flags].sqnr()} | {walls[flags]:.1f} | {co.latency_ms(sess, x, a.latency_runs):.2f} "
              f"| {fp_ms:.2f} |", flush=True)
        results[flags] = {"value": m["value"], "agree": agree, "sqnr": accs[flags].sqnr(),
                          **({"cer": m["cer"]} if "cer" in m else {})}
    return results


if __name__ == "__main__":
    sys.exit(main())
