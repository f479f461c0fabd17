"""Resize (opsets 11+): nearest, linear and cubic interpolation over any axes.

Each resized axis is computed independently (ONNX resize is separable): the
output coordinate is mapped to an input coordinate by the
``coordinate_transformation_mode``, then sampled by ``mode``.
"""

import math

import torch
from torch import Tensor

from kernels.torch import TORCH
from kernels.torch._util import floats, ints, norm_axes


def _source_coords(
    n_in: int, n_out: int, scale: float, mode: str, roi_start: float, roi_end: float, device: torch.device
) -> Tensor:
    o = torch.arange(n_out, dtype=torch.float64, device=device)
    if mode == "asymmetric":
        return o / scale
    if mode == "align_corners":
        if n_out == 1:
            return torch.zeros_like(o)
        return o * (n_in - 1) / (n_out - 1)
    if mode == "pytorch_half_pixel":
        if n_out == 1:
            return torch.full_like(o, -0.5)
        return (o + 0.5) / scale - 0.5
    if mode == "tf_crop_and_resize":
        if n_out == 1:
            return torch.full_like(o, (roi_end - roi_start) * (n_in - 1) / 2.0)
        return roi_start * (n_in - 1) + o * (roi_end - roi_start) * (n_in - 1) / (n_out - 1)
    if mode == "half_pixel_symmetric":
        adj = n_out / (scale * n_in)
        center = n_in / 2.0
        offset = center * (1.0 - adj)
        return offset + (o + 0.5) / scale - 0.5
    return (o + 0.5) / scale - 0.5  # half_pixel


def _nearest(x: Tensor, axis: int, coords: Tensor, n_in: int, rounding: str, scale: float) -> Tensor:
    if rounding == "floor":
        idx = torch.floor(coords)
    elif rounding == "ceil":
        idx = torch.ceil(coords)
    elif rounding == "round_prefer_ceil":
        idx = torch.floor(coords + 0.5)
    elif scale < 1.0 and rounding == "simple":
        idx = torch.ceil(coords)  # opset 10 downsampling
    else:  # round_prefer_floor
        idx = torch.ceil(coords - 0.5)
    idx = torch.clamp(idx, 0, n_in - 1).to(torch.int64)
    return torch.index_select(x, axis, idx)


def _cubic_weights(t: Tensor, a: float) -> list[Tensor]:
    """Keys cubic weights for taps at offsets -1, 0, 1, 2 around ``floor(coord)``."""
    out: list[Tensor] = []
    for off in [-1.0, 0.0, 1.0, 2.0]:
        d = torch.abs(t - off)
        w1 = ((a + 2) * d - (a + 3)) * d * d + 1
        w2 = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
        out.append(torch.where(d <= 1, w1, torch.where(d < 2, w2, torch.zeros_like(d))))
    return out


def _antialias_taps(coords: Tensor, mode: str, cubic_a: float, scale: float) -> tuple[Tensor, list[int], list[Tensor]]:
    """Antialiased taps: the filter is stretched by ``1 / scale`` when downsampling and its weights normalised.

    Taps sit at ``base + i`` with ``base = ceil(x) - 1`` (an integer coordinate
    takes the pixel on its left as base, as the ONNX reference does).
    """
    s = min(scale, 1.0)
    base = torch.ceil(coords) - 1
    ratio = coords - base
    start = int(math.floor((-1.0 if mode == "linear" else -2.0) / s)) + 1
    offsets = list(range(start, 2 - start))
    weights: list[Tensor] = []
    for i in offsets:
        arg = (i - ratio) * s
        if mode == "linear":
            weights.append(torch.clamp(1 - torch.abs(arg), 0.0, 1.0))
        else:
            weights.append(_cubic_weights(arg, cubic_a)[1])
    total = weights[0]
    for w in weights[1:]:
        total = total + w
    return base.to(torch.int64), offsets, [w / total for w in weights]


def _interp(
    x: Tensor, axis: int, coords: Tensor, n_in: int, mode: str, cubic_a: float, exclude_outside: int, antialias: float
) -> Tensor:
    """Linear or cubic sampling along ``axis``; ``antialias`` is the scale when antialiasing, else 0."""
    if antialias > 0:
        base_i, offsets, weights = _antialias_taps(coords, mode, cubic_a, antialias)
        t = coords
    else:
        base = torch.floor(coords)
        t = coords - base
        base_i = base.to(torch.int64)
        if mode == "linear":
            offsets = [0, 1]
            weights = [1.0 - t, t]
        else:
            offsets = [-1, 0, 1, 2]
            weights = _cubic_weights(t, cubic_a)
    if exclude_outside:
        masked: list[Tensor] = []
        for k in range(len(offsets)):
            pos = base_i + offsets[k]
            masked.append(torch.where((pos >= 0) & (pos < n_in), weights[k], torch.zeros_like(t)))
        total = masked[0]
        for w in masked[1:]:
            total = total + w
        weights = [w / total for w in masked]
    shape = [1] * x.dim()
    shape[axis] = coords.shape[0]
    out = torch.zeros(1, dtype=torch.float64, device=x.device)
    xd = x.to(torch.float64)
    for k in range(len(offsets)):
        idx = torch.clamp(base_i + offsets[k], 0, n_in - 1)
        out = out + torch.index_select(xd, axis, idx) * weights[k].reshape(shape)
    return out


def _resize_axis(
    x: Tensor, axis: int, n_out: int, scale: float, attrs: tuple[str, str, str, float, int, float], roi: tuple[float, float],
    antialias: int = 0,
) -> Tensor:
    mode, ctm, nearest_mode, cubic_a, exclude_outside, extrapolation_value = attrs
    n_in = x.shape[axis]
    coords = _source_coords(n_in, n_out, scale, ctm, roi[0], roi[1], x.device)
    if mode == "nearest":
        out = _nearest(x.to(torch.float64), axis, coords, n_in, nearest_mode, scale)
    else:
        out = _interp(x, axis, coords, n_in, mode, cubic_a, exclude_outside, scale if antialias else 0.0)
    if ctm == "tf_crop_and_resize":
        outside = (coords < 0) | (coords > n_in - 1)
        shape = [1] * x.dim()
        shape[axis] = n_out
        out = torch.where(outside.reshape(shape), torch.full_like(out, extrapolation_value), out)
    return out


def _sizes_from_scales(shape: list[int], scales: list[float]) -> list[int]:
    return [int(math.floor(shape[i] * scales[i])) for i in range(len(shape))]


@TORCH.register("Resize", since=11)
def resize(
    x: Tensor,
    roi: Tensor | None = None,
    scales: Tensor | None = None,
    sizes: Tensor | None = None,
    antialias: int = 0,
    axes: list[int] | None = None,
    coordinate_transformation_mode: str = "half_pixel",
    cubic_coeff_a: float = -0.75,
    exclude_outside: int = 0,
    extrapolation_value: float = 0.0,
    keep_aspect_ratio_policy: str = "stretch",
    mode: str = "nearest",
    nearest_mode: str = "round_prefer_floor",
) -> Tensor:
    rank = x.dim()
    ax = list(range(rank)) if axes is None else norm_axes(axes, rank)
    shape: list[int] = list(x.shape)
    in_sizes = [shape[a] for a in ax]
    if sizes is not None and sizes.numel() > 0:
        out_sizes = ints(sizes)
        sc = [out_sizes[i] / in_sizes[i] for i in range(len(ax))]
        if keep_aspect_ratio_policy != "stretch":
            pick = min(sc) if keep_aspect_ratio_policy == "not_larger" else max(sc)
            sc = [pick] * len(ax)
            out_sizes = [int(math.floor(in_sizes[i] * pick + 0.5)) for i in range(len(ax))]
    else:
        assert scales is not None
        sc = floats(scales)
        out_sizes = _sizes_from_scales(in_sizes, sc)
    roi_v: list[float] = []
    if roi is not None:
        roi_v = floats(roi)
    attrs = (mode, coordinate_transformation_mode, nearest_mode, cubic_coeff_a, exclude_outside, extrapolation_value)
    out = x
    for i, a in enumerate(ax):
        r = (0.0, 1.0)
        if len(roi_v) == 2 * len(ax):
            r = (roi_v[i], roi_v[i + len(ax)])
        elif len(roi_v) == 2 * rank:
            r = (roi_v[a], roi_v[a + rank])
        if out_sizes[i] != in_sizes[i] or sc[i] != 1.0 or coordinate_transformation_mode == "tf_crop_and_resize":
            out = _resize_axis(out, a, out_sizes[i], sc[i], attrs, r, antialias)
    return out.to(x.dtype) if x.is_floating_point() else torch.round(out).to(x.dtype)


@TORCH.register("Upsample", since=9)
def upsample(x: Tensor, scales: Tensor, mode: str = "nearest") -> Tensor:
    """Upsample-9 (deprecated in 10): Resize with ``asymmetric`` coordinates, nearest rounding down."""
    return resize(x, None, scales, None, coordinate_transformation_mode="asymmetric", mode=mode, nearest_mode="floor")


@TORCH.register("Resize", since=10)
def resize_10(x: Tensor, scales: Tensor, mode: str = "nearest") -> Tensor:
    """Resize-10 is Upsample-9 under a new name (asymmetric coordinates, as onnxruntime runs it)."""
    return upsample(x, scales, mode)


@TORCH.register("Upsample", since=7)
def upsample_7(x: Tensor, mode: str = "nearest", scales: list[float] | None = None) -> Tensor:
    assert scales is not None
    return upsample(x, torch.tensor(scales, dtype=torch.float64), mode)
