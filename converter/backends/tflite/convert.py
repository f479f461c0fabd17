"""IR -> SavedModel (the SavedModel back end) -> TensorFlow's TFLite converter -> flatbuffer bytes."""

from __future__ import annotations

import pathlib
import tempfile
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
        savedmodel.save(model, saved, format="savedmodel", loops="growing")  # no TensorLists: see kernels.tf.accumulate
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved), signature_keys=["serving_default"])
        _quantize.configure(converter, settings["quantize"], settings["representative"], settings["allow_tf_ops"])
        try:
            return converter.convert()
        except Exception as e:  # ConverterError with MLIR diagnostics, or a calibration failure
            raise ConverterFailed(str(e)) from None
