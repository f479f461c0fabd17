"""Shape and layout kernels: Reshape, Transpose, (Un)Squeeze, Flatten, Concat, Split, Slice, Expand, Tile, Pad.

Shape-like inputs (Reshape's shape, Slice's starts, Squeeze's axes) may be
tensors computed at run time; kernels that need them as Python values while
tracing (``axes``) require constants and say so.
"""

from __future__ import annotations

import tensorflow as tf

from kernels.tf import TF
from kernels.tf._util import BIG, axis_of, dim, dims, prod, rank, shape64, static, static_ints


@TF.register("Reshape", since=5)
def reshape(x, shape, allowzero: int = 0):
    target = static(shape)
    if target is not None:
        values = [int(v) for v in target.reshape(-1)]
        if not allowzero and 0 in values:
            values = [dim(x, i) if v == 0 else v for i, v in enumerate(values)]
            if not all(isinstance(v, int) for v in values):
                return tf.reshape(x, tf.stack([tf.cast(v, tf.int64) for v in values]))
        return tf.reshape(x, values)
    shape = tf.cast(shape, tf.int64)
    if not allowzero:
        n = shape.shape[0]
        current = tf.concat([shape64(x), tf.ones([tf.maximum(n - tf.rank(x), 0)], tf.int64)], 0)[:n]
        shape = tf.where(tf.equal(shape, 0), current, shape)
    return tf.reshape(x, shape)


@TF.register("Transpose")
def transpose(x, perm=None):
    return tf.transpose(x, perm if perm is not None else list(reversed(range(rank(x)))))


@TF.register("Squeeze", since=1)
def squeeze_1(x, axes=None):
    if not axes:
        return tf.squeeze(x)
    return tf.squeeze(x, [axis_of(a, rank(x)) for a in axes])


@TF.register("Squeeze", since=13)
def squeeze(x, axes=None):
    return squeeze_1(x, static_ints(axes, "axes") if axes is not None else None)


@TF.register("Unsqueeze", since=1)
def unsqueeze_1(x, axes):
    out_rank = rank(x) + len(axes)
    for a in sorted(axis_of(int(a), out_rank) for a in axes):
        x = tf.expand_dims(x, a)
    return x


@TF.register("Unsqueeze", since=13)
def unsqueeze(x, axes):
    return unsqueeze_1(x, static_ints(axes, "axes"))


@TF.register("Flatten")
def flatten(x, axis: int = 1):
    d = dims(x)
    axis = axis_of(axis, len(d))
    return tf.reshape(x, [prod(d[:axis]) if axis else 1, -1] if axis < len(d) else [-1, 1])


@TF.register("Concat", since=4)
def concat(inputs, axis: int):
    return tf.concat(inputs, axis_of(axis, rank(inputs[0])))


def _split_sizes(x, axis: int, split, num_outputs: int) -> list:
    if split is not None:
        return static_ints(split, "split")
    size = x.shape[axis]
    if size is None:
        return num_outputs  # even split at run time
    chunk = -(-size // num_outputs)  # the last chunk may be smaller (opset 18)
    return [min(chunk, size - i * chunk) for i in range(num_outputs)]


@TF.register("Split", since=2)
def split_2(x, axis: int = 0, split=None, num_outputs: int = 1):
    axis = axis_of(axis, rank(x))
    return list(tf.split(x, _split_sizes(x, axis, split, num_outputs), axis))


@TF.register("Split", since=13)
def split(x, split=None, axis: int = 0, num_outputs: int = 1):
    return split_2(x, axis, split, num_outputs)


def _strided_slice(x, starts, ends, axes, steps):
    """ONNX Slice as one strided slice: TensorFlow clamps indices the way ONNX does."""
    r = rank(x)
    axes = [axis_of(a, r) for a in axes]
    begin, end, stride = [0] * r, [0] * r, [1] * r
    untouched = set(range(r)) - set(axes)
    for i, a in enumerate(axes):
        begin[a], end[a], stride[a] = starts[i], ends[i], steps[i]
    mask = sum(1 << a for a in untouched)
    for a in axes:  # out-of-range int64 literals ("to the end") are clamped here
        if isinstance(end[a], int):
            end[a] = max(-BIG, min(BIG, end[a]))
        if isinstance(begin[a], int):
            begin[a] = max(-BIG, min(BIG, begin[a]))
    pack = (lambda v: tf.stack([tf.cast(e, tf.int64) for e in v])) if not all(
        isinstance(e, int) for e in begin + end) else (lambda v: tf.constant(v, tf.int64))
    return tf.strided_slice(x, pack(begin), pack(end), tf.constant(stride, tf.int64), begin_mask=mask, end_mask=mask)


@TF.register("Slice", since=1)
def slice_1(x, starts, ends, axes=None):
    axes = list(axes) if axes is not None else list(range(len(starts)))
    return _strided_slice(x, list(starts), list(ends), axes, [1] * len(starts))


def _elements(t) -> list:
    value = static(t)
    if value is not None:
        return [int(v) for v in value.reshape(-1)]
    return tf.unstack(tf.cast(t, tf.int64))


@TF.register("Slice", since=10)
def slice_(x, starts, ends, axes=None, steps=None):
    s, e = _elements(starts), _elements(ends)
    a = static_ints(axes, "axes") if axes is not None else list(range(len(s)))
    st = static_ints(steps, "steps") if steps is not None else [1] * len(s)
    return _strided_slice(x, s, e, a, st)


@TF.register("Expand", since=8)
def expand(x, shape):
    target = tf.broadcast_dynamic_shape(shape64(x), tf.cast(shape, tf.int64))
    return tf.broadcast_to(x, target)


@TF.register("Tile", since=6)
def tile(x, repeats):
    return tf.tile(x, repeats)


def _pad_axis(x, axis: int, begin: int, end: int, mode: str, value):
    """Pad (or crop, for negative amounts) one axis."""
    if begin < 0 or end < 0:
        index = [slice(None)] * rank(x)
        index[axis] = slice(max(0, -begin), -end if end < 0 else None)
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


@TF.register("Pad", since=2)
def pad_2(x, pads, mode: str = "constant", value: float = 0.0):
    return _pad(x, list(pads), mode, tf.cast(value, x.dtype))


@TF.register("Pad", since=11)
def pad(x, pads, constant_value=None, axes=None, mode: str = "constant"):
    value = tf.reshape(constant_value, []) if constant_value is not None else None
    return _pad(x, static_ints(pads, "pads"), mode, value, static_ints(axes, "axes") if axes is not None else None)


@TF.register("Shape", since=1)
def shape(x, start: int = 0, end=None):
    return shape64(x)[start:end]


@TF.register("Size")
def size(x):
    return tf.size(x, out_type=tf.int64)
