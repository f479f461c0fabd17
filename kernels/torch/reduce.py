"""Reductions (``Reduce*`` in both the axes-attribute and axes-input forms),
ArgMax/ArgMin, CumSum/CumProd and TopK.

``Reduce*`` takes its axes as an attribute up to opset 12 (ReduceSum) or 17
(the others) and as an optional input after; with no axes every axis is
reduced, unless ``noop_with_empty_axes=1`` makes the op an identity.
"""

import torch
from torch import Tensor

from kernels.torch import TORCH
from kernels.torch._util import int_bounds, ints, norm_axes, norm_axis


def _resolve_axes(x: Tensor, axes: list[int] | None, noop_with_empty_axes: int) -> list[int] | None:
    """The sorted axes to reduce, or None when the op is an identity."""
    if axes is None or len(axes) == 0:
        if noop_with_empty_axes:
            return None
        return list(range(x.dim()))
    return sorted(norm_axes(axes, x.dim()))


def _empty_reduction(x: Tensor, axes: list[int], keepdims: int, fill: float) -> Tensor:
    shape: list[int] = []
    for i, d in enumerate(x.shape):
        if i in axes:
            if keepdims:
                shape.append(1)
        else:
            shape.append(d)
    return torch.full(shape, fill, dtype=x.dtype, device=x.device)


def _reduce(kind: str, x: Tensor, axes: list[int] | None, keepdims: int, noop: int) -> Tensor:
    dims = _resolve_axes(x, axes, noop)
    if dims is None:
        return x
    keep = keepdims != 0
    if kind == "max" or kind == "min":
        if x.numel() == 0:
            if x.is_floating_point():
                fill = float("-inf") if kind == "max" else float("inf")
            else:
                low, high = int_bounds(x.dtype)
                fill = float(low) if kind == "max" else float(high)
            return _empty_reduction(x, dims, keepdims, fill)
        if x.dim() == 0:
            return x
        return torch.amax(x, dims, keep) if kind == "max" else torch.amin(x, dims, keep)
    if kind == "prod":
        out = x
        for d in dims[::-1]:
            out = torch.prod(out, d, keepdim=keep)
        return out.to(x.dtype)
    if kind == "mean":
        return torch.mean(x.to(torch.float64) if not x.is_floating_point() else x, dims, keep).to(x.dtype)
    if kind == "logsumexp":
        if x.numel() == 0:
            return _empty_reduction(x, dims, keepdims, -float("inf"))
        return torch.logsumexp(x, dims, keep)
    if kind == "l1":
        base = torch.abs(x)
    elif kind == "l2" or kind == "sumsquare":
        base = x * x
    else:
        base = x
    out = torch.sum(base, dims, keep, dtype=x.dtype)
    if kind == "l2":
        out = torch.sqrt(out.to(torch.float64) if not x.is_floating_point() else out).to(x.dtype)
    elif kind == "logsum":
        out = torch.log(out)
    return out


def _axes_input(axes: Tensor | None) -> list[int] | None:
    return None if axes is None else ints(axes)


# One pair per op: the attribute form, then the input form.


@TORCH.register("ReduceSum", since=1)
def reduce_sum_1(data: Tensor, axes: list[int] | None = None, keepdims: int = 1) -> Tensor:
    return _reduce("sum", data, axes, keepdims, 0)


@TORCH.register("ReduceSum", since=13)
def reduce_sum(data: Tensor, axes: Tensor | None = None, keepdims: int = 1, noop_with_empty_axes: int = 0) -> Tensor:
    return _reduce("sum", data, _axes_input(axes), keepdims, noop_with_empty_axes)


@TORCH.register("ReduceMean", since=1)
def reduce_mean_1(data: Tensor, axes: list[int] | None = None, keepdims: int = 1) -> Tensor:
    return _reduce("mean", data, axes, keepdims, 0)


@TORCH.register("ReduceMean", since=18)
def reduce_mean(data: Tensor, axes: Tensor | None = None, keepdims: int = 1, noop_with_empty_axes: int = 0) -> Tensor:
    return _reduce("mean", data, _axes_input(axes), keepdims, noop_with_empty_axes)


@TORCH.register("ReduceMax", since=1)
def reduce_max_1(data: Tensor, axes: list[int] | None = None, keepdims: int = 1) -> Tensor:
    return _reduce("max", data, axes, keepdims, 0)


@TORCH.register("ReduceMax", since=18)
def reduce_max(data: Tensor, axes: Tensor | None = None, keepdims: int = 1, noop_with_empty_axes: int = 0) -> Tensor:
    return _reduce("max", data, _axes_input(axes), keepdims, noop_with_empty_axes)


@TORCH.register("ReduceMin", since=1)
def reduce_min_1(data: Tensor, axes: list[int] | None = None, keepdims: int = 1) -> Tensor:
    return _reduce("min", data, axes, keepdims, 0)


@TORCH.register("ReduceMin", since=18)
def reduce_min(data: Tensor, axes: Tensor | None = None, keepdims: int = 1, noop_with_empty_axes: int = 0) -> Tensor:
    return _reduce("min", data, _axes_input(axes), keepdims, noop_with_empty_axes)


@TORCH.register("ReduceProd", since=1)
def reduce_prod_1(data: Tensor, axes: list[int] | None = None, keepdims: int = 1) -> Tensor:
    return _reduce("prod", data, axes, keepdims, 0)


@TORCH.register("ReduceProd", since=18)
def reduce_prod(data: Tensor, axes: Tensor | None = None, keepdims: int = 1, noop_with_empty_axes: int = 0) -> Tensor:
    return _reduce("prod", data, _axes_input(axes), keepdims, noop_with_empty_axes)


@TORCH.register("ReduceL1", since=1)
def reduce_l1_1(data: Tensor, axes: list[int] | None = None, keepdims: int = 1) -> Tensor:
    return _reduce("l1", data, axes, keepdims, 0)


@TORCH.register("ReduceL1", since=18)
def reduce_l1(data: Tensor, axes: Tensor | None = None, keepdims: int = 1, noop_with_empty_axes: int = 0) -> Tensor:
    return _reduce("l1", data, _axes_input(axes), keepdims, noop_with_empty_axes)


@TORCH.register("ReduceL2", since=1)
def reduce_l2_1(data: Tensor, axes: list[int] | None = None, keepdims: int = 1) -> Tensor:
    return _reduce("l2", data, axes, keepdims, 0)


@TORCH.register("ReduceL2", since=18)
def reduce_l2(data: Tensor, axes: Tensor | None = None, keepdims: int = 1, noop_with_empty_axes: int = 0) -> Tensor:
    return _reduce("l2", data, _axes_input(axes), keepdims, noop_with_empty_axes)


@TORCH.register("ReduceLogSum", since=1)
def reduce_log_sum_1(data: Tensor, axes: list[int] | None = None, keepdims: int = 1) -> Tensor:
    return _reduce("logsum", data, axes, keepdims, 0)


@TORCH.register("ReduceLogSum", since=18)
def reduce_log_sum(data: Tensor, axes: Tensor | None = None, keepdims: int = 1, noop_with_empty_axes: int = 0) -> Tensor:
    return _reduce("logsum", data, _axes_input(axes), keepdims, noop_with_empty_axes)


@TORCH.register("ReduceLogSumExp", since=1)
def reduce_log_sum_exp_1(data: Tensor, axes: list[int] | None = None, keepdims: int = 1) -> Tensor:
    return _reduce("logsumexp", data, axes, keepdims, 0)


@TORCH.register("ReduceLogSumExp", since=18)
def reduce_log_sum_exp(data: Tensor, axes: Tensor | None = None, keepdims: int = 1, noop_with_empty_axes: int = 0) -> Tensor:
    return _reduce("logsumexp", data, _axes_input(axes), keepdims, noop_with_empty_axes)


@TORCH.register("ReduceSumSquare", since=1)
def reduce_sum_square_1(data: Tensor, axes: list[int] | None = None, keepdims: int = 1) -> Tensor:
    return _reduce("sumsquare", data, axes, keepdims, 0)


@TORCH.register("ReduceSumSquare", since=18)
def reduce_sum_square(data: Tensor, axes: Tensor | None = None, keepdims: int = 1, noop_with_empty_axes: int = 0) -> Tensor:
    return _reduce("sumsquare", data, _axes_input(axes), keepdims, noop_with_empty_axes)


# --- arg reductions, scans, top-k ------------------------------------------------


def _arg(x: Tensor, axis: int, keepdims: int, select_last_index: int, largest: bool) -> Tensor:
    axis = norm_axis(axis, x.dim())
    if select_last_index:
        flipped = torch.flip(x, [axis])
        idx = torch.argmax(flipped, axis, True) if largest else torch.argmin(flipped, axis, True)
        idx = x.shape[axis] - 1 - idx
    else:
        idx = torch.argmax(x, axis, True) if largest else torch.argmin(x, axis, True)
    return idx if keepdims else idx.squeeze(axis)


@TORCH.register("ArgMax", since=1)
def arg_max(data: Tensor, axis: int = 0, keepdims: int = 1, select_last_index: int = 0) -> Tensor:
    return _arg(data, axis, keepdims, select_last_index, True)


@TORCH.register("ArgMin", since=1)
def arg_min(data: Tensor, axis: int = 0, keepdims: int = 1, select_last_index: int = 0) -> Tensor:
    return _arg(data, axis, keepdims, select_last_index, False)


def _scan(kind: str, x: Tensor, axis: Tensor, exclusive: int, reverse: int) -> Tensor:
    dim = norm_axis(int(axis.reshape(-1)[0]), x.dim())
    if reverse:
        x = torch.flip(x, [dim])
    out = torch.cumsum(x, dim) if kind == "sum" else torch.cumprod(x, dim)
    if exclusive:
        fill = torch.zeros_like(out.narrow(dim, 0, 1)) if kind == "sum" else torch.ones_like(out.narrow(dim, 0, 1))
        out = torch.cat([fill, out.narrow(dim, 0, out.shape[dim] - 1)], dim)
    if reverse:
        out = torch.flip(out, [dim])
    return out.to(x.dtype)


@TORCH.register("CumSum", since=11)
def cum_sum(x: Tensor, axis: Tensor, exclusive: int = 0, reverse: int = 0) -> Tensor:
    return _scan("sum", x, axis, exclusive, reverse)


@TORCH.register("CumProd", since=26)
def cum_prod(x: Tensor, axis: Tensor, exclusive: int = 0, reverse: int = 0) -> Tensor:
    return _scan("prod", x, axis, exclusive, reverse)


@TORCH.register("TopK", since=10)
@TORCH.register("TopK", since=11)
def top_k(x: Tensor, k: Tensor, axis: int = -1, largest: int = 1, sorted: int = 1) -> tuple[Tensor, Tensor]:  # noqa: A002
    dim = norm_axis(axis, x.dim())
    # A stable sort keeps the lower index first among equal values, as ONNX requires.
    values, indices = torch.sort(x, dim=dim, descending=largest != 0, stable=True)
    n = int(k.reshape(-1)[0])
    return values.narrow(dim, 0, n), indices.narrow(dim, 0, n)


@TORCH.register("TopK", since=1)
def top_k_1(x: Tensor, axis: int = -1, k: int = 1) -> tuple[Tensor, Tensor]:
    """TopK before 10: ``k`` is an attribute, the largest values come first, sorted."""
    return top_k(x, torch.tensor([k]), axis)
