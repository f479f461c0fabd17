"""Image sampling and detection: GridSample (16+), AffineGrid (20), CenterCropPad (18), NonMaxSuppression (11).

GridSample, any number of spatial dims, as onnx's reference (PyTorch's rules):

1. each grid coordinate (last grid axis, in reverse dim order: x is the last
   spatial axis) is mapped to pixels, ``(g + 1) / 2 * (d - 1)`` with
   ``align_corners``, else ``((g + 1) * d - 1) / 2``; nearest mode rounds half
   to even;
2. a coordinate outside ``[lo, hi]`` (``[0, d - 1]`` with ``align_corners``,
   else ``[-0.5, d - 0.5]``) is clamped (``border``) or reflected (``reflection``);
3. the output is the weighted sum over the 1 / 2**n / 4**n neighbouring pixels
   (nearest / linear / cubic, Keys' cubic with a = -0.75); a neighbour outside
   the input is 0 (``zeros``), the edge pixel (``border``) or its reflection.

All pixel lookups are one batched gather over the flattened spatial axes.
"""

from __future__ import annotations

import itertools

import numpy as np
import tensorflow as tf

from kernels.tf import TF
from kernels.tf._util import axis_of, rank

_CUBIC_A = -0.75


def _denormalize(g: tf.Tensor, d, align_corners: int) -> tf.Tensor:
    if align_corners:
        return (g + 1) / 2 * (d - 1)
    return ((g + 1) * d - 1) / 2


def _reflect(x: tf.Tensor, lo, hi) -> tf.Tensor:
    """Fold ``x`` back into ``[lo, hi]`` by repeated reflection at both ends."""
    span = hi - lo
    below, above = lo - x, x - hi
    dx = tf.where(x < lo, below, above)
    n = tf.floor(dx / span)
    r = dx - n * span
    even = tf.equal(tf.math.floormod(n, 2), 0)
    low_side = tf.where(even, lo + r, hi - r)
    high_side = tf.where(even, hi - r, lo + r)
    return tf.where(x < lo, low_side, tf.where(x > hi, high_side, x))


def _cubic_weights(t: tf.Tensor) -> list[tf.Tensor]:
    a = _CUBIC_A

    def far(d):
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    def near(d):
        return ((a + 2) * d - (a + 3)) * d * d + 1

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def _neighbours(x: tf.Tensor, mode: str) -> list[tuple[tf.Tensor, tf.Tensor]]:
    """(integer position, weight) of each neighbour of continuous positions ``x``."""
    if mode == "nearest":
        return [(x, tf.ones_like(x))]
    base = tf.floor(x)
    t = x - base
    if mode == "linear":
        return [(base, 1 - t), (base + 1, t)]
    return [(base + k, w) for k, w in zip((-1, 0, 1, 2), _cubic_weights(t), strict=True)]


def _pixel_index(i: tf.Tensor, d, lo, hi, padding_mode: str) -> tuple[tf.Tensor, tf.Tensor]:
    """(index into the axis, whether it reads a pixel) for integer positions ``i`` (as floats)."""
    if padding_mode == "zeros":
        inside = (i >= 0) & (i <= tf.cast(d, i.dtype) - 1)
        return tf.cast(tf.clip_by_value(i, 0, tf.cast(d, i.dtype) - 1), tf.int32), inside
    if padding_mode == "border":
        i = tf.clip_by_value(i, 0, tf.cast(d, i.dtype) - 1)
    else:
        i = _reflect(i, lo, hi)
    return tf.cast(i, tf.int32), tf.ones_like(i, tf.bool)


@TF.register("GridSample", since=16)
def grid_sample(x, grid, *, align_corners: int = 0, mode: str = "linear", padding_mode: str = "zeros"):
    mode = {"bilinear": "linear", "bicubic": "cubic"}.get(mode, mode)
    n = rank(x) - 2
    compute = tf.float64 if x.dtype == tf.float64 else tf.float32
    sizes = [tf.shape(x)[2 + i] for i in range(n)]
    batch, channels = tf.shape(x)[0], tf.shape(x)[1]
    out_spatial = tf.shape(grid)[1:-1]
    g = tf.reshape(tf.cast(grid, compute), tf.stack([batch, -1, n]))
    per_dim = []
    for i in range(n):
        d = tf.cast(sizes[i], compute)
        lo, hi = (tf.zeros([], compute), d - 1) if align_corners else (tf.constant(-0.5, compute), d - 0.5)
        pos = _denormalize(g[..., n - 1 - i], d, align_corners)
        if mode == "nearest":
            pos = tf.round(pos)  # half to even
        outside = (pos < lo) | (pos > hi)
        if padding_mode == "border":
            pos = tf.where(outside, tf.clip_by_value(pos, 0, d - 1), pos)
        elif padding_mode == "reflection":
            pos = tf.where(outside, _reflect(pos, lo, hi), pos)
        per_dim.append([(*_pixel_index(p, sizes[i], lo, hi, padding_mode), w) for p, w in _neighbours(pos, mode)])
    flat = tf.transpose(tf.reshape(x, tf.stack([batch, channels, -1])), [0, 2, 1])  # [N, S, C]
    strides = [tf.reduce_prod(tf.stack(sizes[i + 1:])) if i + 1 < n else 1 for i in range(n)]
    total = None
    for combo in itertools.product(*per_dim):
        index = tf.add_n([idx * stride for (idx, _, _), stride in zip(combo, strides, strict=True)])
        valid = tf.reduce_all(tf.stack([v for _, v, _ in combo]), 0)
        weight = tf.reduce_prod(tf.stack([w for _, _, w in combo]), 0) * tf.cast(valid, compute)
        term = tf.gather(flat, index, batch_dims=1) * tf.cast(weight, x.dtype)[..., None]
        total = term if total is None else total + term
    y = tf.transpose(total, [0, 2, 1])
    return tf.reshape(y, tf.concat([[batch, channels], out_spatial], 0))


def _base_coords(d, align_corners: int, dtype: tf.DType) -> tf.Tensor:
    steps = tf.range(tf.cast(d, dtype))
    if align_corners:
        return tf.where(d > 1, steps * 2 / tf.maximum(tf.cast(d, dtype) - 1, 1) - 1, tf.zeros_like(steps))
    return (steps * 2 + 1) / tf.cast(d, dtype) - 1


@TF.register("AffineGrid", since=20)
def affine_grid(theta, size, *, align_corners: int = 0):
    """theta [N, n, n+1] and size [N, C, *spatial] -> grid [N, *spatial, n] (x first)."""
    n = theta.shape[1]
    spatial = tf.unstack(tf.cast(tf.reshape(size, [-1]), tf.int32))[2:]
    axes = [_base_coords(d, align_corners, theta.dtype) for d in spatial]
    mesh = tf.meshgrid(*axes, indexing="ij")  # one [*spatial] tensor per dim, ONNX order
    coords = [tf.reshape(m, [-1]) for m in reversed(mesh)]  # x (last axis) first
    base = tf.stack([*coords, tf.ones_like(coords[0])], 1)  # [P, n + 1]
    grid = tf.einsum("pk,bjk->bpj", base, theta)
    return tf.reshape(grid, tf.concat([[tf.shape(theta)[0]], tf.stack(spatial), [n]], 0))


@TF.register("CenterCropPad", since=18)
def center_crop_pad(x, shape, *, axes=None):
    """Crop (centered, the extra element at the end) or zero-pad (likewise) each named axis to ``shape``."""
    r = rank(x)
    axes = [axis_of(a, r) for a in axes] if axes else list(range(r))
    targets = tf.unstack(tf.cast(tf.reshape(shape, [-1]), tf.int32), num=len(axes))
    for axis, target in zip(axes, targets, strict=True):
        d = tf.shape(x)[axis]
        grow, shrink = tf.maximum(target - d, 0), tf.maximum(d - target, 0)
        begin = [0] * r
        begin[axis] = shrink // 2
        size = [-1] * r
        size[axis] = tf.minimum(target, d)
        x = tf.slice(x, tf.stack(begin), tf.stack(size))
        paddings = [[0, 0]] * r
        paddings[axis] = [grow // 2, grow - grow // 2]
        x = tf.pad(x, tf.convert_to_tensor(paddings))
    return x


def _corners(boxes: tf.Tensor, center_point_box: int) -> tf.Tensor:
    """Boxes as [y1, x1, y2, x2] (TensorFlow's order; any diagonal corners)."""
    if not center_point_box:
        return boxes
    xc, yc, w, h = tf.unstack(boxes, axis=-1)
    return tf.stack([yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2], -1)


@TF.register("NonMaxSuppression", since=11)
def non_max_suppression(boxes, scores, max_output_boxes_per_class=None, iou_threshold=None, score_threshold=None,
                        *, center_point_box: int = 0):
    """[k, 3] (batch, class, box) of the boxes kept per batch and class, best score first.

    The batch and class counts must be static (one suppression per pair).
    """
    batches, classes = boxes.shape[0], scores.shape[1]
    if batches is None or classes is None:
        raise ValueError("NonMaxSuppression needs static batch and class counts")
    limit = tf.zeros([], tf.int32) if max_output_boxes_per_class is None else \
        tf.cast(tf.reshape(max_output_boxes_per_class, []), tf.int32)
    iou = tf.zeros([], tf.float32) if iou_threshold is None else tf.cast(tf.reshape(iou_threshold, []), tf.float32)
    floor = tf.constant(-np.inf, tf.float32) if score_threshold is None else \
        tf.cast(tf.reshape(score_threshold, []), tf.float32)
    corners = tf.cast(_corners(boxes, center_point_box), tf.float32)
    pieces = []
    for b in range(batches):
        for c in range(classes):
            kept = tf.image.non_max_suppression(corners[b], tf.cast(scores[b, c], tf.float32), limit, iou, floor)
            kept = tf.cast(kept, tf.int64)
            ids = tf.fill(tf.shape(kept), tf.constant(b, tf.int64)), tf.fill(tf.shape(kept), tf.constant(c, tf.int64))
            pieces.append(tf.stack([*ids, kept], 1))
    return tf.concat(pieces, 0) if pieces else tf.zeros([0, 3], tf.int64)
