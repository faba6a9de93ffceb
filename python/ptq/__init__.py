"""ptq: post-training int8 quantization for ONNX models, as Python calls (docs/python.md).

>>> import ptq
>>> r = ptq.quantize("mobilenetv2.onnx", calib=arrays, output="mobilenetv2.int8.onnx")

Calibration and evaluation data is a folder or list file (as the CLI's --calib), an iterable of
samples, or an object with ``get_next()`` (ONNX Runtime's CalibrationDataReader); a sample is a
dict {input name: numpy array}, or one array for a single-input model. In-memory data is copied
into the library before the work starts, so memory grows with the number of samples.
"""

from __future__ import annotations

import json as _json
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

from . import _ptq
from .errors import (DataError, Error, InternalError, InvalidModel, IoError, ModelError, UnsupportedError,
                     UsageError)

__version__ = _ptq.__version__
__all__ = ["quantize", "compare", "QuantizeResult", "Report", "set_log_level", "Error", "UsageError",
           "ModelError", "InvalidModel", "UnsupportedError", "DataError", "IoError", "InternalError"]

PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class Report:
    """The accuracy report: ``json`` is the report module's JSON (docs/report-schema.md), ``data``
    the same parsed, ``text`` the summary the CLI prints, ``gate`` "PASSED" or "FAILED: ..." when
    a budget was given, ``passed`` False when a budget or the sanity check failed."""

    json: str
    text: str
    gate: Optional[str]
    passed: bool
    data: dict = field(repr=False, default_factory=dict)

    @classmethod
    def _from(cls, d: Mapping[str, Any]) -> "Report":
        return cls(json=d["json"], text=d["text"], gate=d["gate"], passed=d["passed"], data=_json.loads(d["json"]))


@dataclass
class QuantizeResult:
    """What quantize() did: counts, nodes left in fp32 with reasons, notes, and the report."""

    output: str
    mode: str
    quantized_nodes: int
    activation_pairs: int
    weights: int
    biases: int
    folded_activations: int
    placement: str
    fp32: list
    notes: list
    prepared: list
    report: Optional[Report] = None

    @property
    def passed(self) -> bool:
        return self.report.passed if self.report else True


def set_log_level(level: str) -> None:
    """Library logs on stderr: "trace", "debug", "info", "warning" (the default), "error" or "off"."""
    _ptq.set_log_level({"warn": "warning"}.get(level, level))


def _path(p: Optional[PathLike]) -> Optional[str]:
    return None if p is None else os.fspath(p)


def _data(d: Any, name: str) -> Any:
    """A path as str; data (iterable or reader) as it is, read by the library."""
    if d is None or isinstance(d, str):
        return d
    if isinstance(d, os.PathLike):
        return os.fspath(d)
    if isinstance(d, Mapping):
        raise TypeError(f"{name}: a dict is one sample; pass a list (or any iterable) of samples")
    if hasattr(d, "get_next") or hasattr(d, "__iter__"):
        return d
    raise TypeError(f"{name}: expected a folder or list file path, an iterable of samples "
                    f"({{input name: array}} or arrays) or an object with get_next(), not {type(d).__name__}")


_DIMS_KEYS = ("resize", "letterbox", "center_crop")


def _preprocess(p: Union[None, str, Mapping[str, Any]]) -> list:
    """--preprocess PRESET, or {option: value} with the CLI's image options (resize_short=256,
    center_crop=224, mean=(0.485, 0.456, 0.406), ...); applied in the order given."""
    if p is None:
        return []
    if isinstance(p, str):
        return [("preprocess", p)]
    out = []
    for k, v in p.items():
        k = "preprocess" if k == "preset" else k
        if isinstance(v, (list, tuple)):
            v = ("x" if k in _DIMS_KEYS else ",").join(str(x) for x in v)
        out.append((k, str(v)))
    return out


def _input_shapes(s: Union[None, Mapping[str, Sequence[int]], Sequence[str]]) -> list:
    if s is None:
        return []
    if isinstance(s, Mapping):
        return [f"{k}:{'x'.join(str(int(d)) for d in v)}" for k, v in s.items()]
    return [str(x) for x in s]


def _common(threads, input_shapes, skip_nonfinite, preprocess, labels, task, report, report_html, report_md,
            max_drop, min_agreement, min_sqnr, int8_mode, eval_count) -> dict:
    return dict(threads=threads, input_shapes=_input_shapes(input_shapes), skip_nonfinite=skip_nonfinite,
                preprocess=_preprocess(preprocess), labels=_path(labels), task=task, report=_path(report),
                report_html=_path(report_html), report_md=_path(report_md), max_drop=max_drop,
                min_agreement=min_agreement, min_sqnr=min_sqnr, int8_mode=int8_mode, eval_count=eval_count)


def quantize(model: PathLike, calib: Any = None, output: Optional[PathLike] = None, *,
             mode: str = "static", method: str = "auto", percentile: Optional[float] = None,
             minmax_average: bool = False, asymmetric_calib: bool = False,
             target: str = "ort-x86", preset: str = "auto", elementwise: Optional[str] = None,
             hardswish: Optional[str] = None, uint8_weights: Optional[str] = None,
             activation_type: Optional[str] = None, activation_symmetric: bool = False,
             weight_type: Optional[str] = None, per_tensor: bool = False, reduce_range: Optional[bool] = None,
             exclude_nodes: Optional[str] = None, exclude_ops: Union[None, str, Sequence[str]] = None,
             smoothquant: Union[None, bool, float] = None, threads: Optional[int] = None,
             calib_count: int = 0, input_shapes: Union[None, Mapping[str, Sequence[int]], Sequence[str]] = None,
             skip_nonfinite: bool = False, preprocess: Union[None, str, Mapping[str, Any]] = None,
             load_calib: Optional[PathLike] = None, save_calib: Optional[PathLike] = None, force: bool = False,
             external_data: bool = False,
             eval: Any = None, eval_count: int = 0, labels: Optional[PathLike] = None, task: str = "auto",
             report: Optional[PathLike] = None, report_html: Optional[PathLike] = None,
             report_md: Optional[PathLike] = None, max_drop: Optional[float] = None,
             min_agreement: Optional[float] = None, min_sqnr: Optional[float] = None,
             auto_fallback: bool = False, max_fallback: int = 10, sensitivity_samples: int = 16,
             layer_samples: int = 128, int8_mode: str = "integer", accuracy: Optional[bool] = None) -> QuantizeResult:
    """Quantizes ``model`` (an fp32 ONNX file) to an int8 QDQ model written to ``output``.

    Each argument is the CLI flag of the same name (``exclude_ops`` is ``--exclude-ops``; README's
    CLI reference); ``smoothquant`` True is ``--smoothquant`` (default alpha), a float its alpha,
    False ``--no-smoothquant``; ``reduce_range`` True/False is ``--reduce-range``/``--no-reduce-range``.
    The accuracy report runs when ``eval``, ``labels``, a report file or a budget is given, or with
    ``accuracy=True`` (on the calibration data without ``eval``). A failed budget does not raise:
    the model and report are written and ``result.passed`` is False, as the CLI exits 4.
    Outputs are written as temp files and renamed only when the call succeeds; errors raise
    ptq.Error subclasses with the CLI's message.
    """
    if output is None:
        raise UsageError("-o/--output is required")
    if isinstance(exclude_ops, str):
        exclude_ops = [x for x in exclude_ops.split(",") if x]
    wanted = (eval is not None or labels is not None or report is not None or report_html is not None
              or report_md is not None or max_drop is not None or min_agreement is not None
              or min_sqnr is not None or auto_fallback or task != "auto")
    options = dict(
        mode=mode, method=method, percentile=percentile, minmax_average=minmax_average,
        asymmetric_calib=asymmetric_calib, target=target, preset=preset, elementwise=elementwise,
        hardswish=hardswish, uint8_weights=uint8_weights, activation_type=activation_type,
        activation_symmetric=activation_symmetric, weight_type=weight_type, per_tensor=per_tensor,
        reduce_range=reduce_range, exclude_nodes=exclude_nodes, exclude_ops=list(exclude_ops or []),
        smoothquant=None if smoothquant is None or isinstance(smoothquant, bool) else float(smoothquant),
        no_smoothquant=smoothquant is False, calib_count=calib_count, load_calib=_path(load_calib),
        save_calib=_path(save_calib), force=force, external_data=external_data,
        auto_fallback=auto_fallback, max_fallback=max_fallback, sensitivity_samples=sensitivity_samples,
        layer_samples=layer_samples, accuracy=wanted if accuracy is None else bool(accuracy),
        **_common(threads, input_shapes, skip_nonfinite, preprocess, labels, task, report, report_html, report_md,
                  max_drop, min_agreement, min_sqnr, int8_mode, eval_count))
    if smoothquant is True:
        options["smoothquant"] = 0.8  # passes::kDefaultSmoothQuantAlpha
    d = _ptq.quantize(os.fspath(model), os.fspath(output), _data(calib, "calib"), _data(eval, "eval"), options)
    rep = d.pop("report")
    return QuantizeResult(**d, report=Report._from(rep) if rep else None)


def compare(model_a: PathLike, model_b: PathLike, data: Any, *, threads: Optional[int] = None,
            eval_count: int = 0, labels: Optional[PathLike] = None, task: str = "auto",
            report: Optional[PathLike] = None, report_html: Optional[PathLike] = None,
            report_md: Optional[PathLike] = None, max_drop: Optional[float] = None,
            min_agreement: Optional[float] = None, min_sqnr: Optional[float] = None,
            int8_mode: str = "integer", input_shapes: Union[None, Mapping[str, Sequence[int]], Sequence[str]] = None,
            skip_nonfinite: bool = False, preprocess: Union[None, str, Mapping[str, Any]] = None,
            layer_samples: int = 128) -> Report:
    """The accuracy report of ``model_b`` against ``model_a`` on ``data`` (``quantize compare``).
    A failed budget does not raise: ``report.passed`` is False."""
    options = _common(threads, input_shapes, skip_nonfinite, preprocess, labels, task, report, report_html,
                      report_md, max_drop, min_agreement, min_sqnr, int8_mode, eval_count)
    options["layer_samples"] = layer_samples
    return Report._from(_ptq.compare(os.fspath(model_a), os.fspath(model_b), _data(data, "data"), options))
