"""IR -> SavedModel (the SavedModel back end) -> TensorFlow's TFLite converter -> flatbuffer bytes.

The converter's C++ side writes its MLIR diagnostics (a screenful of
``loc(...)`` lines on a failure) straight to file descriptor 2: they are
captured while it runs, so the user's stderr stays clean, and a failure carries
them in its message, where :mod:`.diagnose` turns them into one error.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import ir
from converter.backends.tflite import quantize as _quantize


class ConverterFailed(Exception):
    """The TFLite converter refused the model; ``message`` holds its MLIR diagnostics."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def convert(model: ir.Model, settings: dict[str, Any]) -> bytes:
    """The ``.tflite`` bytes of ``model``.

    Args:
        model: the IR model (not modified), in the layout and shapes to export.
        settings: ``quantize``, ``representative`` (a calibration generator or None)
            and ``allow_tf_ops``.

    Raises:
        ConverterFailed: the converter (or calibration) failed.
    """
    import tensorflow as tf

    from converter.backends import savedmodel

    with tempfile.TemporaryDirectory(prefix="crossgraph-tflite-") as tmp:
        saved = pathlib.Path(tmp) / "saved_model"
        # No TensorLists (see kernels.tf.accumulate), and builtins for ops TFLite lacks (Erf).
        savedmodel.save(model, saved, format="savedmodel", loops="growing", tflite_builtins=True)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved), signature_keys=["serving_default"])
        _quantize.configure(converter, settings["quantize"], settings["representative"], settings["allow_tf_ops"])
        with captured_stderr() as stderr:
            try:
                return converter.convert()
            except Exception as e:  # ConverterError with MLIR diagnostics, or a calibration failure
                message = _with_diagnostics(str(e), stderr.read_text(errors="replace"))
        raise ConverterFailed(message)


def _with_diagnostics(message: str, stderr: str) -> str:
    """``message`` followed by the captured error lines it does not hold already."""
    extra = [line for line in stderr.splitlines() if "error" in line and line not in message]
    return "\n".join([message, *extra]) if extra else message


@contextlib.contextmanager
def captured_stderr() -> Iterator[pathlib.Path]:
    """Send file descriptor 2 (where C++ code logs) to a temporary file for the block; yields its path.

    Read the file inside the block: it goes with its temporary directory.
    """
    sys.stderr.flush()
    with tempfile.TemporaryDirectory(prefix="crossgraph-stderr-") as tmp:
        path = pathlib.Path(tmp) / "stderr.txt"
        saved = os.dup(2)
        try:
            with open(path, "wb") as sink:
                os.dup2(sink.fileno(), 2)
                try:
                    yield path
                finally:
                    sys.stderr.flush()
                    os.dup2(saved, 2)
        finally:
            os.close(saved)
