"""TFLite back end: IR -> SavedModel back end -> TensorFlow's TFLite converter -> ``.tflite``.

Layout work happens in the SavedModel back end (NCHW models run channels-last
inside, with one transpose in and one out), so the flatbuffer has no per-layer
TRANSPOSE pairs; inputs and outputs keep the source's layout unless
``nhwc_io=True``, which puts Transpose nodes on the IR's 4-D inputs and outputs
so that the layout tracking absorbs the last two transposes as well
(:mod:`.layout`).

Dynamic dims stay dynamic where TFLite allows (``resize_tensor_input`` / the
signature runner resizes a symbolic batch). ``specialize={"seq": 128}`` rewrites
symbols to static sizes first (:mod:`.dims`), for dims TFLite cannot keep
dynamic, or for a smaller, faster file: with every dim static the converter
folds the shape arithmetic that dynamic dims need at run time. When a
conversion fails and fixing the symbols would make it pass, the error names the
dims and the ``--input`` flag that gives them sizes (:mod:`.diagnose`).

Builtin TFLite ops only by default; ``allow_tf_ops`` permits TF (Flex) ops.
Weight precision (:mod:`.quantize`): ``quantize="fp16"``, ``"dynamic-int8"``, or
``"int8"`` (full integer, calibrated on ``representative_data``, a ``.npz`` of
input arrays whose first axis indexes samples; inputs and outputs stay
float32). A failed conversion lists every offending IR node by its source name.
The result runs with LiteRT (``ai-edge-litert``); a ``crossgraph`` metadata
entry records the I/O layouts and specialized dims (:func:`read_metadata`).

Example:
    >>> from converter.backends import tflite
    >>> tflite.save(model, pathlib.Path("m.tflite"), nhwc_io=True, specialize={"seq": 8})  # doctest: +SKIP
    {'quantize': 'float32', 'flex_ops': [], 'specialized': {'seq': 8}, 'nhwc_io': ['x']}
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping
from typing import Any

import ir
from converter.backends.tflite.diagnose import convert_or_diagnose
from converter.backends.tflite.dims import sizes_from_specs, specialize_dims
from converter.backends.tflite.flatbuffer import (
    METADATA_NAME,
    flex_ops,
    read_metadata,
    with_metadata,
)
from converter.backends.tflite.layout import TO_NCHW, TO_NHWC, wrap_nhwc_io
from converter.backends.tflite.quantize import QUANTIZE_MODES, check_quantize, representative
from converter.errors import InputError

__all__ = [
    "METADATA_NAME", "QUANTIZE_MODES", "TO_NCHW", "TO_NHWC", "flex_ops", "read_metadata", "save",
    "sizes_from_specs", "specialize_dims", "wrap_nhwc_io",
]


def save(
    model: ir.Model,
    path: pathlib.Path,
    *,
    format: str = "tflite",  # noqa: A002
    quantize: str | None = None,
    allow_tf_ops: bool = False,
    nhwc_io: bool = False,
    specialize: Mapping[str, int] | None = None,
    representative_data: str | os.PathLike | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Write ``model`` as a ``.tflite`` flatbuffer.

    Args:
        model: the IR model (not modified).
        path: the file to write (nothing is written on failure).
        quantize: ``None`` (float32), ``"fp16"``, ``"dynamic-int8"`` or ``"int8"``.
        allow_tf_ops: allow TF (Flex) ops where TFLite has no builtin.
        nhwc_io: 4-D inputs and outputs channels-last (NHWC) instead of the source's NCHW.
        specialize: ``{symbol: size}``: dims made static before export.
        representative_data: ``.npz`` of calibration inputs (``quantize="int8"`` only).

    Returns:
        ``{"quantize": ..., "flex_ops": [...]}``, plus ``"specialized": {symbol: size}``
        and ``"nhwc_io": [names]`` when those apply.

    Raises:
        InputError: an unknown option, quantization mode or symbol; calibration data
            that does not fit; dims TFLite cannot keep dynamic (named, with the flag).
        UnsupportedOpsError: nodes TFLite cannot express (all listed, with source names).
    """
    options.pop("opset", None)  # the API forwards --opset to every back end
    if options:
        raise InputError(f"unknown TFLite back-end option(s): {', '.join(sorted(options))}")
    check_quantize(quantize, representative_data)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    specialized = dict(specialize or {})
    if specialized or nhwc_io:
        model = model.clone()
    if specialized:
        specialize_dims(model, specialized)
    layouts = wrap_nhwc_io(model) if nhwc_io else {}
    settings = {"quantize": quantize, "allow_tf_ops": allow_tf_ops,
                "representative": representative(representative_data, model, layouts)}
    flat = convert_or_diagnose(model, settings)
    if specialized or layouts:
        flat = with_metadata(flat, {"specialized": specialized, "io_layouts": layouts})
    pathlib.Path(path).write_bytes(flat)
    info: dict[str, Any] = {"quantize": quantize or "float32", "flex_ops": flex_ops(flat)}
    if specialized:
        info["specialized"] = specialized
    if layouts:
        info["nhwc_io"] = sorted({name for side in layouts.values() for name in side})
    return info
