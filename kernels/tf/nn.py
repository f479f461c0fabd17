"""Convolution and pooling kernels.

TensorFlow's CPU kernels run convolutions and pools channels-last only, so each
op has a channels-last core (``conv_channels_last(x_nhwc, filter, ...)``), which
the SavedModel back end calls directly on values it already holds channels-last,
and an ONNX-semantics kernel (NCHW in and out) that transposes at its boundary.
Filters are taken in TensorFlow's layout by the cores (``conv_filter`` converts
an ONNX weight), so a back end can store them pre-transposed.

Padding follows ONNX: explicit ``pads`` (begin..., end...), ``auto_pad``
SAME_UPPER / SAME_LOWER (extra padding at the end / the beginning), VALID, and
``ceil_mode`` (a last partial window is kept if it starts inside the input or
its begin padding).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from kernels.tf import TF
from kernels.tf._util import dim, rank, to_channels_first, to_channels_last

Pairs = list[tuple[int, int]]


# --- filters and padding ---------------------------------------------------------


def conv_filter(w: Any) -> Any:
    """ONNX Conv weight [M, C/g, *k] -> TensorFlow filter [*k, C/g, M] (numpy or tensor)."""
    r = len(w.shape)
    perm = [*range(2, r), 1, 0]
    return np.transpose(w, perm) if isinstance(w, np.ndarray) else tf.transpose(w, perm)


#: ConvTranspose weights [C, M/g, *k] map to [*k, M/g, C] by the same permutation.
conv_transpose_filter = conv_filter


def _spatial(x: tf.Tensor) -> list[Any]:
    """Spatial sizes of a channels-last tensor: ints where static, scalar int32 tensors where dynamic."""
    return [d if d is not None else tf.shape(x)[i + 1] for i, d in enumerate(x.shape[1:-1])]


def _is_static(values) -> bool:
    return all(isinstance(v, (int, np.integer)) for v in values)


def _max0(v: Any) -> Any:
    return max(0, v) if _is_static([v]) else tf.maximum(0, v)


def _ceil_div(a: Any, b: int) -> Any:
    return -(-a // b) if _is_static([a]) else (a + b - 1) // b


def _pad_pairs(sizes, kernel, strides, dilations, auto_pad: str, pads, ceil_mode: int = 0) -> Pairs:
    """(begin, end) padding per spatial axis, the end including any ceil_mode extra.

    Where a size is dynamic (a tensor) the same arithmetic yields tensors.
    """
    n = len(kernel)
    eff = [(k - 1) * d + 1 for k, d in zip(kernel, dilations, strict=True)]
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pairs = []
        for size, k, s in zip(sizes, eff, strides, strict=True):
            total = _max0((_ceil_div(size, s) - 1) * s + k - size)
            small, big = total // 2, total - total // 2
            pairs.append((small, big) if auto_pad == "SAME_UPPER" else (big, small))
        return pairs
    if auto_pad == "VALID" or not pads:
        pairs = [(0, 0)] * n
    else:
        pairs = [(int(pads[i]), int(pads[i + n])) for i in range(n)]
    if ceil_mode:
        pairs = [(b, e + _ceil_extra(size, k, s, b, e)) for (b, e), size, k, s in zip(pairs, sizes, eff, strides, strict=True)]
    return pairs


def _ceil_extra(size: Any, k: int, s: int, begin: int, end: int) -> Any:
    padded = size + begin + end
    out = _ceil_div(padded - k, s) + 1
    if _is_static([size]):
        if (out - 1) * s >= size + begin:  # the last window would start in the end padding
            out -= 1
    else:
        out = tf.where((out - 1) * s >= size + begin, out - 1, out)
    return _max0((out - 1) * s + k - padded)


def _no_padding(pairs: Pairs) -> bool:
    flat = [v for p in pairs for v in p]
    return _is_static(flat) and not any(flat)


def _paddings(pairs: Pairs) -> Any:
    """tf.pad's paddings for a channels-last tensor: a list when static, else a tensor."""
    rows = [[0, 0], *[list(p) for p in pairs], [0, 0]]
    if _is_static([v for p in pairs for v in p]):
        return rows
    return tf.stack([tf.stack([tf.cast(v, tf.int32) for v in row]) for row in rows])


def _pad(x: tf.Tensor, pairs: Pairs, value: Any = 0) -> tf.Tensor:
    if _no_padding(pairs):
        return x
    return tf.pad(x, _paddings(pairs), constant_values=value)


def _ints(values, n: int, default: int) -> list[int]:
    return [int(v) for v in values] if values else [default] * n


# --- convolution -----------------------------------------------------------------


def _conv(x: tf.Tensor, filt: tf.Tensor, strides: list[int], dilations: list[int], pairs: Pairs) -> tf.Tensor:
    n = len(strides)
    if n == 2 and _is_static([v for p in pairs for v in p]):
        padding = "VALID" if _no_padding(pairs) else _paddings(pairs)
        return tf.nn.conv2d(x, filt, strides, padding, dilations=dilations)
    if n == 2:
        return tf.nn.conv2d(_pad(x, pairs), filt, strides, "VALID", dilations=dilations)
    x = _pad(x, pairs)
    if n == 1:  # as a 2-D convolution of height 1
        y = tf.nn.conv2d(x[:, tf.newaxis], filt[tf.newaxis], [1, *strides], "VALID", dilations=[1, *dilations])
        return y[:, 0]
    return tf.nn.conv3d(x, filt, [1, *strides, 1], "VALID", dilations=[1, *dilations, 1])


def conv_channels_last(x, filt, b=None, *, auto_pad: str = "NOTSET", dilations=None, group: int = 1,
                       kernel_shape=None, pads=None, strides=None):
    """ONNX Conv on a channels-last input with a TensorFlow-layout filter [*k, C/g, M]."""
    n = rank(x) - 2
    kernel = [int(k) for k in (kernel_shape or filt.shape[:n])]
    strides, dilations = _ints(strides, n, 1), _ints(dilations, n, 1)
    pairs = _pad_pairs(_spatial(x), kernel, strides, dilations, auto_pad, pads)
    if group == 1 or n == 2:  # TensorFlow groups 2-D convolutions itself
        y = _conv(x, filt, strides, dilations, pairs)
    else:
        xs = tf.split(x, group, axis=-1)
        fs = tf.split(filt, group, axis=-1)
        y = tf.concat([_conv(a, f, strides, dilations, pairs) for a, f in zip(xs, fs, strict=True)], -1)
    return y if b is None else y + b


@TF.register("Conv")
def conv(x, w, b=None, **attrs):
    return to_channels_first(conv_channels_last(to_channels_last(x), conv_filter(w), b, **attrs))


def _crop_or_pad(y: tf.Tensor, axis: int, begin: Any, end: Any) -> tf.Tensor:
    """Remove ``begin``/``end`` elements of ``axis`` (negative amounts pad with zeros)."""
    r = rank(y)
    if not _is_static([begin, end]):
        pad = [[0, 0]] * r
        pad[axis] = [tf.maximum(0, -begin), tf.maximum(0, -end)]
        y = tf.pad(y, tf.convert_to_tensor(pad))
        start = [0] * r
        start[axis] = tf.maximum(0, begin)
        size = [-1] * r
        size[axis] = tf.shape(y)[axis] - tf.maximum(0, begin) - tf.maximum(0, end)
        return tf.slice(y, tf.stack(start), tf.stack(size))
    pad = [[0, 0]] * r
    pad[axis] = [max(0, -begin), max(0, -end)]
    if any(p != [0, 0] for p in pad):
        y = tf.pad(y, pad)
    begin, end = max(0, begin), max(0, end)
    if begin or end:
        index = [slice(None)] * r
        index[axis] = slice(begin, (-end) if end else None)
        y = y[tuple(index)]
    return y


def conv_transpose_channels_last(x, filt, b=None, *, auto_pad: str = "NOTSET", dilations=None, group: int = 1,
                                 kernel_shape=None, output_padding=None, output_shape=None, pads=None, strides=None):
    """ONNX ConvTranspose on a channels-last input with a filter [*k, M/g, C]."""
    n = rank(x) - 2
    kernel = [int(k) for k in (kernel_shape or filt.shape[:n])]
    strides, dilations = _ints(strides, n, 1), _ints(dilations, n, 1)
    out_pad = _ints(output_padding, n, 0)
    sizes = _spatial(x)
    full = [s * (i - 1) + (k - 1) * d + 1 for i, k, s, d in zip(sizes, kernel, strides, dilations, strict=True)]
    if output_shape or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        target = [int(v) for v in output_shape][-n:] if output_shape else [i * s for i, s in zip(sizes, strides, strict=True)]
        totals = [f + p - t for f, p, t in zip(full, out_pad, target, strict=True)]
        upper = auto_pad == "SAME_UPPER"
        pairs = [(t // 2, t - t // 2) if upper else (t - t // 2, t // 2) for t in totals]
    else:
        pairs = _pad_pairs(sizes, kernel, strides, dilations, "NOTSET" if auto_pad == "NOTSET" else "VALID", pads)
    per_group = filt.shape[n]
    batch = tf.shape(x)[0]

    def one(a: tf.Tensor, f: tf.Tensor) -> tf.Tensor:
        if n == 1:
            shape = tf.stack([batch, 1, full[0], per_group])
            y = tf.nn.conv2d_transpose(a[:, tf.newaxis], f[tf.newaxis], shape, [1, *strides], "VALID",
                                       dilations=[1, *dilations])
            return y[:, 0]
        shape = tf.stack([batch, *full, per_group])
        return tf.nn.conv_transpose(a, f, shape, strides, "VALID", dilations=dilations)

    if group == 1:
        y = one(x, filt)
    else:
        pieces = zip(tf.split(x, group, axis=-1), tf.split(filt, group, axis=-1), strict=True)
        y = tf.concat([one(a, f) for a, f in pieces], -1)
    for i, ((begin, end), extra) in enumerate(zip(pairs, out_pad, strict=True)):
        y = _crop_or_pad(y, i + 1, begin, end - extra)
    return y if b is None else y + b


@TF.register("ConvTranspose")
def conv_transpose(x, w, b=None, **attrs):
    y = conv_transpose_channels_last(to_channels_last(x), conv_transpose_filter(w), b, **attrs)
    return to_channels_first(y)


# --- pooling ---------------------------------------------------------------------


def _lowest(dtype: tf.DType) -> Any:
    return -np.inf if dtype.is_floating else dtype.min


def _window(x: tf.Tensor, kind: str, kernel, strides, dilations) -> tf.Tensor:
    """VALID max or sum pooling of a padded channels-last tensor."""
    if all(d == 1 for d in dilations):
        if kind == "MAX":
            return tf.nn.max_pool(x, kernel, strides, "VALID")
        size = float(np.prod(kernel))
        return tf.nn.avg_pool(x, kernel, strides, "VALID") * tf.cast(size, x.dtype)
    y = tf.nn.pool(x, kernel, "MAX" if kind == "MAX" else "AVG", strides=[1] * len(kernel), padding="VALID",
                   dilations=dilations)
    if kind != "MAX":
        y = y * tf.cast(float(np.prod(kernel)), x.dtype)
    index = (slice(None), *[slice(None, None, s) for s in strides], slice(None))
    return y[index]


def max_pool_channels_last(x, *, kernel_shape, auto_pad: str = "NOTSET", ceil_mode: int = 0, dilations=None,
                           pads=None, storage_order: int = 0, strides=None):
    n = len(kernel_shape)
    strides, dilations = _ints(strides, n, 1), _ints(dilations, n, 1)
    pairs = _pad_pairs(_spatial(x), kernel_shape, strides, dilations, auto_pad, pads, ceil_mode)
    return _window(_pad(x, pairs, _lowest(x.dtype)), "MAX", list(kernel_shape), strides, dilations)


def _sum_pool(x, kernel_shape, auto_pad, ceil_mode, dilations, pads, strides, count_include_pad):
    """(window sums, element counts) of a channels-last input, ONNX padding rules."""
    n = len(kernel_shape)
    strides, dilations = _ints(strides, n, 1), _ints(dilations, n, 1)
    sizes = _spatial(x)
    pairs = _pad_pairs(sizes, kernel_shape, strides, dilations, auto_pad, pads, ceil_mode)
    kernel = list(kernel_shape)
    sums = _window(_pad(x, pairs), "SUM", kernel, strides, dilations)
    if _no_padding(pairs):
        return sums, None
    explicit = _pad_pairs(sizes, kernel_shape, strides, dilations, auto_pad, pads, 0)
    if not _is_static([*sizes, *[v for p in pairs for v in p]]):
        return sums, _dynamic_counts(x, sizes, pairs, explicit, count_include_pad, kernel, strides, dilations)
    mask = np.ones([1, *sizes, 1], np.float32)
    if count_include_pad:  # explicit padding counts, ceil_mode's extra does not
        mask = np.pad(mask, [(0, 0), *explicit, (0, 0)], constant_values=1)
        extra = [(0, e - e0) for (_, e), (_, e0) in zip(pairs, explicit, strict=True)]
    else:
        extra = pairs
    mask = np.pad(mask, [(0, 0), *extra, (0, 0)])
    counts = _window(tf.constant(mask), "SUM", kernel, strides, dilations)
    return sums, tf.cast(counts, x.dtype)


def _dynamic_counts(x, sizes, pairs, explicit, count_include_pad, kernel, strides, dilations) -> tf.Tensor:
    """Elements counted per window, as in :func:`_sum_pool`, for sizes known at run time only."""
    mask = tf.ones(tf.stack([1, *[tf.cast(s, tf.int32) for s in sizes], 1]), x.dtype)
    if count_include_pad:
        mask = _pad(mask, explicit, 1)
        extra = [(0, e - e0) for (_, e), (_, e0) in zip(pairs, explicit, strict=True)]
    else:
        extra = pairs
    return _window(_pad(mask, extra), "SUM", kernel, strides, dilations)


def average_pool_channels_last(x, *, kernel_shape, auto_pad: str = "NOTSET", ceil_mode: int = 0,
                               count_include_pad: int = 0, dilations=None, pads=None, strides=None):
    sums, counts = _sum_pool(x, kernel_shape, auto_pad, ceil_mode, dilations, pads, strides, count_include_pad)
    if counts is None:
        return sums / tf.cast(float(np.prod(kernel_shape)), x.dtype)
    return sums / counts


def lp_pool_channels_last(x, *, kernel_shape, auto_pad: str = "NOTSET", ceil_mode: int = 0, dilations=None,
                          p: int = 2, pads=None, strides=None):
    sums, _ = _sum_pool(tf.pow(tf.abs(x), tf.cast(p, x.dtype)), kernel_shape, auto_pad, ceil_mode, dilations,
                        pads, strides, 1)
    return tf.pow(sums, tf.cast(1.0 / p, x.dtype))


def _nchw(core):
    def kernel(x, **attrs):
        return to_channels_first(core(to_channels_last(x), **attrs))

    kernel.__name__ = kernel.__qualname__ = core.__name__.removesuffix("_channels_last")
    return kernel


def _max_pool_with_indices(x, *, kernel_shape, auto_pad: str = "NOTSET", ceil_mode: int = 0, dilations=None,
                           pads=None, storage_order: int = 0, strides=None):
    """2-D MaxPool and its Indices (flat NCHW positions, column-major within a plane if
    ``storage_order``), from ``tf.nn.max_pool_with_argmax`` on the channels-last input padded with -inf."""
    n = len(kernel_shape)
    strides, dilations = _ints(strides, n, 1), _ints(dilations, n, 1)
    if n != 2 or any(d != 1 for d in dilations):
        raise NotImplementedError("MaxPool's Indices output is implemented for undilated 2-D pools only")
    xl = to_channels_last(x)
    pairs = _pad_pairs(_spatial(xl), kernel_shape, strides, dilations, auto_pad, pads, ceil_mode)
    padded = _pad(xl, pairs, _lowest(x.dtype))
    y, arg = tf.nn.max_pool_with_argmax(padded, list(kernel_shape), strides, "VALID", output_dtype=tf.int64)
    c, width = tf.cast(dim(x, 1), tf.int64), tf.cast(tf.shape(padded)[2], tf.int64)
    h, w = tf.cast(dim(x, 2), tf.int64), tf.cast(dim(x, 3), tf.int64)
    channel, place = arg % c, arg // c  # argmax counts (row * padded width + column) * C + channel
    row = place // width - tf.cast(pairs[0][0], tf.int64)
    col = place % width - tf.cast(pairs[1][0], tf.int64)
    batch = tf.reshape(tf.range(tf.cast(tf.shape(x)[0], tf.int64)), [-1, 1, 1, 1])
    within = col * h + row if storage_order else row * w + col
    indices = (batch * c + channel) * h * w + within
    return to_channels_first(y), to_channels_first(indices)


@TF.register("MaxPool")
def max_pool(x, num_outputs: int = 1, **attrs):
    if num_outputs > 1:
        return _max_pool_with_indices(x, **attrs)
    return _nchw(max_pool_channels_last)(x, **attrs)


TF.register("AveragePool")(_nchw(average_pool_channels_last))
TF.register("LpPool", since=11)(_nchw(lp_pool_channels_last))


def global_pool_channels_last(x, kind: str) -> tf.Tensor:
    axes = list(range(1, rank(x) - 1))
    fn = tf.reduce_mean if kind == "avg" else tf.reduce_max
    return fn(x, axis=axes, keepdims=True)


@TF.register("GlobalAveragePool")
def global_average_pool(x):
    return tf.reduce_mean(x, axis=list(range(2, rank(x))), keepdims=True)


@TF.register("GlobalMaxPool")
def global_max_pool(x):
    return tf.reduce_max(x, axis=list(range(2, rank(x))), keepdims=True)


def lrn_channels_last(x, *, size: int, alpha: float = 0.0001, beta: float = 0.75, bias: float = 1.0):
    """LRN on a channels-last input: the sum of squares over channels [c - (size-1)//2, c + ceil((size-1)/2)]."""
    sq = tf.square(x)
    lo, hi = (size - 1) // 2, size - 1 - (size - 1) // 2
    padded = tf.pad(sq, [[0, 0]] * (rank(x) - 1) + [[lo, hi]])
    c = tf.shape(x)[-1]
    windows = tf.add_n([padded[..., i:i + c] for i in range(size)])
    return x / tf.pow(tf.cast(bias, x.dtype) + tf.cast(alpha / size, x.dtype) * windows, tf.cast(beta, x.dtype))


TF.register("LRN")(_nchw(lrn_channels_last))
