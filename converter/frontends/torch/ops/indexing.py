"""Indexing: advanced indexing (``index.Tensor``), gather, index_select, embedding, scatter.

``x[..., idx, ...]`` with one index tensor is ``Gather``. Several index tensors
(``x[i, j]``) are broadcast, stacked on a new last axis and read with
``GatherND`` after moving the indexed axes to the front; when the indexed axes
are adjacent, torch puts the result's index dims where they were, so they are
moved back there.

``embedding_bag`` (sum and mean) gathers the rows, then sums them per bag with one
``MatMul`` by a bags x indices membership matrix: index ``i`` is in bag ``b`` when
``b`` offsets are at or before ``i`` (plus one), and not ``padding_idx``. An empty
bag is zeros, as in torch; with ``include_last_offset`` the last offset only ends
the last bag.

``masked_scatter(x, mask, source)`` fills the positions where ``mask`` (broadcast
to ``x``) is true with ``source``'s elements in row-major order: the k-th true
position reads flat element k, found by a running count of the mask (``CumSum``),
then ``Gather`` and ``Where``; no data-dependent shape.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import ir
from converter.frontends.torch.emit import INT64, Emitter, rank
from converter.frontends.torch.ops import ATEN


@ATEN.register("aten::index.Tensor")
@ATEN.register("aten::_unsafe_index.Tensor")
def index(e: Emitter, x: ir.Value, indices: list[ir.Value | None]) -> ir.Value:
    positions = [i for i, idx in enumerate(indices) if idx is not None]
    if any(indices[p].dtype == ir.DataType.BOOL for p in positions):
        raise NotImplementedError("boolean mask indexing (data-dependent shape)")
    if len(positions) == 1:
        p = positions[0]
        return e.op("Gather", x, e.cast(indices[p], INT64), axis=p)
    n = rank(x)
    others = [a for a in range(n) if a not in positions]
    if positions != list(range(len(positions))):
        x = e.op("Transpose", x, perm=positions + others)
    idx = [e.cast(indices[p], INT64) for p in positions]
    batch_rank = max(rank(i) for i in idx)
    shape = idx[0]
    for i in idx[1:]:
        shape = e.op("Add", shape, i)  # broadcast shape of all indices (values unused)
    shape = e.shape_of(shape)
    stacked = e.op("Concat", *[e.op("Unsqueeze", e.op("Expand", i, shape), e.ints([-1])) for i in idx], axis=-1)
    out = e.op("GatherND", x, stacked)
    adjacent = positions == list(range(positions[0], positions[0] + len(positions)))
    start = positions[0]
    if adjacent and start > 0:
        # out is [index dims..., the `others` dims]; torch keeps index dims at `start`.
        rest = n - len(positions)
        perm = list(range(batch_rank, batch_rank + start)) + list(range(batch_rank)) + list(range(batch_rank + start, batch_rank + rest))
        out = e.op("Transpose", out, perm=perm)
    return out


@ATEN.register("aten::index_select")
def index_select(e: Emitter, x: ir.Value, dim: int, index: ir.Value) -> ir.Value:
    if rank(x) == 0:  # a 0-d tensor is indexed as one element
        picked = e.op("Gather", e.op("Reshape", x, e.ints([1])), e.op("Reshape", e.cast(index, INT64), e.ints([-1])), axis=0)
        return e.op("Reshape", picked, e.ints([]))
    return e.op("Gather", x, e.cast(index, INT64), axis=dim)


@ATEN.register("aten::gather")
def gather(e: Emitter, x: ir.Value, dim: int, index: ir.Value, sparse_grad: bool = False) -> ir.Value:
    return e.op("GatherElements", x, e.cast(index, INT64), axis=dim)


@ATEN.register("aten::embedding")
def embedding(e: Emitter, weight: ir.Value, indices: ir.Value, *args: Any) -> ir.Value:
    return e.op("Gather", weight, e.cast(indices, INT64), axis=0)


@ATEN.register("aten::_embedding_bag")
@ATEN.register("aten::_embedding_bag_forward_only")
def embedding_bag(
    e: Emitter,
    weight: ir.Value,
    indices: ir.Value,
    offsets: ir.Value,
    scale_grad_by_freq: bool = False,
    mode: int = 0,
    sparse: bool = False,
    per_sample_weights: ir.Value | None = None,
    include_last_offset: bool = False,
    padding_idx: int = -1,
) -> tuple[ir.Value, None, None, None]:
    if mode not in (0, 1):
        raise NotImplementedError("embedding_bag with mode='max'")
    if any(u.args[1] != 0 for u in e.node.users):
        raise NotImplementedError("embedding_bag's offset2bag, bag_size or max_indices outputs")
    indices, offsets = e.cast(indices, INT64), e.cast(offsets, INT64)
    rows = e.op("Gather", weight, indices, axis=0)
    if per_sample_weights is not None:
        rows = e.op("Mul", rows, e.op("Unsqueeze", e.cast(per_sample_weights, weight.dtype), e.ints([1])))
    member = _bag_membership(e, indices, offsets, include_last_offset)
    if padding_idx is not None and padding_idx >= 0:
        kept = e.op("Not", e.op("Equal", indices, e.const(np.int64(padding_idx))))
        member = e.op("And", member, e.op("Unsqueeze", kept, e.ints([0])))
    weights = e.cast(member, weight.dtype)
    out = e.op("MatMul", weights, rows)
    if mode == 1:
        count = e.op("ReduceSum", weights, e.ints([1]), keepdims=1)
        out = e.op("Div", out, e.op("Max", count, e.const(np.ones((), weight.dtype.numpy()))))
    return out, None, None, None


def _bag_membership(e: Emitter, indices: ir.Value, offsets: ir.Value, include_last_offset: bool) -> ir.Value:
    """A bool [bags, indices] matrix: which bag each position of ``indices`` belongs to."""
    zero, one = e.const(np.int64(0)), e.const(np.int64(1))
    positions = e.op("Range", zero, e.op("Squeeze", e.shape_of(indices)), one)
    started = e.op("LessOrEqual", e.op("Unsqueeze", offsets, e.ints([0])), e.op("Unsqueeze", positions, e.ints([1])))
    bag_of = e.op("Sub", e.op("ReduceSum", e.cast(started, INT64), e.ints([1]), keepdims=0), one)
    bags = e.op("Squeeze", e.shape_of(offsets))
    if include_last_offset:
        bags = e.op("Sub", bags, one)
    bag_ids = e.op("Range", zero, bags, one)
    return e.op("Equal", e.op("Unsqueeze", bag_ids, e.ints([1])), e.op("Unsqueeze", bag_of, e.ints([0])))


@ATEN.register("aten::scatter.src")
@ATEN.register("aten::scatter.value")
def scatter(e: Emitter, x: ir.Value, dim: int, index: ir.Value, src: Any) -> ir.Value:
    index = e.cast(index, INT64)
    if not isinstance(src, ir.Value) or rank(src) == 0:
        src = e.op("Expand", e.operand(src, x.dtype), e.shape_of(index))
    return e.op("ScatterElements", x, index, e.cast(src, x.dtype), axis=dim)


@ATEN.register("aten::scatter_add")
def scatter_add(e: Emitter, x: ir.Value, dim: int, index: ir.Value, src: ir.Value) -> ir.Value:
    return e.op("ScatterElements", x, e.cast(index, INT64), e.cast(src, x.dtype), axis=dim, reduction="add")


@ATEN.register("aten::masked_scatter")
def masked_scatter(e: Emitter, x: ir.Value, mask: ir.Value, source: ir.Value) -> ir.Value:
    shape = e.shape_of(x)
    full = e.op("Expand", mask, shape)
    flat = e.op("Reshape", e.cast(full, INT64), e.ints([-1]))
    # k-th true position -> k; positions before the first true read element 0 and are not kept
    order = e.op("Max", e.op("Sub", e.op("CumSum", flat, e.const(np.int64(0))), e.const(np.int64(1))), e.const(np.int64(0)))
    picked = e.op("Gather", e.op("Reshape", e.cast(source, x.dtype), e.ints([-1])), order, axis=0)
    return e.op("Where", full, e.op("Reshape", picked, shape), x)


@ATEN.register("aten::nonzero")
def nonzero(e: Emitter, x: ir.Value) -> ir.Value:
    # ONNX lists the coordinates axis by axis ([rank, count]); torch one row per element.
    if rank(x) == 0:
        x = e.op("Reshape", x, e.ints([1]))
        return e.op("Slice", e.op("Transpose", e.op("NonZero", x), perm=[1, 0]), e.ints([0]), e.ints([0]), e.ints([1]))
    return e.op("Transpose", e.op("NonZero", x), perm=[1, 0])
