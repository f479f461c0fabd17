"""Spatial sampling and detection ops: GridSample, AffineGrid, NonMaxSuppression, CenterCropPad, RoiAlign.

GridSample maps onto ``F.grid_sample`` (the same normalised-coordinate,
align_corners and padding conventions); opset 20 renamed the modes
``bilinear``/``bicubic`` to ``linear``/``cubic``.
"""

import torch
import torch.nn.functional as F
from torch import Tensor

from kernels.torch import TORCH
from kernels.torch._util import ints, norm_axes


def _grid_mode(mode: str) -> str:
    if mode == "linear":
        return "bilinear"
    if mode == "cubic":
        return "bicubic"
    return mode


@TORCH.register("GridSample", since=16)
def grid_sample(
    X: Tensor,
    grid: Tensor,
    align_corners: int = 0,
    mode: str = "bilinear",
    padding_mode: str = "zeros",
) -> Tensor:  # noqa: N803
    return F.grid_sample(X, grid.to(X.dtype), _grid_mode(mode), padding_mode, align_corners != 0)


@TORCH.register("GridSample", since=20)
def grid_sample_20(
    X: Tensor,
    grid: Tensor,
    align_corners: int = 0,
    mode: str = "linear",
    padding_mode: str = "zeros",
) -> Tensor:  # noqa: N803
    return F.grid_sample(X, grid.to(X.dtype), _grid_mode(mode), padding_mode, align_corners != 0)


@TORCH.register("AffineGrid", since=20)
def affine_grid(theta: Tensor, size: Tensor, align_corners: int = 0) -> Tensor:
    return F.affine_grid(theta, ints(size), align_corners != 0)


@TORCH.register("CenterCropPad", since=18)
def center_crop_pad(input_data: Tensor, shape: Tensor, axes: list[int] | None = None) -> Tensor:
    rank = input_data.dim()
    targets = ints(shape)
    chosen = list(range(rank)) if axes is None else norm_axes(axes, rank)
    out = input_data
    for k in range(len(chosen)):
        axis, size = chosen[k], targets[k]
        n = out.shape[axis]
        if size < n:  # crop: the extra element goes to the end
            out = out.narrow(axis, (n - size) // 2, size)
        elif size > n:  # pad with zeros: the extra element goes to the end
            before = (size - n) // 2
            pads = [0] * (2 * rank)
            pads[2 * (rank - 1 - axis)] = before
            pads[2 * (rank - 1 - axis) + 1] = size - n - before
            out = F.pad(out, pads)
    return out


def _iou(box: Tensor, others: Tensor, center: int) -> Tensor:
    """IoU of one box ``[4]`` with ``[K, 4]`` boxes (corners or center/size format)."""
    if center != 0:
        half = torch.cat([box[2:] / 2, box[2:] / 2])
        b = torch.cat([box[:2], box[:2]]) + torch.cat([-half[:2], half[2:]])
        oh = others[:, 2:] / 2
        o = torch.cat([others[:, :2] - oh, others[:, :2] + oh], 1)
    else:
        b = torch.cat([torch.minimum(box[:2], box[2:]), torch.maximum(box[:2], box[2:])])
        o = torch.cat(
            [
                torch.minimum(others[:, :2], others[:, 2:]),
                torch.maximum(others[:, :2], others[:, 2:]),
            ],
            1,
        )
    lo = torch.maximum(b[:2], o[:, :2])
    hi = torch.minimum(b[2:], o[:, 2:])
    inter = torch.clamp(hi - lo, min=0.0).prod(1)
    area_b = (b[2:] - b[:2]).prod()
    area_o = (o[:, 2:] - o[:, :2]).prod(1)
    return inter / (area_b + area_o - inter)


@TORCH.register("NonMaxSuppression", since=10)  # same in 10 and 11
@TORCH.register("NonMaxSuppression", since=11)
def non_max_suppression(
    boxes: Tensor,
    scores: Tensor,
    max_output_boxes_per_class: Tensor | None = None,
    iou_threshold: Tensor | None = None,
    score_threshold: Tensor | None = None,
    center_point_box: int = 0,
) -> Tensor:
    limit = 0 if max_output_boxes_per_class is None else int(max_output_boxes_per_class.item())
    iou_max = 0.0 if iou_threshold is None else float(iou_threshold.item())
    selected: list[list[int]] = []
    for b in range(scores.shape[0]):
        for c in range(scores.shape[1]):
            s = scores[b, c]
            order = torch.argsort(s, descending=True, stable=True)
            kept: list[int] = []
            ranked: list[int] = order.tolist()
            for idx in ranked:
                if len(kept) >= limit:
                    break
                if score_threshold is not None and float(s[idx]) <= float(score_threshold.item()):
                    break
                if len(kept) > 0:
                    ious = _iou(
                        boxes[b, idx],
                        boxes[b][torch.tensor(kept, device=boxes.device)],
                        center_point_box,
                    )
                    if bool((ious > iou_max).any()):
                        continue
                kept.append(idx)
            for idx in kept:
                selected.append([b, c, idx])
    if len(selected) == 0:
        return torch.zeros((0, 3), dtype=torch.int64, device=boxes.device)
    return torch.tensor(selected, dtype=torch.int64, device=boxes.device)


def _roi_axis(coord: Tensor, size: int) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Bilinear taps along one axis as RoiAlign takes them: low and high index, their
    weights, and whether the sample lies inside ``[-1, size]`` (outside it reads 0)."""
    valid = (coord >= -1.0) & (coord <= float(size))
    c = coord.clamp(min=0.0)
    low = torch.floor(c).to(torch.int64)
    at_end = low >= size - 1
    low = torch.where(at_end, torch.full_like(low, size - 1), low)
    high = torch.where(at_end, low, low + 1)
    c = torch.where(at_end, low.to(c.dtype), c)
    frac = c - low.to(c.dtype)
    return low, high, 1.0 - frac, frac, valid


@TORCH.register("RoiAlign", since=16)
def roi_align(x: Tensor, rois: Tensor, batch_indices: Tensor, coordinate_transformation_mode: str = "half_pixel",
              mode: str = "avg", output_height: int = 1, output_width: int = 1, sampling_ratio: int = 0,
              spatial_scale: float = 1.0) -> Tensor:
    """One ROI at a time (each has its own sampling grid)."""
    height, width = x.shape[2], x.shape[3]
    offset = 0.5 if coordinate_transformation_mode == "half_pixel" else 0.0
    boxes = rois.to(torch.float64) * spatial_scale - offset
    outputs: list[Tensor] = []
    for r in range(rois.shape[0]):
        x0, y0 = float(boxes[r, 0].item()), float(boxes[r, 1].item())
        roi_w, roi_h = float(boxes[r, 2].item()) - x0, float(boxes[r, 3].item()) - y0
        if offset == 0.0:
            roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
        bin_h, bin_w = roi_h / output_height, roi_w / output_width
        grid_h = sampling_ratio if sampling_ratio > 0 else int(torch.ceil(torch.tensor(bin_h)).item())
        grid_w = sampling_ratio if sampling_ratio > 0 else int(torch.ceil(torch.tensor(bin_w)).item())
        ys = _roi_samples(y0, bin_h, output_height, grid_h, x.device)
        xs = _roi_samples(x0, bin_w, output_width, grid_w, x.device)
        y_low, y_high, hy, ly, valid_y = _roi_axis(ys, height)
        x_low, x_high, hx, lx, valid_x = _roi_axis(xs, width)
        fmap = x[int(batch_indices[r].item())].to(torch.float64)
        taps = [(fmap[:, y_low][:, :, x_low], hy[:, None] * hx[None, :]),
                (fmap[:, y_low][:, :, x_high], hy[:, None] * lx[None, :]),
                (fmap[:, y_high][:, :, x_low], ly[:, None] * hx[None, :]),
                (fmap[:, y_high][:, :, x_high], ly[:, None] * lx[None, :])]
        valid = (valid_y[:, None] & valid_x[None, :]).to(fmap.dtype)
        if mode == "max":
            sample = torch.stack([v * w for v, w in taps], 0).amax(0) * valid
            pooled = sample.reshape(-1, output_height, grid_h, output_width, grid_w).amax(4).amax(2)
        else:
            sample = (taps[0][0] * taps[0][1] + taps[1][0] * taps[1][1] + taps[2][0] * taps[2][1]
                      + taps[3][0] * taps[3][1]) * valid
            pooled = sample.reshape(-1, output_height, grid_h, output_width, grid_w).sum(4).sum(2)
            pooled = pooled / float(max(grid_h * grid_w, 1))
        outputs.append(pooled)
    if len(outputs) == 0:
        return x.new_zeros([0, x.shape[1], output_height, output_width])
    return torch.stack(outputs, 0).to(x.dtype)


@TORCH.register("RoiAlign", since=10)
def roi_align_10(x: Tensor, rois: Tensor, batch_indices: Tensor, mode: str = "avg", output_height: int = 1,
                 output_width: int = 1, sampling_ratio: int = 0, spatial_scale: float = 1.0) -> Tensor:
    """Before 16 there is no coordinate mode: boxes are read as ``output_half_pixel`` does."""
    return roi_align(x, rois, batch_indices, "output_half_pixel", mode, output_height, output_width, sampling_ratio,
                     spatial_scale)


def _roi_samples(start: float, bin_size: float, bins: int, grid: int, device: torch.device) -> Tensor:
    """Sample coordinates along one axis: ``grid`` evenly spaced points in the middle of each sub-bin."""
    index = torch.arange(bins * grid, dtype=torch.float64, device=device)
    return start + torch.floor(index / grid) * bin_size + (torch.remainder(index, grid) + 0.5) * bin_size / grid
