"""Reductions, ArgMax/ArgMin, CumSum, TopK.

Reduce ops took their axes as an attribute until opset 18 (ReduceSum: 13) and
as an optional input since; an empty or omitted axes list reduces everything,
unless ``noop_with_empty_axes`` says to return the input unchanged. Axes (and
CumSum's axis) computed at run time are passed to TensorFlow as tensors; only
their count must be known while tracing, since it fixes the output rank.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from kernels.tf import TF
from kernels.tf._util import axis_of, rank, static, static_ints


def _log_sum_exp(x, axes, keepdims):
    return tf.reduce_logsumexp(x, axes, keepdims=keepdims)


#: ONNX reduce op -> (x, axes, keepdims) -> reduced tensor.
_REDUCERS: dict[str, Callable] = {
    "ReduceSum": lambda x, a, k: tf.reduce_sum(x, a, keepdims=k),
    "ReduceMean": lambda x, a, k: tf.reduce_mean(x, a, keepdims=k),
    "ReduceMax": lambda x, a, k: _bool_safe(tf.reduce_max, tf.reduce_any, x, a, k),
    "ReduceMin": lambda x, a, k: _bool_safe(tf.reduce_min, tf.reduce_all, x, a, k),
    "ReduceProd": lambda x, a, k: tf.reduce_prod(x, a, keepdims=k),
    "ReduceL1": lambda x, a, k: tf.reduce_sum(tf.abs(x), a, keepdims=k),
    "ReduceL2": lambda x, a, k: tf.sqrt(tf.reduce_sum(tf.square(x), a, keepdims=k)),
    "ReduceSumSquare": lambda x, a, k: tf.reduce_sum(tf.square(x), a, keepdims=k),
    "ReduceLogSum": lambda x, a, k: tf.math.log(tf.reduce_sum(x, a, keepdims=k)),
    "ReduceLogSumExp": _log_sum_exp,
}

#: The opset from which each reduce op takes its axes as an input.
_AXES_INPUT_SINCE = {op: (13 if op == "ReduceSum" else 18) for op in _REDUCERS}


def _bool_safe(fn, bool_fn, x, axes, keepdims):
    if x.dtype == tf.bool:
        return bool_fn(x, axes, keepdims=keepdims)
    return fn(x, axes, keepdims=keepdims)


def _reduce(op: str, x, axes, keepdims: int, noop_with_empty_axes: int):
    if not axes:
        if noop_with_empty_axes:
            return tf.identity(x)
        axes = None
    else:
        axes = [axis_of(a, rank(x)) for a in axes]
    return _REDUCERS[op](x, axes, bool(keepdims))


def _reduce_dynamic(op: str, x, axes, keepdims: int, noop_with_empty_axes: int):
    """Reduce over axes computed at run time; their count (the axes input's length) must be static."""
    count = axes.shape.num_elements()
    if count is None:
        raise ValueError("the number of axes must be known while tracing")
    if count == 0:
        return _reduce(op, x, [], keepdims, noop_with_empty_axes)
    r = rank(x)
    axes = tf.reshape(tf.cast(axes, tf.int32), [-1])
    axes = tf.where(axes < 0, axes + r, axes)
    y = _REDUCERS[op](x, axes, bool(keepdims))
    y.set_shape([None] * (r if keepdims else r - count))
    return y


def _register(op: str) -> None:
    def with_attribute(x, axes=None, keepdims: int = 1, noop_with_empty_axes: int = 0):
        return _reduce(op, x, list(axes or []), keepdims, noop_with_empty_axes)

    def with_input(x, axes=None, keepdims: int = 1, noop_with_empty_axes: int = 0):
        if axes is not None and static(axes) is None:
            return _reduce_dynamic(op, x, axes, keepdims, noop_with_empty_axes)
        values = static_ints(axes, "axes") if axes is not None else []
        return _reduce(op, x, values, keepdims, noop_with_empty_axes)

    name = "".join("_" + c.lower() if c.isupper() else c for c in op).lstrip("_")
    for fn, suffix in ((with_attribute, "_1"), (with_input, "")):
        fn.__name__ = fn.__qualname__ = name + suffix
    TF.register(op, since=1)(with_attribute)
    TF.register(op, since=_AXES_INPUT_SINCE[op])(with_input)


for _op in _REDUCERS:
    _register(_op)


def _arg(fn, x, axis: int, keepdims: int, select_last_index: int):
    r = rank(x)
    axis = axis_of(axis, r)
    if select_last_index:
        flipped = tf.reverse(x, [axis])
        idx = tf.cast(tf.shape(x, out_type=tf.int64)[axis] - 1, tf.int64) - fn(flipped, axis, output_type=tf.int64)
    else:
        idx = fn(x, axis, output_type=tf.int64)
    return tf.expand_dims(idx, axis) if keepdims else idx


@TF.register("ArgMax", since=1)
def arg_max(x, axis: int = 0, keepdims: int = 1, select_last_index: int = 0):
    return _arg(tf.argmax, x, axis, keepdims, select_last_index)


@TF.register("ArgMin", since=1)
def arg_min(x, axis: int = 0, keepdims: int = 1, select_last_index: int = 0):
    return _arg(tf.argmin, x, axis, keepdims, select_last_index)


def _scan_axis(x, axis):
    """A CumSum/CumProd axis: a Python int when constant, else a scalar tensor (negative allowed)."""
    if static(axis) is not None:
        return axis_of(static_ints(axis, "axis")[0], rank(x))
    return tf.reshape(tf.cast(axis, tf.int32), [])


@TF.register("CumSum", since=11)
def cum_sum(x, axis, exclusive: int = 0, reverse: int = 0):
    return tf.cumsum(x, _scan_axis(x, axis), exclusive=bool(exclusive), reverse=bool(reverse))


@TF.register("CumProd", since=26)
def cum_prod(x, axis, exclusive: int = 0, reverse: int = 0):
    return tf.math.cumprod(x, _scan_axis(x, axis), exclusive=bool(exclusive), reverse=bool(reverse))


@TF.register("TopK", since=10)  # as 11, always largest first and sorted
@TF.register("TopK", since=11)
def top_k(x, k, axis: int = -1, largest: int = 1, sorted: int = 1):  # noqa: A002
    # tf.math.top_k works on the last axis and keeps the lower index first among ties, as ONNX.
    r = rank(x)
    axis = axis_of(axis, r)
    perm = [*range(axis), *range(axis + 1, r), axis]
    moved = tf.transpose(x, perm) if axis != r - 1 else x
    kk = tf.cast(tf.reshape(k, []), tf.int32)
    if largest:
        values, indices = tf.math.top_k(moved, kk)
    else:
        keys = -moved if not moved.dtype.is_unsigned else moved.dtype.max - moved
        _, indices = tf.math.top_k(keys, kk)
        values = tf.gather(moved, indices, batch_dims=r - 1)
    if axis != r - 1:
        inverse = [perm.index(i) for i in range(r)]
        values, indices = tf.transpose(values, inverse), tf.transpose(indices, inverse)
    return values, tf.cast(indices, tf.int64)


@TF.register("TopK", since=1)
def top_k_1(x, axis: int = -1, k: int = 1):
    """TopK before 10: ``k`` is an attribute, the largest values come first, sorted."""
    return top_k(x, tf.constant(k, tf.int64), axis)
