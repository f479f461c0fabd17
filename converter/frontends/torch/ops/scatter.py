"""Writes into tensors: index_put, scatter_reduce, put, slice_scatter, and diagonals.

- ``index_put(x, indices, values)``: the indexed axes move to the front, the
  index tensors are broadcast and stacked as ``ScatterND`` indices, ``values``
  is broadcast to the shape ``x[indices]`` has in torch (index dims where torch
  puts them) and moved to ``ScatterND``'s layout; ``accumulate`` is
  ``reduction="add"``, which sums duplicate indices as torch does. A boolean
  mask over the whole of ``x`` with a single value is ``Where``.
- ``scatter_reduce(x, dim, index, src, reduce, include_self)``: ``ScatterElements``
  with reduction add/mul/max/min; ``include_self=False`` first writes the
  reduction's identity at the scattered positions; ``mean`` divides a scattered
  sum by a scattered count.
- ``diagonal``: the two axes move last and are flattened; the diagonal is a
  ``Gather`` of static flat positions (``diagonal_scatter`` writes them back
  with ``ScatterElements``). The two sizes must be static.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import ir
from converter.frontends.torch.emit import BOOL, INT64, Emitter, rank
from converter.frontends.torch.ops import ATEN


def _wrap(e: Emitter, index: ir.Value, size: ir.Value) -> ir.Value:
    """Negative indices counted from the end (``index + size`` where ``index < 0``)."""
    index = e.cast(index, INT64)
    return e.op("Where", e.op("Less", index, e.const(np.int64(0))), e.op("Add", index, size), index)


def _inverse(perm: list[int]) -> list[int]:
    return [int(i) for i in np.argsort(perm)]


# ---- index_put ------------------------------------------------------------------


@ATEN.register("aten::index_put")
def index_put(e: Emitter, x: ir.Value, indices: list[ir.Value | None], values: ir.Value, accumulate: bool = False) -> ir.Value:
    values = e.cast(values, x.dtype)
    positions = [i for i, idx in enumerate(indices) if idx is not None]
    if any(indices[p].dtype == BOOL for p in positions):
        return _masked_put(e, x, [indices[p] for p in positions], positions, values, accumulate)
    n = rank(x)
    others = [a for a in range(n) if a not in positions]
    perm = positions + others
    moved = e.op("Transpose", x, perm=perm) if perm != list(range(n)) else x
    sizes = e.shape_of(x)
    idx = [_wrap(e, indices[p], e.op("Gather", sizes, e.const(np.int64(p)), axis=0)) for p in positions]
    batch = idx[0]
    for i in idx[1:]:
        batch = e.op("Add", batch, i)  # only its broadcast shape is used
    batch_shape = e.shape_of(batch)
    batch_rank = max(rank(indices[p]) for p in positions)
    stacked = e.op("Concat", *[e.op("Unsqueeze", e.op("Expand", i, batch_shape), e.ints([-1])) for i in idx], axis=-1)
    start = positions[0]
    in_place = positions == list(range(start, start + len(positions))) and start > 0
    if in_place:  # torch keeps the index dims where the indexed axes were
        torch_shape = e.op("Concat", e.shape_of(x, 0, start), batch_shape, e.shape_of(x, start + len(positions)), axis=0)
        updates = e.op("Expand", values, torch_shape)
        rest = n - len(positions)
        front = list(range(start, start + batch_rank)) + list(range(start)) + list(range(start + batch_rank, batch_rank + rest))
        updates = e.op("Transpose", updates, perm=front)
    else:
        rest_shape = e.op("Gather", sizes, e.ints(others), axis=0) if others else e.ints([])
        updates = e.op("Expand", values, e.op("Concat", batch_shape, rest_shape, axis=0))
    out = e.op("ScatterND", moved, stacked, updates, reduction="add" if accumulate else None)
    return e.op("Transpose", out, perm=_inverse(perm)) if perm != list(range(n)) else out


def _masked_put(e: Emitter, x: ir.Value, masks: list[ir.Value], positions: list[int], values: ir.Value, accumulate: bool) -> ir.Value:
    """``x[mask] = v`` for one mask over all of ``x`` (leading axes) and one value."""
    values_shape = values.shape
    single = values_shape is not None and all(isinstance(d, int) for d in values_shape) and int(np.prod(list(values_shape))) == 1
    if len(masks) != 1 or positions != [0] or not single:
        raise NotImplementedError("index_put with a boolean mask and several values (data-dependent shape)")
    mask = masks[0]
    if rank(mask) < rank(x):  # a mask over the leading axes covers the trailing ones whole
        mask = e.op("Unsqueeze", mask, e.ints(list(range(rank(mask), rank(x)))))
    value = e.op("Reshape", values, e.ints([]))
    if accumulate:
        return e.op("Add", x, e.op("Where", mask, value, e.const(0, x.dtype)))
    return e.op("Where", mask, value, x)


# ---- scatter with reductions ---------------------------------------------------------

_REDUCTIONS = {"sum": "add", "add": "add", "prod": "mul", "multiply": "mul", "amax": "max", "amin": "min"}


def _identity(reduce: str, dtype: ir.DataType) -> Any:
    """The value that leaves ``reduce`` unchanged."""
    if reduce in ("amax", "amin"):
        if dtype.is_floating_point():
            return -np.inf if reduce == "amax" else np.inf
        info = np.iinfo(dtype.numpy())
        return info.min if reduce == "amax" else info.max
    return 1 if reduce in ("prod", "multiply") else 0


def _as_vector(e: Emitter, x: ir.Value) -> ir.Value:
    """``x`` flattened to 1-d (its length unknown here)."""
    out = e.op("Reshape", x, e.ints([-1]))
    out.dtype, out.shape = x.dtype, ir.Shape([None])
    return out


def _fitted(e: Emitter, src: ir.Value, index: ir.Value) -> ir.Value:
    """``src`` cut to ``index``'s shape (torch reads only that corner of a larger ``src``)."""
    if src.shape is not None and index.shape is not None and list(src.shape) == list(index.shape):
        return src
    n = rank(index)
    return e.op("Slice", src, e.ints([0] * n), e.shape_of(index), e.ints(list(range(n))))


def _scatter_fill(e: Emitter, x: ir.Value, dim: int, index: ir.Value, value: Any) -> ir.Value:
    """``x`` with ``value`` written at every position ``index`` names along ``dim``."""
    fill = e.op("Expand", e.const(value, x.dtype), e.shape_of(index))
    return e.op("ScatterElements", x, index, fill, axis=dim)


@ATEN.register("aten::scatter_reduce.two")
def scatter_reduce(
    e: Emitter, x: ir.Value, dim: int, index: ir.Value, src: ir.Value, reduce: str, *, include_self: bool = True
) -> ir.Value:
    if rank(x) == 0:
        x, index, src = (_as_vector(e, v) for v in (x, index, src))
        return e.op("Reshape", scatter_reduce(e, x, 0, index, src, reduce, include_self=include_self), e.ints([]))
    dim %= rank(x)
    src = _fitted(e, e.cast(src, x.dtype), index)
    index = _wrap(e, index, e.op("Gather", e.shape_of(x), e.const(np.int64(dim)), axis=0))
    if reduce == "mean":
        return _scatter_mean(e, x, dim, index, src, include_self)
    base = x if include_self else _scatter_fill(e, x, dim, index, _identity(reduce, x.dtype))
    return e.op("ScatterElements", base, index, src, axis=dim, reduction=_REDUCTIONS[reduce])


def _scatter_mean(e: Emitter, x: ir.Value, dim: int, index: ir.Value, src: ir.Value, include_self: bool) -> ir.Value:
    ones = e.op("Expand", e.const(1, x.dtype), e.shape_of(x))
    ones.dtype = x.dtype
    sums = x if include_self else _scatter_fill(e, x, dim, index, 0)
    counts = ones if include_self else _scatter_fill(e, ones, dim, index, 0)
    sums = e.op("ScatterElements", sums, index, src, axis=dim, reduction="add")
    counts = e.op("ScatterElements", counts, index, e.op("Expand", e.const(1, x.dtype), e.shape_of(index)), axis=dim, reduction="add")
    if x.dtype.is_floating_point():
        return e.op("Div", sums, counts)
    wide = ir.DataType.DOUBLE  # torch floors the mean of integers
    return e.cast(e.op("Floor", e.op("Div", e.cast(sums, wide), e.cast(counts, wide))), x.dtype)


@ATEN.register("aten::index_reduce")
def index_reduce(
    e: Emitter, x: ir.Value, dim: int, index: ir.Value, source: ir.Value, reduce: str, *, include_self: bool = True
) -> ir.Value:
    # index_reduce is scatter_reduce with the 1-d index spread over source's other axes.
    dim %= max(rank(x), 1)
    along = e.op("Reshape", e.cast(index, INT64), e.ints([-1 if a == dim else 1 for a in range(rank(source))]))
    spread = e.op("Expand", along, e.shape_of(source))
    spread.dtype, spread.shape = INT64, source.shape
    return scatter_reduce(e, x, dim, spread, source, reduce, include_self=include_self)


@ATEN.register("aten::scatter.reduce")
@ATEN.register("aten::scatter.value_reduce")
def scatter_with_reduce(e: Emitter, x: ir.Value, dim: int, index: ir.Value, src: Any, *, reduce: str) -> ir.Value:
    dim %= max(rank(x), 1)
    if not isinstance(src, ir.Value):
        src = e.op("Expand", e.const(src, x.dtype), e.shape_of(index))
    else:
        src = _fitted(e, e.cast(src, x.dtype), index)
    index = e.cast(index, INT64)
    return e.op("ScatterElements", x, index, src, axis=dim, reduction=_REDUCTIONS[reduce])


@ATEN.register("aten::put")
def put(e: Emitter, x: ir.Value, index: ir.Value, source: ir.Value, accumulate: bool = False) -> ir.Value:
    flat = e.op("Reshape", x, e.ints([-1]))
    where = _wrap(e, e.op("Reshape", index, e.ints([-1])), e.shape_of(flat))
    updates = e.op("Reshape", e.cast(source, x.dtype), e.ints([-1]))
    out = e.op("ScatterElements", flat, where, updates, axis=0, reduction="add" if accumulate else None)
    return e.op("Reshape", out, e.shape_of(x))


# ---- slices and diagonals --------------------------------------------------------------


@ATEN.register("aten::slice_scatter")
def slice_scatter(e: Emitter, x: ir.Value, src: ir.Value, dim: int = 0, start: Any = None, end: Any = None, step: Any = 1) -> ir.Value:
    n = rank(x)
    dim %= n
    size = x.shape[dim]
    start = 0 if start is None else start
    if isinstance(start, int) and isinstance(size, int):
        start = min(max(start + size if start < 0 else start, 0), size)
    count = e.op("Squeeze", e.shape_of(src, dim, dim + 1), e.ints([0]))
    steps = e.op("Range", e.const(np.int64(0)), count, e.const(np.int64(1)))
    positions = e.op("Add", e.op("Mul", steps, e.operand(step, INT64)), e.operand(start, INT64))
    along = e.op("Reshape", positions, e.ints([-1 if a == dim else 1 for a in range(n)]))
    index = e.op("Expand", along, e.shape_of(src))
    return e.op("ScatterElements", x, index, e.cast(src, x.dtype), axis=dim)


def _diagonal_layout(e: Emitter, x: ir.Value, offset: int, dim1: int, dim2: int) -> tuple[ir.Value, list[int], list[int], list[int]]:
    """``x`` with ``dim1, dim2`` moved last and flattened, the permutation, the kept
    axes, and the flat positions of the diagonal."""
    n = rank(x)
    d1, d2 = dim1 % n, dim2 % n
    s1, s2 = x.shape[d1], x.shape[d2]
    if not (isinstance(s1, int) and isinstance(s2, int)):
        raise NotImplementedError("diagonal over a dynamic dim")
    others = [a for a in range(n) if a not in (d1, d2)]
    perm = others + [d1, d2]
    moved = e.op("Transpose", x, perm=perm) if perm != list(range(n)) else x
    length = max(0, min(s1 + min(offset, 0), s2 - max(offset, 0)))
    rows = [i - min(offset, 0) for i in range(length)]
    flat_positions = [r * s2 + r + offset for r in rows]
    flat = e.op("Reshape", moved, e.op("Concat", e.shape_of(moved, 0, len(others)), e.ints([s1 * s2]), axis=0))
    return flat, perm, others, flat_positions


@ATEN.register("aten::diagonal")
def diagonal(e: Emitter, x: ir.Value, offset: int = 0, dim1: int = 0, dim2: int = 1) -> ir.Value:
    flat, _, _, positions = _diagonal_layout(e, x, offset, dim1, dim2)
    return e.op("Gather", flat, e.ints(positions), axis=-1)


@ATEN.register("aten::diagonal_scatter")
def diagonal_scatter(e: Emitter, x: ir.Value, src: ir.Value, offset: int = 0, dim1: int = 0, dim2: int = 1) -> ir.Value:
    flat, perm, others, positions = _diagonal_layout(e, x, offset, dim1, dim2)
    index = e.op("Expand", e.ints(positions), e.shape_of(src))
    written = e.op("ScatterElements", flat, index, e.cast(src, x.dtype), axis=-1)
    n = rank(x)
    moved_shape = e.op("Gather", e.shape_of(x), e.ints(perm), axis=0)
    out = e.op("Reshape", written, moved_shape)
    return e.op("Transpose", out, perm=_inverse(perm)) if perm != list(range(n)) else out
