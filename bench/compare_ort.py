#!/usr/bin/env python3
"""Benchmark ptq against ONNX Runtime's static quantizer on the real models in ../shared.

For each model (mobilenetv2, squeezenet1.1, mnist-8, mnist-cnn-opset20-extdata, ppocr-cls,
ppocrv4-rec, yolox-nano) and each calibration method (minmax, percentile, entropy) this

  1. writes the preprocessed calibration tensors once as .npy files (bench/.work/MODEL/calib/),
  2. runs `quantize MODEL --calib DIR --method M` and bench/ort_quantize.py (ORT's quant_pre_process +
     quantize_static: QDQ, per-channel, uint8 activations, int8 weights) on the same files, each as a
     separate subprocess whose wall time and peak RSS are measured (GNU time),
  3. evaluates fp32 and both int8 models in ONNX Runtime (CPU, 2 threads) on the same held-out split:
     task metric, drop, agreement with fp32, output SQNR, and batch-1 latency (median of N runs),

and writes docs/results.md (table, command, machine, date) and docs/results.json beside it.

    .venv/bin/python bench/compare_ort.py --out docs/results.md            # full run
    .venv/bin/python bench/compare_ort.py --quick --models mnist-8 --out /tmp/r.md   # iterate
"""
import argparse
import datetime
import json
import os
import pathlib
import platform
import shlex
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import bench_data  # noqa: E402
import report  # noqa: E402
import bench_metrics as bm  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
METHODS = ["minmax", "percentile", "entropy", "mse", "auto"]
# ptq's mse and --method auto have no ORT counterpart: only ptq runs them.
PTQ_ONLY_METHODS = {"mse", "auto"}
TOOLS = ["ptq", "ort"]
CHUNK = 32
TIME = "/usr/bin/time"  # GNU time (Debian package `time`)


# ---------------------------------------------------------------- subprocess measurement

def run_measured(cmd: list, log: pathlib.Path, timeout: float) -> dict:
    """Runs cmd under GNU time, returning its wall time, peak RSS and exit code.

    Peak RSS comes from `/usr/bin/time -f %M`, not from wait4 on our own child: a child forked from
    this (large) Python process inherits its RSS high-water mark across exec, which would inflate
    ru_maxrss; GNU time's own child is forked from a small process.
    """
    rss_file = log.with_suffix(".time")
    rss_file.unlink(missing_ok=True)
    with open(log.with_suffix(".out"), "w") as out, open(log.with_suffix(".err"), "w") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen([TIME, "-f", "%M", "-o", str(rss_file), *cmd], stdout=out, stderr=err,
                                start_new_session=True, preexec_fn=cap_memory)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the process group this call started: time and the tool
            proc.wait()
            rc = -9
        wall = time.perf_counter() - t0
    stderr = log.with_suffix(".err").read_text(errors="replace").strip().splitlines()
    if rc == -9:
        stderr.append(f"timed out after {timeout:.0f} s")
    rss_lines = rss_file.read_text().split() if rss_file.exists() else []
    rss_kb = int(rss_lines[-1]) if rss_lines and rss_lines[-1].isdigit() else 0
    return {"rc": rc, "wall_s": round(wall, 2), "peak_rss_mb": round(rss_kb / 1024.0, 1),
            "stdout": log.with_suffix(".out").read_text(errors="replace").strip(),
            "error": (stderr[-1] if stderr else f"exit code {rc}") if rc else None}


def ptq_command(args, task, calib: pathlib.Path, method: str, out: pathlib.Path) -> list:
    return [str(args.quantize), str(task.model), "--calib", str(calib), "--method", method,
            "--threads", str(args.threads), "-o", str(out)]


def ort_command(task, calib: pathlib.Path, method: str, out: pathlib.Path, workarounds=()) -> list:
    return [sys.executable, str(ROOT / "bench/ort_quantize.py"), str(task.model), "--calib", str(calib),
            "--input-name", task.input_name, "--method", method, "-o", str(out), *workarounds]


def nncf_command(task, calib: pathlib.Path, preset: str, out: pathlib.Path) -> list:
    return [sys.executable, str(ROOT / "bench/nncf_quantize.py"), str(task.model), "--calib", str(calib),
            "--input-name", task.input_name, "--preset", preset, "-o", str(out)]


# ORT failures with a known workaround in bench/ort_quantize.py: (text in the error, flags to add).
ORT_WORKAROUNDS = [
    ("truth value of an array", ["--no-bias-weight-adjust"]),
    ("Unrecognized attribute: axis for operator DequantizeLinear", ["--opset", "13"]),
    ("MemoryError", ["--calib-count", "25"]),
    ("Unable to allocate", ["--calib-count", "25"]),
    ("bad_alloc", ["--calib-count", "25"]),
    ("Failed to allocate", ["--calib-count", "25"]),
]
MEMORY_CAP_GB = 12  # address-space limit for every quantization command (the machine is shared)


def cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP_GB << 30, MEMORY_CAP_GB << 30))


def load_error(path: pathlib.Path) -> str | None:
    """None if ONNX Runtime loads the model, else the first line of its error."""
    try:
        session(str(path), 1)
        return None
    except Exception as exc:
        return f"ORT cannot load the int8 model: {str(exc).splitlines()[0]}"


def quantize_one(args, task, work: pathlib.Path, calib: pathlib.Path, method: str, tool: str,
                 workarounds=()) -> dict:
    out = work / f"{tool}_{method}.onnx"
    for stale in (out, out.with_suffix(".onnx.data")):
        stale.unlink(missing_ok=True)
    cmd = (ptq_command(args, task, calib, method, out) if tool == "ptq" else
           nncf_command(task, calib, method, out) if tool == "nncf" else ort_command(task, calib, method, out, workarounds))
    rec = run_measured(cmd, work / f"{tool}_{method}", args.timeout)
    rec["command"] = shlex.join(cmd)
    rec["model"] = str(out)
    if tool in ("ort", "nncf") and rec["rc"] == 0:
        rec.update(json.loads(rec["stdout"].splitlines()[-1]))
    if rec["rc"] == 0 and not out.exists():
        rec["rc"], rec["error"] = -1, "exited 0 but wrote no model"
    if rec["rc"] == 0 and (err := load_error(out)):
        rec["rc"], rec["error"] = -2, err
    log(f"  {task.name} {method:10s} {tool}: rc={rec['rc']} {rec['wall_s']:.1f} s "
        f"{rec['peak_rss_mb']:.0f} MB" + (f"  ERROR {rec['error']}" if rec["error"] else ""))
    return rec


def quantize_all(args, task, work: pathlib.Path, calib: pathlib.Path) -> dict:
    """Runs both tools for every method; returns {(method, tool): run record}."""
    runs = {}
    for method in args.methods:
        for tool in TOOLS:
            if tool != "ptq" and (method in PTQ_ONLY_METHODS or args.ptq_only):
                continue
            rec = quantize_one(args, task, work, calib, method, tool)
            attempts, flags = [], []
            while tool == "ort" and rec["rc"] != 0:
                more = [f for text, fl in ORT_WORKAROUNDS if text in (rec["error"] or "") and fl[0] not in flags
                        for f in fl]
                if not more:
                    break
                attempts.append({k: rec[k] for k in ("rc", "error", "wall_s", "peak_rss_mb", "command")})
                flags += more
                rec = quantize_one(args, task, work, calib, method, tool, flags)
            if attempts:
                rec["failed_attempts"], rec["workarounds"] = attempts, flags
            runs[(method, tool)] = rec
    # OpenVINO NNCF, the second peer: its default and preset=MIXED (its own presets, not our methods).
    for preset in (("default", "mixed") if args.nncf else ()):
        runs[(preset, "nncf")] = quantize_one(args, task, work, calib, preset, "nncf")
    return runs


# ---------------------------------------------------------------- evaluation

def session(path: str, threads: int) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def infer(sess: ort.InferenceSession, x: np.ndarray) -> np.ndarray:
    """Runs a batch; models with a fixed batch of 1 are run sample by sample."""
    inp = sess.get_inputs()[0]
    if isinstance(inp.shape[0], int) and inp.shape[0] == 1 and len(x) > 1:
        return np.concatenate([sess.run(None, {inp.name: x[i:i + 1]})[0] for i in range(len(x))])
    return sess.run(None, {inp.name: x})[0]


class Accumulator:
    """Keeps what a metric needs from each chunk's outputs (not the full outputs) plus SQNR sums."""

    def __init__(self, kind: str, charset=None):
        self.kind, self.charset = kind, charset
        self.items, self.sig, self.err = [], 0.0, 0.0

    def add(self, out: np.ndarray, ref: np.ndarray | None) -> None:
        if ref is not None:
            r = ref.astype(np.float64)
            self.sig += float(np.sum(r * r))
            self.err += float(np.sum((r - out) ** 2))
        if self.kind == "classify":
            self.items.extend(out.reshape(len(out), -1))
        elif self.kind == "ocr-rec":
            self.items.extend(bm.ctc_greedy(out, self.charset))
        else:
            self.items.extend(bm.yolox_detections(o) for o in out)

    def sqnr(self) -> float | None:
        return round(10.0 * np.log10(self.sig / max(self.err, 1e-30)), 2) if self.sig else None


def task_metrics(task, acc: Accumulator, labels: list, ref: Accumulator | None = None) -> dict:
    if task.kind == "classify":
        return bm.classify_metrics(np.stack(acc.items), labels, task.top5)
    if task.kind == "ocr-rec":
        return bm.ocr_metrics(acc.items, labels)
    if ref is None:
        return {"metric": "fp32 dets reproduced", "value": 100.0,
                "n": sum(len(d) for d, g in zip(acc.items, labels) if g == "detect-samples")}
    return bm.detect_metrics(ref.items, acc.items, labels)


def agreement(task, acc: Accumulator, ref: Accumulator) -> float:
    if task.kind == "classify":
        a, b = np.stack(acc.items).argmax(1), np.stack(ref.items).argmax(1)
        return 100.0 * float(np.mean(a == b))
    if task.kind == "ocr-rec":
        return 100.0 * float(np.mean([x == y for x, y in zip(acc.items, ref.items)]))
    hits = sum(bm.reproduced(r, t) for r, t in zip(ref.items, acc.items))
    total = sum(len(r) for r in ref.items)
    return 100.0 * hits / total if total else float("nan")


def evaluate(task, sessions: dict) -> dict:
    """Streams the eval split through every session; returns {label: Accumulator}."""
    accs = {k: Accumulator(task.kind, task.extra.get("charset")) for k in sessions}
    for start in range(0, len(task.evals), CHUNK):
        x = np.concatenate([load() for load in task.evals[start:start + CHUNK]])
        ref = infer(sessions["fp32"], x)
        accs["fp32"].add(ref, None)
        for key, sess in sessions.items():
            if key != "fp32":
                accs[key].add(infer(sess, x), ref)
    return accs


def fp32_on_calib(task, sess) -> dict | None:
    """fp32 metric on the calibration split, to combine with the eval split into the full-set figure."""
    if not task.calib_labels:
        return None
    acc = Accumulator(task.kind, task.extra.get("charset"))
    for start in range(0, len(task.calib), CHUNK):
        acc.add(infer(sess, np.concatenate([f() for f in task.calib[start:start + CHUNK]])), None)
    return {"acc": acc}


def full_set_fp32(task, eval_acc: Accumulator, calib_acc: Accumulator) -> dict:
    both = Accumulator(task.kind, task.extra.get("charset"))
    both.items = calib_acc.items + eval_acc.items
    return task_metrics(task, both, list(task.calib_labels) + list(task.labels))


def latency_ms(sess: ort.InferenceSession, x: np.ndarray, runs: int) -> float:
    name = sess.get_inputs()[0].name
    for _ in range(max(3, runs // 10)):
        sess.run(None, {name: x})
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sess.run(None, {name: x})
        times.append((time.perf_counter() - t0) * 1e3)
    return round(statistics.median(times), 3)


# ---------------------------------------------------------------- one model

def write_calib(task, calib: pathlib.Path) -> None:
    if calib.exists():
        shutil.rmtree(calib)
    calib.mkdir(parents=True)
    for i, load in enumerate(task.calib):
        np.save(calib / f"{i:04d}.npy", load())


def bench_model(args, name: str) -> dict:
    task = bench_data.make_task(name, args.shared / "models", args.shared / "data", args.quick)
    work = args.work / name
    calib = work / "calib"
    t0 = time.perf_counter()
    write_calib(task, calib)
    log(f"{name}: {len(task.calib)} calibration samples written in {time.perf_counter() - t0:.1f} s, "
        f"{len(task.evals)} eval samples")
    runs = {} if args.fp32_only else quantize_all(args, task, work, calib)

    sessions = {"fp32": session(str(task.model), args.threads)}
    for (method, tool), rec in runs.items():
        if rec["rc"] == 0:
            try:
                sessions[(method, tool)] = session(rec["model"], args.threads)
            except Exception as exc:  # an int8 model ORT cannot load is a result too
                rec["rc"], rec["error"] = -2, f"ORT cannot load the int8 model: {str(exc).splitlines()[0]}"
    t0 = time.perf_counter()
    accs = evaluate(task, sessions)
    log(f"{name}: evaluated {len(sessions)} models in {time.perf_counter() - t0:.1f} s")

    fp32 = task_metrics(task, accs["fp32"], task.labels)
    result = {"model": name, "model_file": str(task.model), "kind": task.kind, "eval_samples": len(task.evals),
              "calib_samples": len(task.calib), "fp32": fp32, "fp32_reference": task.fp32_reference, "runs": []}
    calib_fp32 = None if args.quick else fp32_on_calib(task, sessions["fp32"])
    if calib_fp32:
        result["fp32_full_set"] = full_set_fp32(task, accs["fp32"], calib_fp32["acc"])
    x1 = task.evals[0]()
    result["fp32"]["latency_ms"] = latency_ms(sessions["fp32"], x1, args.latency_runs)
    log(f"{name}: fp32 {fmt_metric(fp32)}" +
        (f"; full set {fmt_metric(result['fp32_full_set'])} (README: {task.fp32_reference})" if calib_fp32 else ""))

    for (method, tool), rec in runs.items():
        row = {"method": method, "tool": tool, **{k: v for k, v in rec.items() if k not in ("stdout",)}}
        if (method, tool) in sessions:
            m = task_metrics(task, accs[(method, tool)], task.labels, accs["fp32"])
            row["int8"] = m
            row["drop_pt"] = round(fp32["value"] - m["value"], 3)
            row["agreement"] = round(agreement(task, accs[(method, tool)], accs["fp32"]), 3)
            row["sqnr_db"] = accs[(method, tool)].sqnr()
            row["latency_ms"] = latency_ms(sessions[(method, tool)], x1, args.latency_runs)
            log(f"  {method:10s} {tool}: {fmt_metric(m)} drop {row['drop_pt']:+.2f} pt, agree {row['agreement']:.1f} %, "
                f"SQNR {row['sqnr_db']} dB, {row['latency_ms']:.2f} ms")
        result["runs"].append(row)
    return result


def fmt_metric(m: dict) -> str:
    s = f"{m['metric']} {m['value']:.2f} %"
    if "hits" in m and "n" in m:
        s += f" ({m['hits']}/{m['n']})"
    if "cer" in m:
        s += f", CER {m['cer']:.2f} %"
    return s


def log(msg: str) -> None:
    print(msg, flush=True)


# ---------------------------------------------------------------- report

def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    ver = subprocess.run([str(ARGS.quantize), "--version"], capture_output=True, text=True).stdout.strip()
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "os": platform.platform(), "python": platform.python_version(),
            "onnxruntime": ort.__version__, "ptq": ver, "git": commit, "quantize_binary": str(ARGS.quantize),
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}


ARGS = None


def main() -> None:
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=pathlib.Path, default=ROOT / "docs/results.md",
                    help="Markdown report; the JSON goes beside it (same name, .json)")
    ap.add_argument("--models", default=",".join(bench_data.MODELS), help="comma-separated subset of: "
                    + ", ".join(bench_data.MODELS))
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of minmax,percentile,entropy,mse,auto (mse, auto: ptq only)")
    ap.add_argument("--quick", action="store_true", help="fewer evaluation samples and latency runs, for iteration")
    ap.add_argument("--ptq-only", action="store_true", help="skip ORT's quantizer (and NNCF): ptq rows only, for iteration")
    ap.add_argument("--nncf", action="store_true", help="also OpenVINO NNCF (default and preset=MIXED rows; pip nncf openvino)")
    ap.add_argument("--fp32-only", action="store_true", help="only check the fp32 pipeline (no quantization)")
    ap.add_argument("--shared", type=pathlib.Path, default=ROOT.parent / "shared")
    ap.add_argument("--quantize", type=pathlib.Path, default=ROOT / "build-bench/tools/quantize")
    ap.add_argument("--work", type=pathlib.Path, default=ROOT / "bench/.work", help="calibration .npy and int8 models")
    ap.add_argument("--threads", type=int, default=2, help="ptq --threads and ORT intra-op threads")
    ap.add_argument("--latency-runs", type=int, default=None, help="runs per latency median (default 100, quick 20)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per quantization command")
    ap.add_argument("--report-from", type=pathlib.Path, help="only re-render --out from this results JSON")
    args = ap.parse_args()
    ARGS = args
    if args.report_from:
        old = args.out.read_text() if args.out.exists() else ""
        args.out.write_text(report.markdown(json.loads(args.report_from.read_text()), old))
        return
    args.models = [m for m in args.models.split(",") if m]
    args.methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in args.models if m not in bench_data.MODELS] + [m for m in args.methods if m not in METHODS]
    if unknown:
        ap.error(f"unknown model or method: {', '.join(unknown)}")
    if args.latency_runs is None:
        args.latency_runs = 20 if args.quick else 100
    if not args.fp32_only and not args.quantize.exists():
        ap.error(f"{args.quantize} not found: build it (see bench/README.md)")

    ensure_requirements()
    t0 = time.perf_counter()
    results = {"command": command_line(), "machine": machine(), "quick": args.quick, "threads": args.threads,
               "latency_runs": args.latency_runs, "memory_cap_gb": MEMORY_CAP_GB, "models": []}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for name in args.models:
        try:
            results["models"].append(bench_model(args, name))
        except Exception as exc:  # a crash in the benchmark itself: keep the other models' results
            log(f"{name}: benchmark error {type(exc).__name__}: {exc}")
            results.setdefault("bench_errors", []).append(f"{name}: {type(exc).__name__}: {exc}")
        results["total_s"] = round(time.perf_counter() - t0, 1)
        write_results(args.out, results)
    log(f"wrote {args.out} and {args.out.with_suffix('.json')} in {results['total_s']:.0f} s")


def write_results(out: pathlib.Path, results: dict) -> None:
    out.with_suffix(".json").write_text(json.dumps(results, indent=1, default=float) + "\n")
    old = out.read_text() if out.exists() else ""
    out.write_text(report.markdown(results, old))


def ensure_requirements() -> None:
    """Installs bench/requirements.txt into this venv when a pinned package is missing or differs."""
    from importlib import metadata
    for line in (ROOT / "bench/requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        name, version = line.split("==")
        try:
            if metadata.version(name) == version:
                continue
        except metadata.PackageNotFoundError:
            pass
        log(f"installing bench/requirements.txt ({line} missing)")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-r", str(ROOT / "bench/requirements.txt")],
                       check=True)
        return


def command_line() -> str:
    exe = os.path.relpath(sys.executable, os.getcwd()) if sys.executable.startswith(str(ROOT)) else sys.executable
    return shlex.join([exe, os.path.relpath(sys.argv[0], os.getcwd())] + sys.argv[1:])


if __name__ == "__main__":
    main()
