"""Sorting, selection and scans: sort, topk, kthvalue, median, cumprod, cummax/cummin, logcumsumexp.

- ``sort``/``topk``/``kthvalue``/``median`` are ``TopK`` (which returns ties in
  index order, as a stable sort does); ``sort`` asks for every element along ``dim``.
- The scans ONNX lacks (``CumSum`` is the only one) are an ``n × n`` mask
  ``j <= i`` over the scanned axis moved last: ``cumprod`` is ``ReduceProd`` of
  ``Where(mask, x, 1)``, ``logcumsumexp`` is ``ReduceLogSumExp`` of ``Where(mask, x, -inf)``,
  ``cummax``/``cummin`` reduce ``Where(mask, x, ∓inf)`` and take the last index
  that attains the result (as torch does on ties). O(n²) memory in the scanned size.
- A 0-d input is handled as one element.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import ir
from converter.frontends.torch.emit import BOOL, INT64, Emitter, rank
from converter.frontends.torch.ops import ATEN


def _topk(e: Emitter, x: ir.Value, k: ir.Value, dim: int, largest: bool) -> tuple[ir.Value, ir.Value]:
    """TopK of ``x`` along ``dim`` (sorted); a 0-d ``x`` is one element."""
    if rank(x) == 0:
        values, indices = e.op("TopK", e.op("Reshape", x, e.ints([1])), k, axis=0, largest=largest, sorted=1, outputs=2)
        return e.op("Reshape", values, e.ints([])), e.op("Reshape", indices, e.ints([]))
    return e.op("TopK", x, k, axis=dim, largest=largest, sorted=1, outputs=2)


@ATEN.register("aten::sort")
def sort(e: Emitter, x: ir.Value, dim: int = -1, descending: bool = False) -> tuple[ir.Value, ir.Value]:
    if rank(x) == 0:
        return x, e.const(np.int64(0))
    dim %= rank(x)
    return _topk(e, x, e.shape_of(x, dim, dim + 1), dim, descending)


@ATEN.register("aten::sort.stable")
def sort_stable(e: Emitter, x: ir.Value, *, stable: bool | None = None, dim: int = -1, descending: bool = False) -> tuple[ir.Value, ir.Value]:
    return sort(e, x, dim, descending)


@ATEN.register("aten::topk")
def topk(e: Emitter, x: ir.Value, k: Any, dim: int = -1, largest: bool = True, sorted: bool = True) -> tuple[ir.Value, ir.Value]:  # noqa: A002
    return _topk(e, x, e.shape_vector([k]), dim % max(rank(x), 1), largest)


def _kth(e: Emitter, x: ir.Value, k: Any, dim: int, keepdim: bool) -> tuple[ir.Value, ir.Value]:
    """The ``k``-th smallest (1-based; ``k`` an int or 0-d int64) along ``dim``, with its index."""
    values, indices = _topk(e, x, e.shape_vector([k]), dim, largest=False)
    if rank(x) == 0:
        return values, indices
    last = k - 1 if isinstance(k, int) else e.op("Sub", k, e.const(np.int64(1)))
    last = e.operand(last, INT64)
    values, indices = e.op("Gather", values, last, axis=dim), e.op("Gather", indices, last, axis=dim)
    if keepdim:
        axis = e.ints([dim])
        values, indices = e.op("Unsqueeze", values, axis), e.op("Unsqueeze", indices, axis)
    return values, indices


@ATEN.register("aten::kthvalue")
def kthvalue(e: Emitter, x: ir.Value, k: Any, dim: int = -1, keepdim: bool = False) -> tuple[ir.Value, ir.Value]:
    return _kth(e, x, k, dim % max(rank(x), 1), keepdim)


def _lower_middle(e: Emitter, x: ir.Value, dim: int) -> ir.Value:
    """``(n - 1) // 2 + 1`` for ``n`` elements along ``dim``: the 1-based rank of the lower median."""
    n = e.op("Gather", e.shape_of(x), e.const(np.int64(dim)), axis=0)
    half = e.op("Div", e.op("Sub", n, e.const(np.int64(1))), e.const(np.int64(2)))
    return e.op("Add", half, e.const(np.int64(1)))


@ATEN.register("aten::median.dim")
def median_dim(e: Emitter, x: ir.Value, dim: int, keepdim: bool = False) -> tuple[ir.Value, ir.Value]:
    if rank(x) == 0:
        return x, e.const(np.int64(0))
    dim %= rank(x)
    return _kth(e, x, _lower_middle(e, x, dim), dim, keepdim)


@ATEN.register("aten::median")
def median(e: Emitter, x: ir.Value) -> ir.Value:
    flat = e.op("Reshape", x, e.ints([-1]))
    flat.shape = ir.Shape([None])
    return _kth(e, flat, _lower_middle(e, flat, 0), 0, False)[0]


# ---- scans ------------------------------------------------------------------------


def _scan_rows(e: Emitter, x: ir.Value, dim: int) -> tuple[ir.Value, ir.Value, list[int] | None]:
    """``x`` with ``dim`` moved last and a new axis before it (``[..., 1, n]``), the
    ``[n, n]`` mask ``j <= i``, and the permutation to undo (``None`` if none was needed)."""
    n = rank(x)
    perm = None
    if dim != n - 1:
        perm = [a for a in range(n) if a != dim] + [dim]
        x = e.op("Transpose", x, perm=perm)
    size = e.op("Squeeze", e.shape_of(x, n - 1, n), e.ints([0]))
    steps = e.op("Range", e.const(np.int64(0)), size, e.const(np.int64(1)))
    mask = e.op("LessOrEqual", e.op("Unsqueeze", steps, e.ints([0])), e.op("Unsqueeze", steps, e.ints([1])))
    return e.op("Unsqueeze", x, e.ints([n - 1])), mask, perm


def _unscan(e: Emitter, out: ir.Value, perm: list[int] | None) -> ir.Value:
    if perm is None:
        return out
    return e.op("Transpose", out, perm=[int(i) for i in np.argsort(perm)])


def _masked_scan(e: Emitter, x: ir.Value, dim: int, onnx_op: str, fill: float) -> ir.Value:
    if rank(x) == 0:
        return x
    dim %= rank(x)
    rows, mask, perm = _scan_rows(e, x, dim)
    masked = e.op("Where", mask, rows, e.const(fill, x.dtype))
    return _unscan(e, e.op(onnx_op, masked, e.ints([-1]), keepdims=0), perm)


@ATEN.register("aten::cumprod")
def cumprod(e: Emitter, x: ir.Value, dim: int, *, dtype: Any = None) -> ir.Value:
    return _masked_scan(e, e.cast(x, e.out_dtype), dim, "ReduceProd", 1)


@ATEN.register("aten::logcumsumexp")
def logcumsumexp(e: Emitter, x: ir.Value, dim: int) -> ir.Value:
    return _masked_scan(e, e.cast(x, e.out_dtype), dim, "ReduceLogSumExp", -np.inf)


def _extreme(dtype: ir.DataType, largest: bool) -> Any:
    """The value no element beats: -inf for a max over floats, the type's max for a min over ints."""
    if dtype.is_floating_point():
        return -np.inf if largest else np.inf
    if dtype == BOOL:
        return not largest
    info = np.iinfo(dtype.numpy())
    return info.min if largest else info.max


def _cum_extreme(e: Emitter, x: ir.Value, dim: int, largest: bool) -> tuple[ir.Value, ir.Value]:
    if rank(x) == 0:
        return x, e.const(np.int64(0))
    dim %= rank(x)
    rows, mask, perm = _scan_rows(e, x, dim)
    masked = e.op("Where", mask, rows, e.const(_extreme(x.dtype, largest), x.dtype))
    values = e.op("ReduceMax" if largest else "ReduceMin", masked, e.ints([-1]), keepdims=1)
    hits = e.op("And", mask, e.op("Equal", rows, values))
    positions = e.op("Range", e.const(np.int64(0)), e.op("Squeeze", e.shape_of(mask, 0, 1), e.ints([0])), e.const(np.int64(1)))
    last = e.op("ReduceMax", e.op("Where", hits, positions, e.const(np.int64(-1))), e.ints([-1]), keepdims=0)
    values = e.op("Squeeze", values, e.ints([-1]))
    return _unscan(e, values, perm), _unscan(e, last, perm)


@ATEN.register("aten::cummax")
def cummax(e: Emitter, x: ir.Value, dim: int) -> tuple[ir.Value, ir.Value]:
    return _cum_extreme(e, x, dim, largest=True)


@ATEN.register("aten::cummin")
def cummin(e: Emitter, x: ir.Value, dim: int) -> tuple[ir.Value, ir.Value]:
    return _cum_extreme(e, x, dim, largest=False)


# ---- searching a sorted sequence ------------------------------------------------------


@ATEN.register("aten::searchsorted.Tensor")
def searchsorted(
    e: Emitter, sorted_sequence: ir.Value, x: ir.Value, *, out_int32: bool = False, right: bool = False,
    side: str | None = None, sorter: Any = None,
) -> ir.Value:
    """The insertion point is the count of sequence elements ``< x`` (``<= x`` on the right)."""
    if sorter is not None:
        raise NotImplementedError("searchsorted with a sorter")
    right = right or side == "right"
    dt = x.dtype if x.dtype == sorted_sequence.dtype else ir.DataType.DOUBLE  # compare in a common type
    sequence = e.cast(sorted_sequence, dt)
    if rank(sorted_sequence) > 1:  # one sequence per leading index: [..., 1, N] against [..., M, 1]
        sequence = e.op("Unsqueeze", sequence, e.ints([-2]))
    values = e.op("Unsqueeze", e.cast(x, dt), e.ints([-1]))
    below = e.op("LessOrEqual" if right else "Less", sequence, values)
    count = e.op("ReduceSum", e.cast(below, INT64), e.ints([-1]), keepdims=0)
    return e.cast(count, ir.DataType.INT32) if out_int32 else count


@ATEN.register("aten::bucketize.Tensor")
def bucketize(e: Emitter, x: ir.Value, boundaries: ir.Value, *, out_int32: bool = False, right: bool = False) -> ir.Value:
    return searchsorted(e, boundaries, x, out_int32=out_int32, right=right)
