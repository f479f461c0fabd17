"""Trace-time stand-ins for Keras 3 layers whose TensorFlow graph tf2onnx mistranslates.

While a live Keras model is traced for conversion, each layer whose class is in
:data:`STAND_INS` computes the same function through a graph tf2onnx handles;
:func:`stand_ins` installs them on the model's layer objects and restores the
layers' own ``call`` afterwards. A stand-in returns ``None`` to fall back to the
layer's own ``call`` for inputs it does not cover.

Stand-ins, keyed by Keras class name:

    TimeDistributed, dynamic time axis: Keras 3 maps the inner layer over time
        with ``tf.vectorized_map``; tf2onnx converts pfor's fallback while-loop
        with the batch size as its trip count (the output has ``batch`` steps).
        The stand-in folds time into the batch (``[B, T, ...] -> [B*T, ...]``),
        calls the inner layer once and unfolds the result, as Keras 2 did.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

#: ``{Keras class name: stand_in(layer, inputs, training, mask) -> outputs or None}``.
STAND_INS: dict[str, Callable[..., Any]] = {}


def stand_in(class_name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated function as the trace-time stand-in of Keras class ``class_name``."""

    def register(function: Callable[..., Any]) -> Callable[..., Any]:
        STAND_INS[class_name] = function
        return function

    return register


@contextlib.contextmanager
def stand_ins(model: Any) -> Iterator[int]:
    """Within the block, the layers of ``model`` that have a stand-in call it; yields how many.

    Only Keras 3 layers are touched (Keras 2 models keep their own code); each
    layer's ``call`` is an instance attribute for the duration and is removed after.
    """
    layers = [layer for layer in _keras3_layers(model) if type(layer).__name__ in STAND_INS]
    saved = {id(layer): vars(layer).get("call") for layer in layers}
    for layer in layers:
        layer.call = _calling(STAND_INS[type(layer).__name__], layer, layer.call)
    try:
        yield len(layers)
    finally:
        for layer in layers:
            vars(layer).pop("call", None)
            if saved[id(layer)] is not None:
                layer.call = saved[id(layer)]


def _calling(function: Callable[..., Any], layer: Any, own: Callable[..., Any]) -> Callable[..., Any]:
    def call(inputs: Any, training: Any = None, mask: Any = None) -> Any:
        result = function(layer, inputs, training, mask)
        return own(inputs, training=training, mask=mask) if result is None else result

    return call


def _keras3_layers(model: Any) -> list[Any]:
    import keras

    if not isinstance(model, keras.layers.Layer):
        return []
    return list(model._flatten_layers(include_self=False, recursive=True))


@stand_in("TimeDistributed")
def time_distributed(layer: Any, inputs: Any, training: Any, mask: Any) -> Any:
    """The inner layer on ``[B*T, ...]``, reshaped back to ``[B, T, ...]`` (dynamic ``T`` only)."""
    import tensorflow as tf

    if not tf.is_tensor(inputs) or inputs.shape.rank is None or inputs.shape.rank < 2 or inputs.shape[1] is not None:
        return None  # a static time axis: Keras unrolls it, which converts as it is
    inner = layer.layer
    shape = tf.shape(inputs)
    batch, steps = shape[0], shape[1]
    kwargs = {}
    if inner._call_has_mask_arg and mask is not None:
        kwargs["mask"] = _fold(mask)
    if inner._call_has_training_arg:
        kwargs["training"] = training
    outputs = inner.call(_fold(inputs), **kwargs)
    if not tf.is_tensor(outputs):
        return None
    return tf.reshape(outputs, [batch, steps, *_dims(outputs, 1)])


def _fold(tensor: Any) -> Any:
    """``[B, T, ...] -> [B*T, ...]``, keeping the static trailing dims."""
    import tensorflow as tf

    return tf.reshape(tensor, [-1, *_dims(tensor, 2)])


def _dims(tensor: Any, start: int) -> list[Any]:
    """The dims of ``tensor`` from ``start``: ints where static, scalars of ``tf.shape`` elsewhere."""
    import tensorflow as tf

    dynamic = tf.shape(tensor)
    return [d if d is not None else dynamic[i] for i, d in enumerate(tensor.shape.as_list()) if i >= start]
