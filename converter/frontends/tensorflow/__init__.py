"""The TensorFlow front end: SavedModel, Keras files, frozen GraphDef, live objects.

Every source is traced into a ``tf.function`` with an input signature, converted
by tf2onnx, checked op by op against ONNX (repairing what tf2onnx gets wrong),
upgraded to ``ir.DEFAULT_OPSET``, given symbolic dims and provenance, and
verified. TensorFlow and tf2onnx are imported only when a model is loaded.

Example:
    >>> from converter.frontends import tensorflow as tf_frontend
    >>> model = tf_frontend.load("fixtures/models/tf/cnn.keras", format="keras")  # doctest: +SKIP
    >>> [v.name for v in model.graph.inputs]  # doctest: +SKIP
    ['image']
"""

from __future__ import annotations

import os
from typing import Any

import ir
from converter.errors import InputError

FORMATS = ("savedmodel", "keras", "graphdef", "tf")


def load(
    source: Any,
    *,
    format: str,
    inputs: Any = None,
    signature: str = "serving_default",
    outputs: list[str] | None = None,
    unsafe_load: bool = False,
    **options: Any,
) -> ir.Model:
    """Convert a TensorFlow model into a verified ``ir.Model`` at ``ir.DEFAULT_OPSET``.

    Args:
        source: a path (``savedmodel``: a directory, ``keras``: ``.keras``/``.h5``,
            ``graphdef``: a frozen ``.pb``) or, for ``tf``, a live ``tf.function``,
            ``tf.Module``, concrete function or Keras model.
        format: one of ``"savedmodel"``, ``"keras"``, ``"graphdef"``, ``"tf"``.
        inputs: input specs (:class:`~converter.inputs.InputSpec` or
            ``"NAME:SHAPE[:DTYPE]"``) naming symbols, fixing dims, or giving what
            the source lacks (a GraphDef's inputs, a tf.function's signature).
        signature: the SavedModel signature to convert.
        outputs: the outputs to keep, by name (for a GraphDef: node or tensor names).
        unsafe_load: load Keras files with ``safe_mode=False`` (runs ``Lambda`` code).
        **options: none are defined yet; any given is an error.

    Returns:
        The model; graph inputs and outputs carry the source's names, dynamic
        dims are named symbols (``batch``, ``<input>_<axis>``), every node
        records its TF op or Keras layer name.

    Raises:
        InputError: unknown format or option, unreadable source, missing signature.
        UnsupportedOpsError: TF ops with no ONNX translation, all listed at once.
    """
    if options:
        raise InputError(f"unknown TensorFlow front-end option(s): {', '.join(sorted(options))}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if format == "savedmodel":
        from converter.frontends.tensorflow import savedmodel

        return savedmodel.load(source, signature_name=signature, inputs=inputs, outputs=outputs)
    if format == "keras":
        from converter.frontends.tensorflow import keras

        return keras.load_file(source, inputs=inputs, outputs=outputs, safe_mode=not unsafe_load)
    if format == "graphdef":
        from converter.frontends.tensorflow import graphdef

        return graphdef.load(source, inputs=inputs, outputs=outputs)
    if format == "tf":
        from converter.frontends.tensorflow import function

        return function.from_object(source, inputs=inputs, outputs=outputs)
    raise InputError(f"the TensorFlow front end does not read format {format!r}", f"use one of {', '.join(FORMATS)}")
