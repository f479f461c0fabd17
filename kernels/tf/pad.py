"""Pad (opset 2, and 11+ with pads, value and axes as inputs): constant, edge, reflect and wrap modes.

Negative pads crop. Constant pads take a fast path: one ``tf.pad`` (or slice)
per axis decided while tracing. Pads computed at run time (and run-time
``axes``) are handled per axis by one gather over the padded index range
``[-begin, size + end)``, mapped into the input by the mode (clipped, reflected
or wrapped; out-of-range positions take the constant value).
"""

from __future__ import annotations

import tensorflow as tf

from kernels.tf import TF
from kernels.tf._util import axis_of, dim, rank, static, static_ints


def _pad_axis(x, axis: int, begin: int, end: int, mode: str, value):
    """Pad (or crop, for negative amounts) one axis."""
    if begin < 0 or end < 0:
        index = [slice(None)] * rank(x)
        index[axis] = slice(max(0, -begin), end if end < 0 else None)
        x = x[tuple(index)]
        begin, end = max(0, begin), max(0, end)
    if not begin and not end:
        return x
    if mode == "constant":
        pads = [[0, 0]] * rank(x)
        pads[axis] = [begin, end]
        return tf.pad(x, pads, constant_values=value)
    n = dim(x, axis)
    idx = tf.range(-begin, n + end)
    if mode == "edge":
        idx = tf.clip_by_value(idx, 0, n - 1)
    elif mode == "wrap":
        idx = tf.math.floormod(idx, n)
    else:  # reflect, the edge itself not repeated
        period = 2 * (n - 1)
        idx = tf.math.floormod(idx, period)
        idx = tf.where(idx >= n, period - idx, idx)
    return tf.gather(x, idx, axis=axis)


def _pad(x, pads: list[int], mode: str, value, axes: list[int] | None = None):
    r = rank(x)
    axes = [axis_of(a, r) for a in axes] if axes is not None else list(range(r))
    k = len(axes)
    if value is None:
        value = tf.zeros([], x.dtype)
    for i, a in enumerate(axes):
        x = _pad_axis(x, a, pads[i], pads[i + k], mode, value)
    return x


def _source_index(idx: tf.Tensor, n, mode: str) -> tf.Tensor:
    """Input positions of padded positions ``idx`` for an axis of size ``n`` (constant: clipped)."""
    if mode == "wrap":
        return tf.math.floormod(idx, n)
    if mode == "reflect":
        period = tf.maximum(2 * (n - 1), 1)
        idx = tf.math.floormod(idx, period)
        return tf.where(idx >= n, period - idx, idx)
    return tf.clip_by_value(idx, 0, n - 1)


def _pad_dynamic(x, pads, mode: str, value, axes):
    """Pad with run-time pads (and axes): one gather per axis of ``x``."""
    r = rank(x)
    pads = tf.cast(tf.reshape(pads, [2, -1]), tf.int32)
    k = tf.shape(pads)[1]
    axes = tf.range(k) if axes is None else tf.cast(tf.reshape(axes, [-1]), tf.int32)
    axes = tf.where(axes < 0, axes + r, axes)
    value = tf.zeros([], x.dtype) if value is None else tf.cast(value, x.dtype)
    for a in range(r):
        named = tf.equal(axes, a)
        begin = tf.reduce_sum(tf.where(named, pads[0], 0))
        end = tf.reduce_sum(tf.where(named, pads[1], 0))
        n = tf.shape(x)[a]
        idx = tf.range(-begin, n + end)
        y = tf.gather(x, _source_index(idx, n, mode), axis=a)
        if mode == "constant":
            inside = tf.reshape((idx >= 0) & (idx < n), [-1] + [1] * (r - 1 - a))
            y = tf.where(inside, y, value)
        x = y
    return x


@TF.register("Pad", since=2)
def pad_2(x, pads, mode: str = "constant", value: float = 0.0):
    return _pad(x, list(pads), mode, tf.cast(value, x.dtype))


@TF.register("Pad", since=11)
def pad(x, pads, constant_value=None, axes=None, mode: str = "constant"):
    value = tf.reshape(constant_value, []) if constant_value is not None else None
    if static(pads) is None or (axes is not None and static(axes) is None):
        return _pad_dynamic(x, pads, mode, value, axes)
    return _pad(x, static_ints(pads, "pads"), mode, value, static_ints(axes, "axes") if axes is not None else None)
