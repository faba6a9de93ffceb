# Fixtures for the Python package's tests: the shared models/data, the CLI binary, sample arrays.
import os
import pathlib
import subprocess

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
SHARED = pathlib.Path(os.environ.get("PTQ_SHARED", ROOT.parent / "shared"))
QUANTIZE = pathlib.Path(os.environ.get("PTQ_QUANTIZE", ROOT / "build" / "tools" / "quantize"))


def shared(rel):
    """A file under ../shared, or a skip saying it is absent."""
    p = SHARED / rel
    if not p.exists():
        pytest.skip(f"{p} not found: the shared models and data (../shared) are absent")
    return p


@pytest.fixture(scope="session")
def cli():
    """Runs the `quantize` binary; returns (exit code, stdout, stderr)."""
    if not QUANTIZE.exists():
        pytest.skip(f"{QUANTIZE} not built (cmake --build build), needed to compare with the CLI")

    def run(*args):
        p = subprocess.run([str(QUANTIZE), "-q", *map(str, args)], capture_output=True, text=True)
        return p.returncode, p.stdout, p.stderr

    return run


def cli_error(stderr):
    """The CLI's one error line without its "error: " prefix."""
    line = stderr.strip().splitlines()[-1]
    assert line.startswith("error: "), stderr
    return line[len("error: "):]


@pytest.fixture(scope="session")
def mobilenet():
    return shared("models/mobilenetv2/model.onnx")


def imagenet_arrays(n, offset=0):
    """n ImageNet sample images as float32 [1,3,224,224] (plain resize, torchvision mean/std)."""
    from PIL import Image
    folder = shared("data/imagenet-sample")
    files = sorted(folder.glob("*.jpg"))[offset:offset + n]
    mean = np.array([0.485, 0.456, 0.406], np.float32).reshape(3, 1, 1)
    std = np.array([0.229, 0.224, 0.225], np.float32).reshape(3, 1, 1)
    out = []
    for f in files:
        img = np.asarray(Image.open(f).convert("RGB").resize((224, 224), Image.BILINEAR), np.float32)
        out.append(((img.transpose(2, 0, 1) / 255.0 - mean) / std)[None].astype(np.float32))
    return out


@pytest.fixture(scope="session")
def calib_arrays():
    return imagenet_arrays(8)


@pytest.fixture(scope="session")
def eval_arrays():
    return imagenet_arrays(6, offset=500)


def write_npy_folder(folder, arrays):
    folder.mkdir(parents=True, exist_ok=True)
    for i, a in enumerate(arrays):
        np.save(folder / f"{i:04d}.npy", a)
    return folder
