# ptq.quantize / ptq.compare against the CLI: same bytes from arrays, iterators and data readers.
import threading
import time

import numpy as np
import pytest

import ptq
from conftest import cli_error, write_npy_folder


class Reader:
    """ONNX Runtime's CalibrationDataReader protocol: get_next() until None."""

    def __init__(self, arrays):
        self.it = iter(arrays)

    def get_next(self):
        a = next(self.it, None)
        return None if a is None else {"input": a}


def ort_reader(arrays):
    """A real onnxruntime.quantization.CalibrationDataReader when ORT is there."""
    try:
        from onnxruntime.quantization import CalibrationDataReader
    except ImportError:
        return Reader(arrays)

    class R(CalibrationDataReader):
        def __init__(self):
            self.inner = Reader(arrays)

        def get_next(self):
            return self.inner.get_next()

    return R()


@pytest.fixture(scope="module")
def cli_model(tmp_path_factory, cli, mobilenet, calib_arrays):
    """The CLI's int8 mobilenetv2 from the calibration arrays written as .npy files."""
    d = tmp_path_factory.mktemp("cli")
    calib = write_npy_folder(d / "calib", calib_arrays)
    out = d / "cli.int8.onnx"
    rc, stdout, stderr = cli(mobilenet, "--calib", calib, "-o", out)
    assert rc == 0, stderr
    return calib, out.read_bytes(), stdout


def test_arrays_iterator_same_bytes_as_cli(tmp_path, mobilenet, calib_arrays, cli_model):
    _, expected, stdout = cli_model
    out = tmp_path / "py.int8.onnx"
    r = ptq.quantize(mobilenet, calib=(a for a in calib_arrays), output=out)
    assert out.read_bytes() == expected
    assert f"quantized {r.quantized_nodes} nodes ({r.activation_pairs} activation Q/DQ pairs" in stdout
    assert r.output == str(out) and r.mode == "static" and r.report is None and r.passed


def test_calibration_data_reader_same_bytes_as_cli(tmp_path, mobilenet, calib_arrays, cli_model):
    out = tmp_path / "reader.int8.onnx"
    ptq.quantize(mobilenet, calib=ort_reader(calib_arrays), output=out, threads=1)
    assert out.read_bytes() == cli_model[1]


def test_folder_path_same_bytes_as_cli(tmp_path, mobilenet, cli_model):
    out = tmp_path / "folder.int8.onnx"
    ptq.quantize(mobilenet, calib=cli_model[0], output=str(out))
    assert out.read_bytes() == cli_model[1]


def test_gil_released_during_the_work(tmp_path, mobilenet, calib_arrays):
    ticks = 0
    t = threading.Thread(target=ptq.quantize, args=(mobilenet, calib_arrays[:4], tmp_path / "m.onnx"))
    t.start()
    while t.is_alive():
        ticks += 1
        time.sleep(0.001)
    t.join()
    assert (tmp_path / "m.onnx").exists()
    assert ticks > 50, "the main thread did not run while quantize worked: GIL held?"


def report_figures(report_json):
    """A report's figures without the paths and data names, which differ between CLI and arrays, and
    without the CLI's run summary (settings as flags, input hashes), which the Python API does not add."""
    import json
    d = json.loads(report_json) if isinstance(report_json, str) else report_json
    for k in ("model_a", "model_b", "data", "models", "inputs", "summary"):
        d.pop(k, None)
    return d


def test_eval_report_matches_cli(tmp_path, cli, mobilenet, calib_arrays, eval_arrays, cli_model):
    calib = cli_model[0]
    evald = write_npy_folder(tmp_path / "eval", eval_arrays)
    rc, _, stderr = cli(mobilenet, "--calib", calib, "--eval", evald, "--sensitivity-samples", "2",
                        "--min-sqnr", "-100", "--report", tmp_path / "cli.json", "-o", tmp_path / "cli.onnx")
    assert rc == 0, stderr
    r = ptq.quantize(mobilenet, calib=calib_arrays, eval=eval_arrays, sensitivity_samples=2, min_sqnr=-100,
                     report=tmp_path / "py.json", output=tmp_path / "py.onnx")
    assert r.report is not None and r.report.gate == "PASSED" and r.passed
    assert (tmp_path / "py.json").read_text() == r.report.json
    assert r.report.data["command"] == "quantize"
    assert report_figures(r.report.json) == report_figures((tmp_path / "cli.json").read_text())
    assert (tmp_path / "py.onnx").read_bytes() == (tmp_path / "cli.onnx").read_bytes()


def test_compare_matches_cli(tmp_path, cli, mobilenet, eval_arrays, cli_model):
    int8 = tmp_path / "int8.onnx"
    int8.write_bytes(cli_model[1])
    evald = write_npy_folder(tmp_path / "eval", eval_arrays)
    rc, _, stderr = cli("compare", mobilenet, int8, "--data", evald, "--report", tmp_path / "cli.json")
    assert rc == 0, stderr
    rep = ptq.compare(mobilenet, int8, data=iter(eval_arrays), min_agreement=0)
    assert rep.data["command"] == "compare" and rep.gate == "PASSED"
    want = report_figures((tmp_path / "cli.json").read_text())
    got = report_figures(rep.json)
    got.pop("budget", None), want.pop("budget", None), got.pop("gate", None), want.pop("gate", None)
    assert got == want


def test_failed_budget_returns_not_raises(tmp_path, mobilenet, calib_arrays, eval_arrays):
    r = ptq.quantize(mobilenet, calib=calib_arrays, eval=eval_arrays, min_sqnr=1000, sensitivity_samples=0,
                     output=tmp_path / "m.onnx")
    assert not r.passed and r.report.gate.startswith("FAILED: ")
    assert (tmp_path / "m.onnx").exists()  # as the CLI's exit 4 keeps the model


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".ptq-tmp-"))


def test_dtype_error_same_message_as_cli_and_no_output(tmp_path, cli, mobilenet, calib_arrays):
    bad = [a.astype(np.float64) for a in calib_arrays[:2]]
    folder = write_npy_folder(tmp_path / "bad", bad)
    rc, _, stderr = cli(mobilenet, "--calib", folder, "-o", tmp_path / "cli.onnx")
    assert rc == 5
    msg = cli_error(stderr)
    out = tmp_path / "py.onnx"
    with pytest.raises(ptq.DataError) as e:  # from the folder: the CLI's message verbatim
        ptq.quantize(mobilenet, calib=folder, output=out)
    assert str(e.value) == msg and e.value.exit_code == rc
    with pytest.raises(ptq.IoError) as e:  # from arrays: the same, naming the sample
        ptq.quantize(mobilenet, calib=bad, output=out)
    assert str(e.value) == msg.replace(str(folder / "0000.npy"), "calib[0]")
    assert str(e.value).startswith("calib[0]: input 'input': wrong dtype: expected float")
    assert not out.exists() and not (tmp_path / "cli.onnx").exists() and leftovers(tmp_path) == []


def test_failure_late_in_the_run_leaves_no_output(tmp_path, mobilenet, calib_arrays):
    out, table = tmp_path / "m.onnx", tmp_path / "t.json"
    out.write_bytes(b"previous")
    data = list(calib_arrays[:5]) + [np.full_like(calib_arrays[0], np.nan)]
    with pytest.raises(ptq.DataError, match=r"calib\[5\]: input 'input' contains NaN or Inf"):
        ptq.quantize(mobilenet, calib=data, output=out, save_calib=table)
    assert out.read_bytes() == b"previous" and not table.exists() and leftovers(tmp_path) == []
    r = ptq.quantize(mobilenet, calib=data, output=out, save_calib=table, skip_nonfinite=True)
    assert any("skipped 1 calibration samples" in n for n in r.notes) and table.exists()


@pytest.mark.parametrize("kwargs,flags,cls", [
    (dict(method="nope"), ["--method", "nope"], ptq.UsageError),
    (dict(target="tpu"), ["--target", "tpu"], ptq.UsageError),
    (dict(mode="fast"), ["--mode", "fast"], ptq.UsageError),
    (dict(weight_type="int8"), ["--weight-type", "int8"], ptq.UsageError),
    (dict(max_drop=1), ["--max-drop", "1"], ptq.UsageError),
    (dict(hardswish="int4"), ["--hardswish", "int4"], ptq.UsageError),
    (dict(elementwise="yes"), ["--elementwise", "yes"], ptq.UsageError),
    (dict(uint8_weights="maybe"), ["--uint8-weights", "maybe"], ptq.UsageError),
])
def test_usage_errors_same_message_as_cli(tmp_path, cli, mobilenet, cli_model, kwargs, flags, cls):
    rc, _, stderr = cli(mobilenet, "--calib", cli_model[0], *flags, "-o", tmp_path / "cli.onnx")
    with pytest.raises(cls) as e:
        ptq.quantize(mobilenet, calib=cli_model[0], output=tmp_path / "py.onnx", **kwargs)
    assert (str(e.value), e.value.exit_code) == (cli_error(stderr), rc)
    assert not (tmp_path / "py.onnx").exists()


def test_model_errors_same_message_as_cli(tmp_path, cli, cli_model):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage, not a protobuf")
    rc, _, stderr = cli(bad, "--calib", cli_model[0], "-o", tmp_path / "o.onnx")
    with pytest.raises(ptq.ModelError) as e:
        ptq.quantize(bad, calib=cli_model[0], output=tmp_path / "o.onnx")
    assert isinstance(e.value, ptq.InvalidModel) and isinstance(e.value, ptq.Error)
    assert (str(e.value), e.value.exit_code) == (cli_error(stderr), rc) and rc == 2
    missing = tmp_path / "missing.onnx"
    rc, _, stderr = cli(missing, "--calib", cli_model[0], "-o", tmp_path / "o.onnx")
    with pytest.raises(ptq.DataError) as e:
        ptq.quantize(missing, calib=cli_model[0], output=tmp_path / "o.onnx")
    assert (str(e.value), e.value.exit_code) == (cli_error(stderr), rc)


def test_output_over_input_refused(tmp_path, cli, mobilenet, cli_model):
    rc, _, stderr = cli(mobilenet, "--calib", cli_model[0], "-o", mobilenet)
    with pytest.raises(ptq.UsageError) as e:
        ptq.quantize(mobilenet, calib=cli_model[0], output=mobilenet)
    assert (str(e.value), e.value.exit_code) == (cli_error(stderr), rc) and rc == 1


def test_bad_samples_name_index_and_input(tmp_path, mobilenet, calib_arrays):
    out = tmp_path / "m.onnx"
    with pytest.raises(ptq.DataError, match=r"^calib\[1\]: key 'image' does not name a model input \(inputs: input\)$"):
        ptq.quantize(mobilenet, calib=[{"input": calib_arrays[0]}, {"image": calib_arrays[1]}], output=out)
    with pytest.raises(ptq.DataError, match=r"^calib\[0\]: input 'input': wrong shape at dim 2: expected float \[batch_size,3,224,224\]"):
        ptq.quantize(mobilenet, calib=[calib_arrays[0][:, :, :100]], output=out)
    with pytest.raises(ptq.DataError, match=r"^calib\[0\]: input 'input': numpy dtype complex64 is not supported"):
        ptq.quantize(mobilenet, calib=[{"input": calib_arrays[0].astype(np.complex64)}], output=out)
    with pytest.raises(ptq.DataError, match=r"^calib: no samples$"):
        ptq.quantize(mobilenet, calib=[], output=out)
    with pytest.raises(TypeError):
        ptq.quantize(mobilenet, calib=42, output=out)
    assert not out.exists() and leftovers(tmp_path) == []


def test_placement_options_same_bytes_as_cli(tmp_path, cli, mobilenet, cli_model):
    # --elementwise int8 quantizes mobilenetv2's residual Adds: a different model, the same on both sides.
    flags = ["--elementwise", "int8", "--hardswish", "fp32", "--uint8-weights", "on"]
    rc, _, stderr = cli(mobilenet, "--calib", cli_model[0], *flags, "-o", tmp_path / "cli.onnx")
    assert rc == 0, stderr
    ptq.quantize(mobilenet, calib=cli_model[0], output=tmp_path / "py.onnx", elementwise="int8", hardswish="fp32",
                 uint8_weights="on")
    assert (tmp_path / "py.onnx").read_bytes() == (tmp_path / "cli.onnx").read_bytes()
    assert (tmp_path / "py.onnx").read_bytes() != cli_model[1]


def test_dynamic_mode_and_options(tmp_path, cli, mobilenet, calib_arrays, cli_model):
    rc, _, stderr = cli(mobilenet, "--mode", "dynamic", "--per-tensor", "--exclude-ops", "Gemm,MatMul",
                        "-o", tmp_path / "cli.onnx")
    assert rc == 0, stderr
    r = ptq.quantize(mobilenet, output=tmp_path / "py.onnx", mode="dynamic", per_tensor=True,
                     exclude_ops=["Gemm", "MatMul"])
    assert r.mode == "dynamic"
    assert (tmp_path / "py.onnx").read_bytes() == (tmp_path / "cli.onnx").read_bytes()
