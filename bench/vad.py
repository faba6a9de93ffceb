#!/usr/bin/env python3
"""Silero VAD v5: int8 models of ptq, ORT quantize_static and OpenVINO NNCF, streamed in ORT.

The model is stateful (LSTM state in, state out) and three-input (`input` [1, 576]: 64 samples of
context and 512 new, `state` [2, 1, 128], `sr`), so it does not fit compare_ort.py's one-input
tasks. Calibration: 100 frames from the first 20 % of ../shared/data/vad/track.wav (every 11th),
each with the state the fp32 model carried into it. Evaluation: every later frame, each model
streamed over the whole track carrying its own state (what an int8 deployment does), scored on
the frames after the calibration region: frame accuracy against labels.json (p > 0.5), ROC-AUC,
decisions agreeing with fp32, SQNR of the speech probability against fp32's, and ORT latency per
frame (2 threads, min of interleaved rounds). Every tool gets the same 100 calibration frames.

    .venv/bin/python bench/vad.py [--ptq="FLAGS" ...] [--no-nncf] [--out docs/results.md]

With --out, the section "## Silero VAD (streaming)" of that file is replaced (bench/report.py keeps
it when compare_ort.py regenerates the file).
"""
import argparse
import json
import pathlib
import re
import shlex
import subprocess
import sys
import tempfile
import time
import wave

import numpy as np
import onnx
import onnxruntime as ort

ROOT = pathlib.Path(__file__).resolve().parent.parent
SECTION = "## Silero VAD (streaming)"
FRAME, CONTEXT = 512, 64


def session(path, threads=2):
    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), o, providers=["CPUExecutionProvider"])


def frames(audio):
    """Model inputs per 512-sample frame: the 64 samples before it (zeros at the start) and it."""
    padded = np.concatenate([np.zeros(CONTEXT, np.float32), audio])
    n = len(audio) // FRAME
    return [padded[i * FRAME: i * FRAME + CONTEXT + FRAME][None] for i in range(n)]


def stream(sess, chunks):
    """Speech probability per frame, carrying the model's own state; and the state before each."""
    state = np.zeros((2, 1, 128), np.float32)
    sr = np.array(16000, np.int64)
    probs, states = [], []
    for c in chunks:
        states.append(state)
        p, state = sess.run(None, {"input": c, "state": state, "sr": sr})
        probs.append(float(p.ravel()[0]))
    return np.array(probs), states


def roc_auc(scores, labels):
    """Mann-Whitney U: the share of (speech, non-speech) frame pairs ranked the right way (ties half)."""
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    s = scores[order]
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    pos = labels == 1
    n_pos, n_neg = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def sqnr(ref, test):
    noise = np.sum((ref - test) ** 2)
    return float("inf") if noise == 0 else float(10 * np.log10(np.sum(ref ** 2) / noise))


def latency_ms(sess, chunk, state, runs=200):
    """Mean ms per call over `runs` calls (the caller takes the minimum over interleaved rounds)."""
    feed = {"input": chunk, "state": state, "sr": np.array(16000, np.int64)}
    t = time.perf_counter()
    for _ in range(runs):
        sess.run(None, feed)
    return (time.perf_counter() - t) / runs * 1e3


class Reader:
    """ORT CalibrationDataReader over the calibration feeds."""

    def __init__(self, feeds):
        self.it = iter(feeds)

    def get_next(self):
        return next(self.it, None)


def quantize_ort(model, feeds, out):
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    quantize_static(str(model), str(out), Reader(feeds), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)


def quantize_nncf(model, feeds, out, preset):
    import nncf
    m = onnx.load(str(model))
    kwargs = {"subset_size": len(feeds)}
    if preset == "mixed":
        kwargs["preset"] = nncf.QuantizationPreset.MIXED
    q = nncf.quantize(m, nncf.Dataset(feeds), **kwargs)
    onnx.save(q, str(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quantize", default=str(ROOT / "build/tools/quantize"))
    ap.add_argument("--ptq", action="append", default=None, help="ptq flag set (repeatable; default: the defaults)")
    ap.add_argument("--no-ort", action="store_true", help="skip ORT quantize_static")
    ap.add_argument("--no-nncf", action="store_true", help="skip NNCF")
    ap.add_argument("--work", default=str(ROOT / "bench/.work/silero-vad"))
    ap.add_argument("--out", help="markdown file whose Silero VAD section to replace")
    args = ap.parse_args()
    shared = ROOT.parent / "shared"
    model = shared / "models/silero-vad/model.onnx"
    if not model.exists():
        sys.exit(f"skip: {model} not found (needs ../shared)")
    with wave.open(str(shared / "data/vad/track.wav")) as w:
        audio = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768
    labels = np.array(json.loads((shared / "data/vad/labels.json").read_text())["labels"])
    chunks = frames(audio)
    n = min(len(chunks), len(labels))
    chunks, labels = chunks[:n], labels[:n]
    split = n // 5
    fp = session(model)
    fp_probs, fp_states = stream(fp, chunks)
    calib_idx = list(range(0, split, 11))[:100]
    feeds = [{"input": chunks[i], "state": fp_states[i], "sr": np.array(16000, np.int64)} for i in calib_idx]
    work = pathlib.Path(args.work)
    calib = work / "calib"
    calib.mkdir(parents=True, exist_ok=True)
    for f in calib.glob("*.npz"):
        f.unlink()
    for k, f in enumerate(feeds):
        np.savez(calib / f"{k:04d}.npz", **f)

    models, notes = {}, []
    for i, flags in enumerate(args.ptq or [""]):
        out = work / f"ptq_{i}.onnx"
        cmd = [args.quantize, str(model), "--calib", str(calib), "-o", str(out), "-q"] + shlex.split(flags)
        t = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode not in (0, 4):
            notes.append(f"ptq {flags or '(default)'}: exit {r.returncode}: {r.stderr.strip().splitlines()[-1:]}")
            continue
        models[f"ptq {flags}".strip() if flags else "ptq (default)"] = (out, time.perf_counter() - t)
    peers = [] if args.no_ort else [("ORT quantize_static", lambda o: quantize_ort(model, feeds, o))]
    if not args.no_nncf:
        peers += [(f"NNCF {p}", lambda o, p=p: quantize_nncf(model, feeds, o, p)) for p in ("default", "mixed")]
    for name, fn in peers:
        out = work / (re.sub(r"\W+", "_", name) + ".onnx")
        t = time.perf_counter()
        try:
            fn(out)
            models[name] = (out, time.perf_counter() - t)
        except Exception as e:  # a peer failing is a result too
            notes.append(f"{name}: {type(e).__name__}: {str(e).strip().splitlines()[0][:200] if str(e).strip() else ''}")

    ev = slice(split, n)
    lab = labels[ev]
    fp_dec = fp_probs[ev] > 0.5
    mid = split + (n - split) // 2
    rows = [("fp32", fp_probs, model, 0.0)]
    sessions = {"fp32": fp}
    for name, (path, secs) in models.items():
        try:
            sessions[name] = session(path)
            probs, _ = stream(sessions[name], chunks)
        except Exception as e:
            sessions.pop(name, None)
            notes.append(f"{name}: ORT cannot run it: {str(e).strip().splitlines()[0][:200]}")
            continue
        rows.append((name, probs, path, secs))
    lat = {name: float("inf") for name in sessions}
    for _ in range(3):  # interleaved rounds
        for name, s in sessions.items():
            lat[name] = min(lat[name], latency_ms(s, chunks[mid], fp_states[mid]))
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "unknown"
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    lines = [SECTION, "",
             f"Measured {time.strftime('%Y-%m-%d')} at git {commit} on {cpu}. "
             f"Silero VAD v5 (`../shared/models/silero-vad`), int8 streamed in ONNX Runtime {ort.__version__} "
             f"(CPU, 2 threads) over `../shared/data/vad/track.wav`, each model carrying its own LSTM state. "
             f"Calibration: {len(feeds)} frames of the first {split} (every 11th, with the state fp32 carried "
             f"into it), the same arrays for every tool; scored on the {n - split} frames after them. Columns: "
             f"frame accuracy against `labels.json` (p > 0.5), ROC-AUC, decisions equal to fp32's, SQNR of the "
             f"speech probability against fp32's, the mean probability on non-speech frames, ORT latency per "
             f"frame (min of interleaved rounds), quantize seconds, file size. An int8 model can score above "
             f"fp32 on frame accuracy by moving its probabilities (the non-speech column) rather than by "
             f"reproducing fp32, which agreement and SQNR measure. "
             f"Command: `{' '.join(['bench/vad.py'] + sys.argv[1:])}`.", "",
             "| model | frame accuracy | ROC-AUC | agreement with fp32 | SQNR dB | mean p, non-speech | ms / frame "
             "| quantize s | MB |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, probs, path, secs in rows:
        p = probs[ev]
        acc = float(np.mean((p > 0.5) == (lab == 1)) * 100)
        agree = float(np.mean((p > 0.5) == fp_dec) * 100)
        s = "" if name == "fp32" else f"{sqnr(fp_probs[ev], p):.1f}"
        q = "" if name == "fp32" else f"{secs:.1f}"
        lines.append(f"| {name} | {acc:.2f} % | {roc_auc(p, lab):.4f} | {agree:.2f} % | {s} | {p[lab == 0].mean():.3f} "
                     f"| {lat[name]:.3f} | {q} | {pathlib.Path(path).stat().st_size / 1e6:.2f} |")
    if notes:
        lines += [""] + [f"- {x}" for x in notes]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        out = pathlib.Path(args.out)
        old = out.read_text() if out.exists() else ""
        pat = re.compile(re.escape(SECTION) + r"\n.*?(?=^## |\Z)", re.S | re.M)
        if pat.search(old):
            new = pat.sub(lambda _: text + "\n", old)
        else:  # where bench/report.py puts kept sections: after the MiniLM one, else at the end
            at = old.find("\n## ", old.find("## MiniLM-L6 sentence encoder") + 1) if "## MiniLM-L6" in old else -1
            new = old[:at + 1] + text + "\n" + old[at + 1:] if at >= 0 else old.rstrip() + "\n\n" + text
        out.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
