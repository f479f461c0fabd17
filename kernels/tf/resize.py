"""Resize (opset 11+): nearest, linear and cubic, one axis at a time.

For every resized axis the source coordinate of each output index is computed
while tracing (numpy, float64, as onnx's reference does) from the
``coordinate_transformation_mode``; the axis is then resampled by gathering the
neighbouring rows and summing them with their weights. Neighbours outside the
input repeat the edge (or get weight 0 with ``exclude_outside``). Antialiasing
is not implemented. The resized axes' input sizes must be static.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from kernels.tf import TF
from kernels.tf._util import axis_of, rank, static


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


def _resize_axis(x: tf.Tensor, axis: int, out: int, scale: float, roi, attrs: dict) -> tf.Tensor:
    size = x.shape[axis]
    if size is None:
        raise ValueError(f"Resize needs the static size of resized axis {axis}")
    mode = attrs["coordinate_transformation_mode"]
    coords = _source_coords(mode, out, size, scale, roi)
    idx, w = _neighbours(coords, size, attrs["mode"], attrs["nearest_mode"], attrs["cubic_coeff_a"],
                         attrs["exclude_outside"])
    r = rank(x)
    gathered = tf.gather(x, idx.reshape(-1), axis=axis)  # [..., out * k, ...]
    k = idx.shape[1]
    shape = tf.concat([tf.shape(x)[:axis], [out, k], tf.shape(x)[axis + 1:]], 0)
    gathered = tf.reshape(gathered, shape)
    wshape = [out, k] + [1] * (r - axis - 1)
    compute = gathered.dtype if gathered.dtype.is_floating else tf.float32
    y = tf.reduce_sum(tf.cast(gathered, compute) * tf.constant(w.reshape(wshape), compute), axis=axis + 1)
    if mode == "tf_crop_and_resize":
        inside = ((coords >= 0) & (coords <= size - 1)).reshape([out] + [1] * (r - axis - 1))
        y = tf.where(tf.constant(inside), y, tf.cast(attrs["extrapolation_value"], compute))
    if not x.dtype.is_floating:
        y = tf.cast(tf.round(y), x.dtype)
    return tf.cast(y, x.dtype)


def _plan(x, roi, scales, sizes, axes, keep_aspect_ratio_policy):
    """(output size, scale, roi pair) per resized axis, from the inputs and attributes."""
    r = rank(x)
    axes = [axis_of(a, r) for a in axes] if axes else list(range(r))
    in_sizes = [x.shape[a] for a in axes]
    size_values, scale_values = static(sizes), static(scales)
    roi_values = static(roi)
    if size_values is not None and size_values.size:
        outs = [int(v) for v in size_values]
        factors = [o / i if i else 1.0 for o, i in zip(outs, in_sizes, strict=True)]
        if keep_aspect_ratio_policy != "stretch":
            s = min(factors) if keep_aspect_ratio_policy == "not_larger" else max(factors)
            factors = [s] * len(axes)
            outs = [int(s * i + 0.5) for i in in_sizes]
    elif scale_values is not None and scale_values.size:
        factors = [float(v) for v in scale_values]
        outs = [None if i is None else int(math.floor(i * f)) for i, f in zip(in_sizes, factors, strict=True)]
    else:
        raise ValueError("Resize needs constant scales or sizes")
    n = len(axes)
    if roi_values is not None and roi_values.size:
        rois = [(float(roi_values[j]), float(roi_values[j + n])) for j in range(n)]
    else:
        rois = [(0.0, 1.0)] * n
    return [(a, o, f, q) for a, o, f, q in zip(axes, outs, factors, rois, strict=True)]


@TF.register("Resize", since=11)
def resize(x, roi=None, scales=None, sizes=None, antialias: int = 0, axes=None,
           coordinate_transformation_mode: str = "half_pixel", cubic_coeff_a: float = -0.75,
           exclude_outside: int = 0, extrapolation_value: float = 0.0, keep_aspect_ratio_policy: str = "stretch",
           mode: str = "nearest", nearest_mode: str = "round_prefer_floor"):
    if antialias:
        raise NotImplementedError("Resize antialias")
    attrs = {"coordinate_transformation_mode": coordinate_transformation_mode, "mode": mode,
             "nearest_mode": nearest_mode, "cubic_coeff_a": cubic_coeff_a, "exclude_outside": exclude_outside,
             "extrapolation_value": extrapolation_value}
    for axis, out, factor, roi_pair in _plan(x, roi, scales, sizes, axes, keep_aspect_ratio_policy):
        if factor == 1.0 and out in (x.shape[axis], None) and coordinate_transformation_mode != "tf_crop_and_resize":
            continue
        x = _resize_axis(x, axis, out, factor, roi_pair, attrs)
    return x
