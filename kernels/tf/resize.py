"""Resize (opset 11+): nearest, linear and cubic, one axis at a time.

For every resized axis the source coordinate of each output index is computed
while tracing (numpy, float64, as onnx's reference does) from the
``coordinate_transformation_mode``; the axis is then resampled by gathering the
neighbouring rows and summing them with their weights. Neighbours outside the
input repeat the edge (or get weight 0 with ``exclude_outside``). With
``antialias=1`` (opset 18+) a linear or cubic downsampling widens its filter by
1 / scale and mixes every input row under it (:func:`_antialias_neighbours`;
with a run-time scale the number of taps is a run-time size too).

When an input size, the output size, the scale or the roi of an axis is only
known at run time (dynamic spatial dims, scales or sizes computed in the
graph), the same coordinate and weight formulas run as TensorFlow ops instead
of numpy (``_tf_*`` below), in float32 as onnxruntime computes them for float
inputs (TFLite has no float64 builtins). Only the number of resized axes must
be known while tracing. An axis scaled by exactly 1 (the batch and channel
axes of an image resize) is left alone, even when its size is a run-time one:
every coordinate mode but ``tf_crop_and_resize`` maps it onto itself.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from kernels.tf import TF
from kernels.tf._util import axis_of, dims, rank, static


def _source_coords(mode: str, out: int, size: int, scale: float, roi: tuple[float, float]) -> np.ndarray:
    i = np.arange(out, dtype=np.float64)
    if mode == "half_pixel":
        return (i + 0.5) / scale - 0.5
    if mode == "half_pixel_symmetric":
        adjustment = out / (scale * size)
        center = size / 2
        return center * (1 - adjustment) + (i + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (i + 0.5) / scale - 0.5 if out > 1 else np.zeros(out)
    if mode == "align_corners":
        return i * (size - 1) / (out - 1) if out > 1 else np.zeros(out)
    if mode == "asymmetric":
        return i / scale
    if mode == "tf_crop_and_resize":
        start, end = roi
        if out > 1:
            return start * (size - 1) + i * (end - start) * (size - 1) / (out - 1)
        return np.full(out, 0.5 * (start + end) * (size - 1))
    raise NotImplementedError(f"coordinate_transformation_mode={mode!r}")


def _nearest(x: np.ndarray, nearest_mode: str) -> tuple[np.ndarray, np.ndarray]:
    frac = x - np.floor(x)
    if nearest_mode == "round_prefer_floor":
        up = frac > 0.5
    elif nearest_mode == "round_prefer_ceil":
        up = frac >= 0.5
    elif nearest_mode == "floor":
        up = np.zeros_like(frac, bool)
    else:  # ceil
        up = frac > 0
    return (np.floor(x) + up).astype(np.int64)[:, None], np.ones((len(x), 1))


def _cubic_weights(t: np.ndarray, a: float) -> np.ndarray:
    """Weights of the neighbours at offsets -1, 0, 1, 2 for fractional positions ``t``."""
    def kernel(d):
        d = np.abs(d)
        return np.where(d <= 1, ((a + 2) * d - (a + 3)) * d * d + 1,
                        np.where(d < 2, ((a * d - 5 * a) * d + 8 * a) * d - 4 * a, 0.0))
    return np.stack([kernel(t + 1), kernel(t), kernel(1 - t), kernel(2 - t)], axis=1)


def _neighbours(x: np.ndarray, size: int, mode: str, nearest_mode: str, cubic_coeff_a: float,
                exclude_outside: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices [out, k], weights [out, k]) of the input rows each output row mixes."""
    if mode == "nearest":
        idx, w = _nearest(x, nearest_mode)
    elif mode == "linear":
        base = np.floor(x)
        t = x - base
        idx = base.astype(np.int64)[:, None] + np.arange(2)
        w = np.stack([1 - t, t], axis=1)
    elif mode == "cubic":
        base = np.floor(x)
        idx = base.astype(np.int64)[:, None] + np.arange(-1, 3)
        w = _cubic_weights(x - base, cubic_coeff_a)
    else:
        raise NotImplementedError(f"Resize mode {mode!r}")
    if exclude_outside and mode != "nearest":
        w = np.where((idx >= 0) & (idx < size), w, 0.0)
        w = w / w.sum(axis=1, keepdims=True)
    return np.clip(idx, 0, size - 1), w


def _antialias_weights(ratio: np.ndarray, mode: str, scale: float, a: float) -> np.ndarray:
    """[out, n] weights of the widened filter (n grows as 1 / scale) at fractional positions ``ratio``, normalized."""
    s = min(scale, 1.0)
    reach = 1 if mode == "linear" else 2
    start = int(np.floor(-reach / s) + 1)
    d = np.abs((np.arange(start, 2 - start)[None, :] - ratio[:, None]) * s)
    if mode == "linear":
        w = np.clip(1 - d, 0, 1)
    else:
        w = np.where(d <= 1, ((a + 2) * d - (a + 3)) * d * d + 1,
                     np.where(d < 2, ((a * d - 5 * a) * d + 8 * a) * d - 4 * a, 0.0))
    return w / w.sum(axis=1, keepdims=True)


def _antialias_neighbours(x: np.ndarray, size: int, mode: str, scale: float, cubic_coeff_a: float,
                          exclude_outside: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices [out, n], weights [out, n]): the n input rows nearest each source coordinate, ties to the
    smaller index (an exact integer coordinate counts as the right end of its left cell, as onnx's reference)."""
    if mode not in ("linear", "cubic"):
        raise ValueError(f"Resize antialias applies to linear and cubic modes, not {mode!r}")
    base = np.floor(x)
    w = _antialias_weights(np.where(x == base, 1.0, x - base), mode, scale, cubic_coeff_a)
    n = w.shape[1]  # always even: the taps run from start to 1 - start
    first = base + np.where(x == base, -(n // 2), 1 - n // 2)
    idx = first.astype(np.int64)[:, None] + np.arange(n)
    if exclude_outside:
        w = np.where((idx >= 0) & (idx < size), w, 0.0)
        total = w.sum(axis=1, keepdims=True)
        w = w / np.where(total == 0, 1.0, total)
    return np.clip(idx, 0, size - 1), w


# --- the same formulas on tensors, for sizes known at run time only -----------------

#: The element type of run-time coordinates and weights (onnxruntime's for float inputs).
COORDS = tf.float32


def _tf_source_coords(mode: str, out, size, scale, roi) -> tf.Tensor:
    i = tf.range(tf.cast(out, COORDS))
    out, size, scale = (tf.cast(v, COORDS) for v in (out, size, scale))
    if mode == "half_pixel":
        return (i + 0.5) / scale - 0.5
    if mode == "half_pixel_symmetric":
        adjustment = out / (scale * size)
        return size / 2 * (1 - adjustment) + (i + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return tf.where(out > 1, (i + 0.5) / scale - 0.5, tf.zeros_like(i))
    if mode == "align_corners":
        return tf.where(out > 1, i * (size - 1) / tf.maximum(out - 1, 1), tf.zeros_like(i))
    if mode == "asymmetric":
        return i / scale
    if mode == "tf_crop_and_resize":
        start, end = (tf.cast(v, COORDS) for v in roi)
        spread = start * (size - 1) + i * (end - start) * (size - 1) / tf.maximum(out - 1, 1)
        return tf.where(out > 1, spread, tf.fill(tf.shape(i), 0.5 * (start + end) * (size - 1)))
    raise NotImplementedError(f"coordinate_transformation_mode={mode!r}")


def _tf_neighbours(x: tf.Tensor, size, attrs: dict) -> tuple[tf.Tensor, tf.Tensor]:
    """(indices [out, k] int32, weights [out, k] float32), as :func:`_neighbours`."""
    mode = attrs["mode"]
    base = tf.floor(x)
    t = x - base
    if mode == "nearest":
        up = {"round_prefer_floor": t > 0.5, "round_prefer_ceil": t >= 0.5, "floor": tf.zeros_like(t, tf.bool)}.get(
            attrs["nearest_mode"], t > 0)
        idx, w = (base + tf.cast(up, COORDS))[:, None], tf.ones_like(x)[:, None]
    elif mode == "linear":
        idx, w = base[:, None] + tf.constant([0.0, 1.0], COORDS), tf.stack([1 - t, t], 1)
    elif mode == "cubic":
        a = attrs["cubic_coeff_a"]

        def kernel(d):
            d = tf.abs(d)
            near = ((a + 2) * d - (a + 3)) * d * d + 1
            far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
            return tf.where(d <= 1, near, tf.where(d < 2, far, tf.zeros_like(d)))

        idx = base[:, None] + tf.constant([-1.0, 0.0, 1.0, 2.0], COORDS)
        w = tf.stack([kernel(t + 1), kernel(t), kernel(1 - t), kernel(2 - t)], 1)
    else:
        raise NotImplementedError(f"Resize mode {mode!r}")
    idx = tf.cast(idx, tf.int32)
    size = tf.cast(size, tf.int32)
    if attrs["exclude_outside"] and mode != "nearest":
        w = tf.where((idx >= 0) & (idx < size), w, tf.zeros_like(w))
        w = w / tf.reduce_sum(w, 1, keepdims=True)
    return tf.clip_by_value(idx, 0, size - 1), w


def _tf_antialias_neighbours(x: tf.Tensor, size, scale, attrs: dict) -> tuple[tf.Tensor, tf.Tensor]:
    """:func:`_antialias_neighbours` on tensors: the number of taps follows a scale known at run time."""
    mode, a = attrs["mode"], attrs["cubic_coeff_a"]
    if mode not in ("linear", "cubic"):
        raise ValueError(f"Resize antialias applies to linear and cubic modes, not {mode!r}")
    s = tf.minimum(tf.cast(scale, COORDS), 1.0)
    start = tf.floor(-(1.0 if mode == "linear" else 2.0) / s) + 1
    taps = tf.range(start, 2 - start)
    n = tf.size(taps)
    base = tf.floor(x)
    exact = tf.equal(x, base)
    ratio = tf.where(exact, tf.ones_like(x), x - base)
    d = tf.abs((taps[tf.newaxis] - ratio[:, tf.newaxis]) * s)
    if mode == "linear":
        w = tf.clip_by_value(1 - d, 0.0, 1.0)
    else:
        near = ((a + 2) * d - (a + 3)) * d * d + 1
        far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
        w = tf.where(d <= 1, near, tf.where(d < 2, far, tf.zeros_like(d)))
    w = w / tf.reduce_sum(w, 1, keepdims=True)
    half = tf.cast(n // 2, COORDS)
    first = base + tf.where(exact, -half, 1 - half)
    idx = tf.cast(first[:, tf.newaxis] + tf.range(tf.cast(n, COORDS))[tf.newaxis], tf.int32)
    size = tf.cast(size, tf.int32)
    if attrs["exclude_outside"]:
        w = tf.where((idx >= 0) & (idx < size), w, tf.zeros_like(w))
        total = tf.reduce_sum(w, 1, keepdims=True)
        w = w / tf.where(total == 0, tf.ones_like(total), total)
    return tf.clip_by_value(idx, 0, size - 1), w


def _plan_axis(x: tf.Tensor, axis: int, out, scale, roi, attrs: dict):
    """(source coords, indices [out, k], weights [out, k], static) for one resized axis."""
    size = x.shape[axis]
    if all(isinstance(v, (int, float)) for v in (size, out, scale, *roi)):
        coords = _source_coords(attrs["coordinate_transformation_mode"], out, size, scale, roi)
        if attrs["antialias"]:
            idx, w = _antialias_neighbours(coords, size, attrs["mode"], scale, attrs["cubic_coeff_a"],
                                           attrs["exclude_outside"])
            return coords, idx, w, True
        idx, w = _neighbours(coords, size, attrs["mode"], attrs["nearest_mode"], attrs["cubic_coeff_a"],
                             attrs["exclude_outside"])
        return coords, idx, w, True
    size = tf.shape(x)[axis] if size is None else size
    coords = _tf_source_coords(attrs["coordinate_transformation_mode"], out, size, scale, roi)
    if attrs["antialias"] and not (isinstance(scale, float) and scale >= 1):  # a static upscale: the plain filter
        idx, w = _tf_antialias_neighbours(coords, size, scale, attrs)
    else:
        idx, w = _tf_neighbours(coords, size, attrs)
    return coords, idx, w, False


def _resize_axis(x: tf.Tensor, axis: int, out, scale, roi, attrs: dict) -> tf.Tensor:
    coords, idx, w, known = _plan_axis(x, axis, out, scale, roi, attrs)
    r = rank(x)
    k = idx.shape[1] if idx.shape[1] is not None else tf.shape(idx)[1]  # antialias taps follow the scale
    gathered = tf.gather(x, tf.reshape(idx, [-1]), axis=axis)  # [..., out * k, ...]
    gathered = tf.reshape(gathered, _split_shape(x, axis, out, k))
    compute = gathered.dtype if gathered.dtype.is_floating else tf.float32
    trailing = [1] * (r - axis - 1)
    weights = tf.constant(w.reshape([out, k, *trailing]), compute) if known else \
        tf.reshape(tf.cast(w, compute), [-1, k, *trailing])
    y = tf.reduce_sum(tf.cast(gathered, compute) * weights, axis=axis + 1)
    if attrs["coordinate_transformation_mode"] == "tf_crop_and_resize":
        size = x.shape[axis] if known else tf.cast(tf.shape(x)[axis], COORDS)
        inside = (coords >= 0) & (coords <= size - 1)
        inside = tf.reshape(tf.constant(inside) if known else inside, [-1, *trailing])
        y = tf.where(inside, y, tf.cast(attrs["extrapolation_value"], compute))
    if not x.dtype.is_floating:
        y = tf.cast(tf.round(y), x.dtype)
    return tf.cast(y, x.dtype)


def _split_shape(x: tf.Tensor, axis: int, out, k) -> list | tf.Tensor:
    """The shape [..., out, k, ...] of the gathered rows of ``axis``, as constant as the sizes allow.

    A list with one -1 where at most one size is unknown while tracing: TFLite's
    converter infers shapes from constants only, and a shape assembled from
    ``tf.shape`` would leave even the static sizes (the channels a later Conv2D
    needs) unknown there.
    """
    sizes = [*x.shape[:axis], out if isinstance(out, int) else None, k if isinstance(k, int) else None,
             *x.shape[axis + 1:]]
    if sum(s is None for s in sizes) <= 1:
        return [-1 if s is None else s for s in sizes]
    run_time = [*dims(x)[:axis], -1, k, *dims(x)[axis + 1:]]
    return tf.stack([tf.cast(s, tf.int32) for s in run_time])


def _values(t, count: int) -> list | None:
    """``t`` as ``count`` Python floats when constant, else ``count`` scalar tensors; None when empty."""
    if t is None:
        return None
    value = static(t)
    if value is not None:
        return [float(v) for v in value.reshape(-1)] if value.size else None
    n = t.shape.num_elements()
    if n == 0:
        return None
    if n is None:
        raise ValueError("the number of Resize scales / sizes / roi values must be known while tracing")
    return tf.unstack(tf.cast(tf.reshape(t, [-1]), COORDS))


def _plan(x, roi, scales, sizes, axes, keep_aspect_ratio_policy):
    """(axis, output size, scale, roi pair) per resized axis; sizes and scales are Python numbers where
    known while tracing, else scalar tensors (an output size of None: the input size times the scale)."""
    r = rank(x)
    axes = [axis_of(a, r) for a in axes] if axes else list(range(r))
    n = len(axes)
    in_sizes = [x.shape[a] if x.shape[a] is not None else tf.cast(tf.shape(x)[a], COORDS) for a in axes]
    size_values, scale_values = _values(sizes, n), _values(scales, n)
    if size_values is not None:
        outs = [int(v) if isinstance(v, float) else v for v in size_values]
        factors = [_ratio(o, i) for o, i in zip(outs, in_sizes, strict=True)]
        if keep_aspect_ratio_policy != "stretch":
            pick = min if keep_aspect_ratio_policy == "not_larger" else max
            s = pick(factors) if _all_static(factors) else _tf_pick(pick, factors)
            factors = [s] * n
            outs = [int(s * i + 0.5) if _all_static([s, i]) else tf.floor(s * i + 0.5) for i in in_sizes]
    elif scale_values is not None:
        factors = scale_values
        outs = [_scaled_size(i, f) for i, f in zip(in_sizes, factors, strict=True)]
    else:
        raise ValueError("Resize needs scales or sizes")
    roi_values = _values(roi, 2 * n)
    rois = [(roi_values[j], roi_values[j + n]) for j in range(n)] if roi_values else [(0.0, 1.0)] * n
    return list(zip(axes, outs, factors, rois, strict=True))


def _scaled_size(size, scale):
    """floor(size * scale): a Python int where both are known while tracing; ``size`` itself for a scale of 1."""
    if _all_static([size, scale]):
        return int(math.floor(size * scale))
    if isinstance(scale, float) and scale == 1.0:
        return size
    return tf.floor(tf.cast(size, COORDS) * scale)


def _all_static(values) -> bool:
    return all(isinstance(v, (int, float)) for v in values)


def _ratio(out, size):
    if _all_static([out, size]):
        return out / size if size else 1.0
    return tf.cast(out, COORDS) / tf.cast(size, COORDS)


def _tf_pick(pick, values):
    values = tf.stack([tf.cast(v, COORDS) for v in values])
    return tf.reduce_min(values) if pick is min else tf.reduce_max(values)


@TF.register("Resize", since=11)
def resize(x, roi=None, scales=None, sizes=None, antialias: int = 0, axes=None,
           coordinate_transformation_mode: str = "half_pixel", cubic_coeff_a: float = -0.75,
           exclude_outside: int = 0, extrapolation_value: float = 0.0, keep_aspect_ratio_policy: str = "stretch",
           mode: str = "nearest", nearest_mode: str = "round_prefer_floor"):
    attrs = {"antialias": antialias and mode != "nearest", "coordinate_transformation_mode": coordinate_transformation_mode, "mode": mode,
             "nearest_mode": nearest_mode, "cubic_coeff_a": cubic_coeff_a, "exclude_outside": exclude_outside,
             "extrapolation_value": extrapolation_value}
    for axis, out, factor, roi_pair in _plan(x, roi, scales, sizes, axes, keep_aspect_ratio_policy):
        unchanged = isinstance(factor, float) and factor == 1.0  # then the output size is the input's, too
        if unchanged and coordinate_transformation_mode != "tf_crop_and_resize":
            continue
        x = _resize_axis(x, axis, out, factor, roi_pair, attrs)
    return x


@TF.register("Upsample", since=9)
def upsample(x, scales, mode: str = "nearest"):
    """The deprecated Upsample (opset 9): Resize with asymmetric coordinates, nearest rounding down."""
    return resize(x, None, scales, mode=mode, coordinate_transformation_mode="asymmetric", nearest_mode="floor")


@TF.register("Resize", since=10)
def resize_10(x, scales, mode: str = "nearest"):
    """Resize-10 is Upsample-9 under a new name (asymmetric coordinates, as onnxruntime runs it)."""
    return upsample(x, scales, mode)


@TF.register("Upsample", since=7)
def upsample_7(x, mode: str = "nearest", scales=None):
    """Upsample-7: the scales are an attribute (one float per axis)."""
    if scales is None:
        raise ValueError("Upsample-7 needs its scales attribute")
    return upsample(x, np.asarray(scales, np.float32), mode)
