"""Indexing and tensor-creation kernels: Gather*, Scatter*, Constant*, Range, OneHot, Trilu, ..."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from kernels.tf import TF
from kernels.tf._util import axis_of, rank, shape64, static, tf_dtype


def _wrap(indices, size):
    """Negative indices count from the end, as in ONNX."""
    indices = tf.cast(indices, tf.int64)
    return tf.where(indices < 0, indices + tf.cast(size, tf.int64), indices)


def _non_negative(indices, depth: int = 0) -> bool:
    """Whether ``indices`` cannot be negative: constants >= 0, sizes (Shape, Size), ArgMax/ArgMin,
    a Range from >= 0 by a step > 0, or elements of these."""
    value = static(indices)
    if value is not None:
        return bool(np.all(np.asarray(value) >= 0))
    op = getattr(indices, "op", None)
    if op is None or depth > 16:
        return False
    if op.type in ("Shape", "Size", "ArgMax", "ArgMin"):
        return True
    if op.type == "Range":
        start, delta = static(op.inputs[0]), static(op.inputs[2])
        return start is not None and delta is not None and start >= 0 and delta > 0
    if op.type in ("Identity", "Cast", "Reshape", "Squeeze", "ExpandDims", "StridedSlice", "GatherV2"):
        return _non_negative(op.inputs[0], depth + 1)
    return False


@TF.register("Gather", since=1)
def gather(data, indices, axis: int = 0):
    axis = axis_of(axis, rank(data))
    if _non_negative(indices):  # no run-time wrap (LESS, ADD, SELECT in TFLite)
        return tf.gather(data, indices, axis=axis)
    value, size = static(indices), data.shape[axis]
    if value is not None and size is not None:  # constant indices wrapped while tracing
        return tf.gather(data, np.where(value < 0, value + size, value), axis=axis)
    return tf.gather(data, _wrap(indices, tf.shape(data, out_type=tf.int64)[axis]), axis=axis)


def _element_coordinates(indices, data, axis: int):
    """Full coordinates [..., r] for per-element indexing along ``axis``."""
    r = rank(indices)
    idx = _wrap(indices, tf.shape(data, out_type=tf.int64)[axis])
    # tf.shape is int32 and unstacks in TFLite (it has no int64 UNPACK); the grids are int64.
    sizes = tf.unstack(tf.shape(indices), num=r)
    grids = tf.meshgrid(*[tf.range(tf.cast(n, tf.int64), dtype=tf.int64) for n in sizes], indexing="ij")
    grids[axis] = idx
    return tf.stack(grids, -1)


@TF.register("GatherElements", since=11)
def gather_elements(data, indices, axis: int = 0):
    axis = axis_of(axis, rank(data))
    return tf.gather_nd(data, _element_coordinates(indices, data, axis))


@TF.register("GatherND", since=11)
def gather_nd(data, indices, batch_dims: int = 0):
    k = indices.shape[-1]
    if k is None:  # an index width known only when run (indices from a Tile of run-time multiples)
        k = tf.shape(indices)[-1]
    sizes = tf.shape(data, out_type=tf.int64)[batch_dims:batch_dims + k]
    return tf.gather_nd(data, _wrap(indices, sizes), batch_dims=batch_dims)


def _scatter_nd_mul(data, coordinates, updates):
    """TensorFlow has no multiplying scatter: multiply ``data`` by the product of the updates
    landing on each element (``unsorted_segment_prod`` over flat positions; 1 where none land)."""
    k = coordinates.shape[-1]
    shape = shape64(data)
    strides = tf.math.cumprod(shape[:k], reverse=True, exclusive=True)
    slots = tf.reduce_sum(tf.cast(coordinates, tf.int64) * strides, -1)  # which slice of data each update hits
    inner = tf.reduce_prod(shape[k:])
    flat = tf.reshape(updates, tf.stack([-1, inner]))
    factors = tf.math.unsorted_segment_prod(flat, tf.reshape(slots, [-1]), tf.reduce_prod(shape[:k]))
    return data * tf.reshape(factors, shape)


_SCATTER = {
    "none": tf.tensor_scatter_nd_update,
    "add": tf.tensor_scatter_nd_add,
    "max": tf.tensor_scatter_nd_max,
    "min": tf.tensor_scatter_nd_min,
    "mul": _scatter_nd_mul,
}


def _scatter(reduction: str):
    if reduction not in _SCATTER:
        raise NotImplementedError(f"scatter reduction {reduction!r} is not implemented")
    return _SCATTER[reduction]


@TF.register("ScatterElements", since=11)
def scatter_elements(data, indices, updates, axis: int = 0, reduction: str = "none"):
    axis = axis_of(axis, rank(data))
    return _scatter(reduction)(data, _element_coordinates(indices, data, axis), updates)


@TF.register("Scatter", since=9)
def scatter(data, indices, updates, axis: int = 0):
    """The deprecated name of ScatterElements (opsets 9-10)."""
    return scatter_elements(data, indices, updates, axis)


@TF.register("BitCast", since=26)
def bit_cast(x, to: int):
    """Reinterpret the bits of each element as another type of the same width."""
    target = tf_dtype(to)
    if x.dtype == tf.bool:  # one byte holding 0 or 1; tf.bitcast has no bool
        return tf.cast(x, target) if target != tf.bool else x
    if target == tf.bool:
        return tf.not_equal(x, tf.zeros([], x.dtype))
    return tf.bitcast(x, target)


@TF.register("ScatterND", since=11)
def scatter_nd(data, indices, updates, reduction: str = "none"):
    k = indices.shape[-1]
    return _scatter(reduction)(data, _wrap(indices, tf.shape(data, out_type=tf.int64)[:k]), updates)


@TF.register("Constant", since=1)
def constant(value=None, value_float=None, value_floats=None, value_int=None, value_ints=None,
             value_string=None, value_strings=None, sparse_value=None):
    if value is not None:
        return value
    if sparse_value is not None:
        raise NotImplementedError("sparse Constant")
    for v, dtype in ((value_float, tf.float32), (value_floats, tf.float32), (value_int, tf.int64),
                     (value_ints, tf.int64), (value_string, tf.string), (value_strings, tf.string)):
        if v is not None:
            return tf.constant(v, dtype)
    raise ValueError("Constant has no value")


@TF.register("ConstantOfShape", since=9)
def constant_of_shape(shape, value=None):
    fill = tf.reshape(value, []) if value is not None else tf.constant(0.0, tf.float32)
    return tf.fill(tf.cast(shape, tf.int64), fill)


@TF.register("Range", since=11)
def range_(start, limit, delta):
    dtype = tf.as_dtype(start.dtype)
    start, limit, delta = (_scalar(v) for v in (start, limit, delta))
    return tf.range(start, limit, delta, dtype=dtype)


def _scalar(v):
    """A 1-element tensor as a scalar: a numpy one when known while tracing (so the Range's
    constant bounds stay visible to ``_non_negative`` and TFLite gets no RESHAPE of them)."""
    value = static(v)
    return np.asarray(value).reshape(()) if value is not None else tf.reshape(v, [])


@TF.register("OneHot", since=11)
def one_hot(indices, depth, values, axis: int = -1):
    d = tf.cast(tf.reshape(depth, []), tf.int64)
    idx = tf.cast(indices, tf.int64)
    idx = tf.where(idx < 0, idx + d, idx)
    axis = axis_of(axis, rank(indices) + 1)
    return tf.one_hot(idx, tf.cast(d, tf.int32), on_value=values[1], off_value=values[0], axis=axis)


@TF.register("NonZero", since=9)
def non_zero(x):
    return tf.transpose(tf.where(tf.cast(x, tf.bool) if x.dtype != tf.bool else x))


def _diagonal_offsets(x):
    """[rows, cols] column minus row index; the row range alone is reshaped, the column one broadcasts."""
    shape = tf.shape(x, out_type=tf.int64)
    rows = tf.reshape(tf.range(shape[-2]), [-1, 1])
    return tf.range(shape[-1]) - rows


@TF.register("Trilu", since=14)
def trilu(x, k=None, upper: int = 1):
    kk = 0 if k is None else _scalar(k)
    kk = tf.cast(kk, tf.int64) if isinstance(kk, tf.Tensor) else int(kk)
    offsets = _diagonal_offsets(x)
    keep = offsets >= kk if upper else offsets <= kk
    return tf.where(keep, x, tf.zeros([], x.dtype))  # a scalar zero: SELECT_V2 broadcasts it


@TF.register("EyeLike", since=9)
def eye_like(x, dtype=None, k: int = 0):
    out = tf_dtype(dtype) if dtype is not None else x.dtype
    return tf.cast(tf.equal(_diagonal_offsets(x), k), out)


def _blocks(x, blocksize: int, to_depth: bool, mode: str):
    """DepthToSpace / SpaceToDepth on NCHW by reshape and transpose."""
    b = blocksize
    n, c, h, w = tf.unstack(tf.shape(x), num=4)
    if to_depth:
        t = tf.reshape(x, tf.stack([n, c, h // b, b, w // b, b]))
        t = tf.transpose(t, [0, 3, 5, 1, 2, 4])
        return tf.reshape(t, tf.stack([n, c * b * b, h // b, w // b]))
    if mode == "DCR":
        t = tf.reshape(x, tf.stack([n, b, b, c // (b * b), h, w]))
        t = tf.transpose(t, [0, 3, 4, 1, 5, 2])
    else:  # CRD
        t = tf.reshape(x, tf.stack([n, c // (b * b), b, b, h, w]))
        t = tf.transpose(t, [0, 1, 4, 2, 5, 3])
    return tf.reshape(t, tf.stack([n, c // (b * b), h * b, w * b]))


@TF.register("DepthToSpace", since=11)
def depth_to_space(x, blocksize: int, mode: str = "DCR"):
    return _blocks(x, blocksize, False, mode)


@TF.register("SpaceToDepth")
def space_to_depth(x, blocksize: int, mode: str = "DCR"):
    if mode != "DCR":
        raise NotImplementedError("SpaceToDepth mode CRD")
    return _blocks(x, blocksize, True, "DCR")


@TF.register("Compress", since=11)
def compress(x, condition, axis=None):
    if axis is None:
        x, axis = tf.reshape(x, [-1]), 0
    axis = axis_of(axis, rank(x))
    cond = tf.cast(condition, tf.bool)
    n = tf.minimum(tf.shape(cond)[0], tf.shape(x)[axis])
    return tf.boolean_mask(tf.gather(x, tf.range(n), axis=axis), cond[:n], axis=axis)


@TF.register("ReverseSequence", since=10)
def reverse_sequence(x, sequence_lens, batch_axis: int = 1, time_axis: int = 0):
    return tf.reverse_sequence(x, sequence_lens, seq_axis=time_axis, batch_axis=batch_axis)


@TF.register("Det", since=11)
def det(x):
    return tf.linalg.det(x)


@TF.register("Unique", since=11)
def unique(x, axis=None, sorted: int = 1):  # noqa: A002
    if axis is not None or not sorted:
        raise NotImplementedError("Unique with axis or unsorted output")
    flat = tf.reshape(x, [-1])
    values = tf.sort(tf.unique(flat).y) if flat.dtype != tf.string else tf.unique(flat).y
    first = tf.argmax(tf.cast(tf.equal(flat[tf.newaxis, :], values[:, tf.newaxis]), tf.int32), axis=1)
    inverse = tf.argmax(tf.cast(tf.equal(flat[:, tf.newaxis], values[tf.newaxis, :]), tf.int32), axis=1)
    counts = tf.reduce_sum(tf.cast(tf.equal(flat[:, tf.newaxis], values[tf.newaxis, :]), tf.int64), axis=0)
    return values, first, inverse, counts



@TF.register("TensorScatter", since=24)
def tensor_scatter(past_cache, update, write_indices=None, *, axis: int = -2, mode: str = "linear"):
    """Write ``update`` into the cache along ``axis`` from each batch entry's write index (wrapping if circular)."""
    r = rank(past_cache)
    axis = axis_of(axis, r)
    perm = [0, axis, *[i for i in range(1, r) if i != axis]]
    cache, new = tf.transpose(past_cache, perm), tf.transpose(update, perm)  # [B, M, ...], [B, L, ...]
    batch, length, capacity = tf.shape(new)[0], tf.shape(new)[1], tf.shape(cache)[1]
    start = tf.zeros([batch], tf.int32) if write_indices is None else tf.cast(write_indices, tf.int32)
    positions = start[:, None] + tf.range(length)[None, :]
    if mode == "circular":
        positions = tf.math.floormod(positions, capacity)
    rows = tf.broadcast_to(tf.range(batch)[:, None], tf.shape(positions))
    present = tf.tensor_scatter_nd_update(cache, tf.stack([rows, positions], -1), new)
    return tf.transpose(present, [perm.index(i) for i in range(r)])
