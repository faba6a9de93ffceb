"""Task metrics for the ptq-vs-ORT benchmark (bench/compare_ort.py).

Classification top-1/top-5 and agreement, PP-OCR CTC greedy decoding with exact match and CER,
YOLOX output decoding (grids/strides 8, 16, 32 as in the YOLOX ONNX demo) with class-aware NMS and
the share of fp32 detections an int8 model reproduces, and output SQNR.
"""
import numpy as np

# ---------------------------------------------------------------- classification


def topk_hits(logits: np.ndarray, labels: list, k: int) -> int:
    top = np.argsort(-logits.reshape(len(logits), -1), axis=1)[:, :k]
    return int(sum(lab in row for lab, row in zip(labels, top)))


def classify_metrics(logits: np.ndarray, labels: list, top5: bool) -> dict:
    n = len(labels)
    hits = topk_hits(logits, labels, 1)
    m = {"metric": "top-1", "value": 100.0 * hits / n, "hits": hits, "n": n}
    if top5:
        m["top5"] = 100.0 * topk_hits(logits, labels, 5) / n
    return m


def argmax(outputs: np.ndarray) -> np.ndarray:
    return outputs.reshape(len(outputs), -1).argmax(axis=1)


# ---------------------------------------------------------------- OCR recognition


def ctc_greedy(probs: np.ndarray, charset: list) -> list:
    """probs [N, T, C] -> strings: best class per step, collapse repeats, drop blank (index 0), strip
    leading/trailing spaces (the padding often decodes to a space; the README's fp32 figures strip it)."""
    texts = []
    for seq in probs.argmax(axis=2):
        keep = np.ones(len(seq), bool)
        keep[1:] = seq[1:] != seq[:-1]
        texts.append("".join(charset[c] for c in seq[keep] if c != 0).strip())
    return texts


def edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def ocr_metrics(texts: list, labels: list) -> dict:
    exact = sum(t == g for t, g in zip(texts, labels))
    errors = sum(edit_distance(t, g) for t, g in zip(texts, labels))
    chars = sum(len(g) for g in labels)
    return {"metric": "exact match", "value": 100.0 * exact / len(labels), "hits": exact, "n": len(labels),
            "cer": 100.0 * errors / chars}


# ---------------------------------------------------------------- YOLOX


def yolox_grids(size: int = 416, strides=(8, 16, 32)) -> tuple[np.ndarray, np.ndarray]:
    grids, expanded = [], []
    for s in strides:
        xv, yv = np.meshgrid(np.arange(size // s), np.arange(size // s))
        g = np.stack((xv, yv), 2).reshape(-1, 2)
        grids.append(g)
        expanded.append(np.full((len(g), 1), s))
    return np.concatenate(grids).astype(np.float32), np.concatenate(expanded).astype(np.float32)


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / np.maximum(area(box) + area(boxes) - inter, 1e-9)


def nms(boxes: np.ndarray, scores: np.ndarray, thr: float) -> list:
    order = list(np.argsort(-scores))
    keep = []
    while order:
        i = order.pop(0)
        keep.append(i)
        if order:
            rest = np.array(order)
            order = list(rest[iou(boxes[i], boxes[rest]) <= thr])
    return keep


def yolox_detections(out: np.ndarray, score_thr: float = 0.3, nms_thr: float = 0.45) -> list:
    """One image's raw output [3549, 85] -> [(x1, y1, x2, y2, score, class)] in letterbox pixels."""
    grids, strides = yolox_grids()
    xy = (out[:, :2] + grids) * strides
    wh = np.exp(out[:, 2:4]) * strides
    boxes = np.concatenate([xy - wh / 2, xy + wh / 2], axis=1)
    scores = out[:, 4:5] * out[:, 5:]
    dets = []
    for c in range(scores.shape[1]):
        sel = np.nonzero(scores[:, c] >= score_thr)[0]
        if len(sel):
            for k in nms(boxes[sel], scores[sel, c], nms_thr):
                dets.append((*boxes[sel[k]], float(scores[sel[k], c]), c))
    return sorted(dets, key=lambda d: -d[4])


def reproduced(ref: list, test: list, iou_thr: float = 0.5) -> int:
    """How many reference detections have a distinct test detection of the same class with IoU >= thr."""
    used = set()
    hits = 0
    for d in ref:
        best, best_j = iou_thr, None
        for j, t in enumerate(test):
            if j in used or t[5] != d[5]:
                continue
            v = float(iou(np.array(d[:4]), np.array([t[:4]]))[0])
            if v >= best:
                best, best_j = v, j
        if best_j is not None:
            used.add(best_j)
            hits += 1
    return hits


def detect_metrics(fp32_dets: list, int8_dets: list, groups: list) -> dict:
    """Share of fp32 detections reproduced, for detect-samples (primary) and the extra photos."""
    m = {"metric": "fp32 dets reproduced"}
    for group, key in (("detect-samples", ""), ("imagenet", "imagenet_")):
        idx = [i for i, g in enumerate(groups) if g == group]
        ref = sum(len(fp32_dets[i]) for i in idx)
        hit = sum(reproduced(fp32_dets[i], int8_dets[i]) for i in idx)
        m[key + "hits"], m[key + "n"] = hit, ref
        m[key + "int8_dets"] = sum(len(int8_dets[i]) for i in idx)
        m[key + "value"] = 100.0 * hit / ref if ref else float("nan")
        m[key + "images"] = len(idx)
    return m


# ---------------------------------------------------------------- generic


def sqnr_db(ref: np.ndarray, test: np.ndarray) -> float:
    ref = ref.astype(np.float64).ravel()
    err = ref - test.astype(np.float64).ravel()
    return float(10.0 * np.log10(np.sum(ref * ref) / max(np.sum(err * err), 1e-30)))
