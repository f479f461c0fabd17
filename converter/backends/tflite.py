"""TFLite back end: IR -> SavedModel back end -> TensorFlow's TFLite converter -> ``.tflite``.

Layout work happens in the SavedModel back end (NCHW models run channels-last
inside, with one transpose in and one out), so the flatbuffer has no per-layer
TRANSPOSE pairs; inputs and outputs keep the source's layout. Dynamic dims stay
dynamic where TFLite allows (``resize_tensor_input`` / the signature runner
resizes a symbolic batch). Builtin TFLite ops only by default; ``allow_tf_ops``
permits TF (Flex) ops. Weight precision: ``quantize="fp16"`` or
``"dynamic-int8"``. The result runs with LiteRT (``ai-edge-litert``).
"""

from __future__ import annotations

import os
import pathlib
import re
import tempfile
from typing import Any

import ir
from converter.errors import InputError, UnsupportedOpsError

QUANTIZE_MODES = ("fp16", "dynamic-int8")


def save(
    model: ir.Model,
    path: pathlib.Path,
    *,
    format: str = "tflite",
    quantize: str | None = None,
    allow_tf_ops: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """Write ``model`` as a ``.tflite`` flatbuffer.

    Args:
        model: the IR model (not modified).
        path: the file to write.
        quantize: ``None`` (float32), ``"fp16"`` or ``"dynamic-int8"`` weights.
        allow_tf_ops: allow TF (Flex) ops where TFLite has no builtin.

    Returns:
        ``{"quantize": ..., "flex_ops": [...]}``: the precision and the Flex ops used.

    Raises:
        InputError: an unknown quantization mode or option.
        UnsupportedOpsError: ops TFLite cannot express with builtins (all listed).
    """
    if options:
        raise InputError(f"unknown TFLite back-end option(s): {', '.join(sorted(options))}")
    if quantize is not None and quantize not in QUANTIZE_MODES:
        raise InputError(f"unknown --quantize mode {quantize!r}", f"use one of {', '.join(QUANTIZE_MODES)}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from converter.backends import savedmodel

    with tempfile.TemporaryDirectory(prefix="crossgraph-tflite-") as tmp:
        saved = pathlib.Path(tmp) / "saved_model"
        savedmodel.save(model, saved, format="savedmodel")
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved), signature_keys=["serving_default"])
        ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if allow_tf_ops:
            ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
        converter.target_spec.supported_ops = ops
        if quantize == "fp16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        elif quantize == "dynamic-int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        try:
            flat = converter.convert()
        except Exception as e:  # the converter raises ConverterError with MLIR diagnostics
            raise _unsupported(str(e)) from None
    path.write_bytes(flat)
    return {"quantize": quantize or "float32", "flex_ops": flex_ops(flat)}


_OP_NOT_SUPPORTED = re.compile(r"'(tf\.[A-Za-z0-9_]+)' op is neither a custom op nor a flex op")
_FLEX_NEEDED = re.compile(r"(tf\.[A-Za-z0-9_]+)")


def _unsupported(message: str) -> Exception:
    ops = _OP_NOT_SUPPORTED.findall(message)
    if not ops:
        ops = [m for m in _FLEX_NEEDED.findall(message) if m.startswith("tf.") and m[3:4].isupper()]
    if ops:
        return UnsupportedOpsError(
            "TensorFlow Lite builtin", [(op.removeprefix("tf."), None) for op in ops],
            hint="allow TF (Flex) ops with --tflite-allow-tf-ops, or convert to another format",
        )
    first = next((line for line in message.splitlines() if "error" in line.lower()), message.splitlines()[0] if message else "")
    return InputError(f"the TFLite converter failed: {first.strip()[:400]}")


def flex_ops(flat: bytes) -> list[str]:
    """Names of the TF (Flex) ops a ``.tflite`` flatbuffer uses (custom op codes ``Flex<Op>``)."""
    found = sorted(set(re.findall(rb"Flex([A-Z][A-Za-z0-9]+)", flat)))
    return [f.decode() for f in found]
