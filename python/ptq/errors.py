"""ptq's errors: one class per exit code of the `quantize` CLI, with the message it prints."""


class Error(Exception):
    """Base class of every error ptq raises; ``exit_code`` is what the CLI would exit with."""

    exit_code = 70


class UsageError(Error, ValueError):
    """Bad options or option combinations, an output that would overwrite an input (exit 1)."""

    exit_code = 1


class ModelError(Error):
    """Invalid model: not ONNX, truncated, broken graph, hostile external data (exit 2)."""

    exit_code = 2


InvalidModel = ModelError


class UnsupportedError(Error):
    """A valid model using something ptq cannot handle (exit 3)."""

    exit_code = 3


class DataError(Error, OSError):
    """Data or I/O error: missing or unreadable files, bad or NaN/Inf data, unwritable outputs (exit 5)."""

    exit_code = 5


IoError = DataError


class InternalError(Error):
    """A bug in ptq (exit 70): please report it."""

    exit_code = 70
