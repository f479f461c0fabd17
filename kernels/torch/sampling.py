"""Spatial sampling and detection ops: GridSample, AffineGrid, NonMaxSuppression, CenterCropPad.

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
