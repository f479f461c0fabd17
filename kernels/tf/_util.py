"""Helpers shared by the TensorFlow kernel families: dtypes, axes, static values."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import tensorflow as tf

import ir

#: Larger than any dimension: ONNX models spell "to the end" as INT64_MAX.
BIG = 2**62

_builtins_only = False


@contextlib.contextmanager
def tflite_builtins() -> Iterator[None]:
    """Trace inside for TFLite: kernels whose TensorFlow op has no TFLite builtin (Erf)
    compute it with ops that have one (the TFLite back end traces in this mode)."""
    global _builtins_only
    saved, _builtins_only = _builtins_only, True
    try:
        yield
    finally:
        _builtins_only = saved


def builtins_only() -> bool:
    """Whether the kernels are traced for TFLite's builtin ops (see :func:`tflite_builtins`)."""
    return _builtins_only


def tf_dtype(onnx_type: int) -> tf.DType:
    """The TensorFlow dtype of an ONNX ``TensorProto`` data type number."""
    dtype = ir.DataType(onnx_type)
    if dtype == ir.DataType.STRING:
        return tf.string
    return tf.as_dtype(dtype.numpy())


def static(t: Any) -> np.ndarray | None:
    """The value of ``t`` when it is known while tracing (constants, folded shapes), else None."""
    if t is None:
        return None
    if isinstance(t, (np.ndarray, int, float, list, tuple)):
        return np.asarray(t)
    return tf.get_static_value(t)


def static_ints(t: Any, what: str = "value") -> list[int]:
    """``t`` as a list of Python ints; raises ValueError when it is not known while tracing."""
    value = static(t)
    if value is None:
        raise ValueError(f"the {what} must be a constant (it is computed at run time here)")
    return [int(v) for v in np.asarray(value).reshape(-1)]


def rank(x: tf.Tensor) -> int:
    r = x.shape.rank
    if r is None:
        raise ValueError("the input rank must be known")
    return r


def axis_of(axis: int, r: int) -> int:
    """A possibly negative ONNX axis as an index in ``[0, r)``."""
    return axis + r if axis < 0 else axis


def dim(x: tf.Tensor, i: int) -> Any:
    """Size of axis ``i``: a Python int when static, else a scalar int32 tensor."""
    d = x.shape[i]
    return d if d is not None else tf.shape(x)[i]


def dims(x: tf.Tensor) -> list[Any]:
    return [dim(x, i) for i in range(rank(x))]


def shape64(x: tf.Tensor) -> tf.Tensor:
    return tf.shape(x, out_type=tf.int64)


def prod(values: list[Any]) -> Any:
    """Product of static ints and scalar tensors (a Python int when all are static)."""
    out: Any = 1
    for v in values:
        if isinstance(out, int) and isinstance(v, int):
            out *= v
        else:
            out = tf.cast(out, tf.int32) * tf.cast(v, tf.int32)
    return out


def channels_last_perm(r: int) -> list[int]:
    """NC... -> N...C."""
    return [0, *range(2, r), 1]


def channels_first_perm(r: int) -> list[int]:
    """N...C -> NC...."""
    return [0, r - 1, *range(1, r - 1)]


def to_channels_last(x: tf.Tensor) -> tf.Tensor:
    return tf.transpose(x, channels_last_perm(rank(x)))


def to_channels_first(x: tf.Tensor) -> tf.Tensor:
    return tf.transpose(x, channels_first_perm(rank(x)))
