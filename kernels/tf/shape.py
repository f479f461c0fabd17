"""Shape and layout kernels: Reshape, Transpose, (Un)Squeeze, Flatten, Concat, Split, Slice, Expand, Tile.

Shape-like inputs (Reshape's shape, Slice's starts and axes, Squeeze's axes,
Split's sizes) may be tensors computed at run time: constants take a fast path
decided while tracing, run-time values are handled with ``tf.shape``
arithmetic. Only the number of axes (the length of such an input) must be
known while tracing, since it fixes the output rank.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from kernels.tf import TF
from kernels.tf._util import BIG, axis_of, dim, dims, prod, rank, shape64, static, static_ints


@TF.register("Reshape", since=5)
def reshape(x, shape, allowzero: int = 0):
    target = static(shape)
    if target is not None:
        values = [int(v) for v in target.reshape(-1)]
        if not allowzero and 0 in values:
            values = _copy_dims(x, values)
            if not all(isinstance(v, int) for v in values):
                return tf.reshape(x, tf.stack([tf.cast(v, tf.int64) for v in values]))
        return tf.reshape(x, values)
    if allowzero or _never_zero(shape):
        return tf.reshape(x, shape)
    shape = tf.cast(shape, tf.int64)
    n = shape.shape[0]
    current = tf.concat([shape64(x), tf.ones([tf.maximum(n - tf.rank(x), 0)], tf.int64)], 0)[:n]
    shape = tf.where(tf.equal(shape, 0), current, shape)
    return tf.reshape(x, shape)


def _copy_dims(x, values: list[int]) -> list:
    """A constant target shape with its 0 entries replaced by the input's sizes there.

    Dynamic sizes would make the shape a run-time value (SHAPE, STRIDED_SLICE and
    PACK in TFLite): where the input's dynamic axes are all copied, the -1 entry
    is computed here from its static sizes, and a single dynamic entry left
    becomes the -1, so the shape stays a constant.
    """
    d = x.shape.as_list()
    out = [d[i] if v == 0 else v for i, v in enumerate(values)]
    dynamic = [i for i, v in enumerate(out) if v is None]
    inferred = [i for i, v in enumerate(out) if v == -1]
    if inferred and dynamic and {i for i, v in enumerate(d) if v is None} <= set(dynamic):
        total = prod([v for i, v in enumerate(d) if i not in dynamic])
        known = prod([v for i, v in enumerate(out) if i not in dynamic and i not in inferred])
        if known > 0 and total > 0 and total % known == 0:
            out[inferred[0]] = total // known
            inferred = []
    if len(dynamic) == 1 and not inferred:
        out[dynamic[0]] = -1
    return [dim(x, i) if v is None else v for i, v in enumerate(out)]


#: Ops whose every output element is an element of their first input (or of all their inputs for concat/pack).
_SELECTING = {"Identity", "Cast", "Reshape", "Squeeze", "ExpandDims", "StridedSlice", "GatherV2", "Slice"}


def _never_zero(shape, depth: int = 0) -> bool:
    """Whether every entry of a run-time Reshape ``shape`` is a non-zero constant or a size read with Shape.

    Such a shape needs no "0 copies the input's size" selection at run time (EQUAL,
    SELECT and a SHAPE in TFLite): a size read from a tensor is taken as it is, and
    it differs from the copy only for a model reshaping an empty tensor.
    """
    value = static(shape)
    if value is not None:
        return bool(np.all(np.asarray(value) != 0))
    op = getattr(shape, "op", None)
    if op is None or depth > 16:
        return False
    if op.type in ("Shape", "Size"):
        return True
    if op.type in _SELECTING:
        return _never_zero(op.inputs[0], depth + 1)
    if op.type in ("ConcatV2", "Pack"):
        pieces = list(op.inputs)[:-1] if op.type == "ConcatV2" else list(op.inputs)
        return all(_never_zero(p, depth + 1) for p in pieces)
    return False


@TF.register("Transpose")
def transpose(x, perm=None):
    return tf.transpose(x, perm if perm is not None else list(reversed(range(rank(x)))))


@TF.register("Squeeze", since=1)
def squeeze_1(x, axes=None):
    if axes:
        return tf.squeeze(x, [axis_of(a, rank(x)) for a in axes])
    return _squeeze_ones(x)


def _squeeze_ones(x):
    """Squeeze without axes: every axis of size 1.

    With the rank known but some sizes not (a dynamic batch), the axes known to
    be 1 are squeezed and the unknown ones kept, as if they were never 1 (the
    assumption torch.export makes of a dynamic dim): the output keeps a rank
    that later ops can rely on, where a run-time squeeze would leave it unknown.
    With the rank unknown too, every axis that is 1 at run time goes.
    """
    if x.shape.rank is None or x.shape.is_fully_defined():
        return tf.squeeze(x)
    ones = [i for i, d in enumerate(x.shape) if d == 1]
    return tf.squeeze(x, ones) if ones else x


@TF.register("Squeeze", since=13)
def squeeze(x, axes=None):
    if axes is not None and static(axes) is None:
        return _squeeze_dynamic(x, axes)
    return squeeze_1(x, static_ints(axes, "axes") if axes is not None else None)


def _axes_mask(axes, r: int) -> tf.Tensor:
    """[r] bool: which of ``r`` axes the run-time (possibly negative) ``axes`` name."""
    axes = tf.reshape(tf.cast(axes, tf.int32), [-1])
    axes = tf.where(axes < 0, axes + r, axes)
    return tf.reduce_any(tf.equal(tf.range(r)[:, None], axes[None, :]), axis=1)


def _count(axes) -> int:
    n = axes.shape.num_elements()
    if n is None:
        raise ValueError("the number of axes must be known while tracing")
    return n


def _squeeze_dynamic(x, axes):
    r = rank(x)
    keep = tf.logical_not(_axes_mask(axes, r))
    y = tf.reshape(x, tf.boolean_mask(tf.shape(x), keep))
    y.set_shape([None] * (r - _count(axes)))
    return y


@TF.register("Unsqueeze", since=1)
def unsqueeze_1(x, axes):
    out_rank = rank(x) + len(axes)
    for a in sorted(axis_of(int(a), out_rank) for a in axes):
        x = tf.expand_dims(x, a)
    return x


@TF.register("Unsqueeze", since=13)
def unsqueeze(x, axes):
    if static(axes) is None:
        return _unsqueeze_dynamic(x, axes)
    return unsqueeze_1(x, static_ints(axes, "axes"))


def _unsqueeze_dynamic(x, axes):
    out_rank = rank(x) + _count(axes)
    new = _axes_mask(axes, out_rank)
    source = tf.cumsum(tf.cast(tf.logical_not(new), tf.int32)) - 1  # input axis each output axis copies
    sizes = tf.gather(tf.concat([tf.shape(x), [1]], 0), tf.where(new, rank(x), source))
    y = tf.reshape(x, sizes)
    y.set_shape([None] * out_rank)
    return y


@TF.register("Flatten")
def flatten(x, axis: int = 1):
    axis = axis_of(axis, rank(x))
    if axis == rank(x):
        return tf.reshape(x, [-1, 1])
    inner = x.shape[axis:].num_elements()
    if inner:  # a constant shape even when the outer axes are dynamic
        return tf.reshape(x, [-1, inner])
    return tf.reshape(x, [prod(dims(x)[:axis]) if axis else 1, -1])


@TF.register("Concat", since=4)
def concat(inputs, axis: int):
    return tf.concat(inputs, axis_of(axis, rank(inputs[0])))


def _split_sizes(x, axis: int, split, num_outputs: int) -> list | tf.Tensor:
    if split is not None:
        if static(split) is None:
            return tf.cast(tf.reshape(split, [-1]), tf.int64)  # sizes at run time, their count static
        return static_ints(split, "split")
    size = x.shape[axis]
    if size is None:
        return num_outputs  # even split at run time
    chunk = -(-size // num_outputs)  # the last chunk may be smaller (opset 18)
    return [min(chunk, size - i * chunk) for i in range(num_outputs)]


@TF.register("Split", since=2)
def split_2(x, axis: int = 0, split=None, num_outputs: int = 1):
    axis = axis_of(axis, rank(x))
    sizes = _split_sizes(x, axis, split, num_outputs)
    num = num_outputs if isinstance(sizes, tf.Tensor) else None
    return list(tf.split(x, sizes, axis, num=num))


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
        low, high = _bounds(x.shape[a], stride[a])
        if isinstance(end[a], int):
            end[a] = max(low, min(high, end[a]))
        if isinstance(begin[a], int):
            begin[a] = max(low, min(high, begin[a]))
    pack = (lambda v: tf.stack([tf.cast(e, tf.int64) for e in v])) if not all(
        isinstance(e, int) for e in begin + end) else (lambda v: tf.constant(v, tf.int64))
    return tf.strided_slice(x, pack(begin), pack(end), tf.constant(stride, tf.int64), begin_mask=mask, end_mask=mask)


def _bounds(size: int | None, step: int) -> tuple[int, int]:
    """The range a constant slice bound is clamped to without changing what it selects.

    With the axis size known, bounds are clamped to it (``[-size, size]``, or
    ``[-size - 1, size - 1]`` for a negative step, where ``-size - 1`` means "past
    the first element"): TensorFlow's shape inference of a strided slice of a
    ``Shape`` (torch.onnx's attention reads sizes as ``Slice(shape, INT64_MIN, -2)``)
    fails on a bound far beyond the rank, even one the run-time op would clamp.
    """
    if size is None or not isinstance(step, int):
        return -BIG, BIG
    return (-size, size) if step > 0 else (-size - 1, size - 1)


@TF.register("Slice", since=1)
def slice_1(x, starts, ends, axes=None):
    axes = list(axes) if axes is not None else list(range(len(starts)))
    return _strided_slice(x, list(starts), list(ends), axes, [1] * len(starts))


def _elements(t) -> list:
    """A 1-D slice bound as a list: ints where known, else 0-d int64 tensors.

    Unstacked as int32 (clamped: INT64_MAX means "to the end"), as TFLite has no
    int64 UNPACK; without this a run-time slice bound keeps BERT/GPT-2 from
    converting to TFLite with dynamic dims.
    """
    value = static(t)
    if value is not None:
        return [int(v) for v in value.reshape(-1)]
    narrow = tf.cast(tf.clip_by_value(tf.cast(t, tf.int64), -(2**31), 2**31 - 1), tf.int32)
    return [tf.cast(v, tf.int64) for v in tf.unstack(narrow)]


def _slice_dynamic(x, starts, ends, axes, steps):
    """Slice whose axes or steps are computed at run time: one strided slice over every axis,
    each taking its (start, end, step) from the entry that names it, or the whole axis."""
    r = rank(x)
    starts, ends = tf.cast(tf.reshape(starts, [-1]), tf.int64), tf.cast(tf.reshape(ends, [-1]), tf.int64)
    n = tf.shape(starts)[0]
    axes = tf.range(n) if axes is None else tf.cast(tf.reshape(axes, [-1]), tf.int32)
    axes = tf.where(axes < 0, axes + r, axes)
    steps = tf.ones([n], tf.int64) if steps is None else tf.cast(tf.reshape(steps, [-1]), tf.int64)
    begin, end, stride = [], [], []
    for i in range(r):
        named = tf.equal(axes, i)
        found = tf.reduce_any(named)

        def pick(values, default, named=named, found=found):
            chosen = tf.reduce_sum(tf.where(named, values, tf.zeros_like(values)))
            return tf.where(found, tf.clip_by_value(chosen, -BIG, BIG), tf.constant(default, tf.int64))

        begin.append(pick(starts, 0))
        end.append(pick(ends, BIG))
        stride.append(pick(steps, 1))
    return tf.strided_slice(x, tf.stack(begin), tf.stack(end), tf.stack(stride))


@TF.register("Slice", since=10)
def slice_(x, starts, ends, axes=None, steps=None):
    if (axes is not None and static(axes) is None) or (steps is not None and static(steps) is None):
        return _slice_dynamic(x, starts, ends, axes, steps)
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


@TF.register("Shape", since=1)
def shape(x, start: int = 0, end=None):
    full = shape64(x)
    return full if start == 0 and end is None else full[start:end]


@TF.register("Size")
def size(x):
    return tf.size(x, out_type=tf.int64)
