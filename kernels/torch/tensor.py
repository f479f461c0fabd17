"""Creation and indexing ops: constants, ranges, gathers, scatters, one-hot,
nonzero, triangular masks, compress, reverse-sequence."""

import torch
from torch import Tensor

from kernels.torch import TORCH
from kernels.torch._util import ints, norm_axis, onnx_dtype


@TORCH.register("Constant", since=1)
@TORCH.register("Constant", since=13)
def constant(
    value: Tensor | None = None,
    value_float: float | None = None,
    value_floats: list[float] | None = None,
    value_int: int | None = None,
    value_ints: list[int] | None = None,
) -> Tensor:
    if value is not None:
        return value
    if value_float is not None:
        return torch.tensor(value_float, dtype=torch.float32)
    if value_floats is not None:
        return torch.tensor(value_floats, dtype=torch.float32)
    if value_int is not None:
        return torch.tensor(value_int, dtype=torch.int64)
    if value_ints is not None:
        return torch.tensor(value_ints, dtype=torch.int64)
    raise RuntimeError("Constant has no value attribute")


@TORCH.register("ConstantOfShape", since=9)
def constant_of_shape(input: Tensor, value: Tensor | None = None) -> Tensor:  # noqa: A002
    fill = torch.zeros(1, dtype=torch.float32, device=input.device) if value is None else value.to(input.device)
    return fill.reshape(()).expand(ints(input)).contiguous()  # 0-d: an empty shape gives a scalar


@TORCH.register("EyeLike", since=9)
def eye_like(input: Tensor, dtype: int | None = None, k: int = 0) -> Tensor:  # noqa: A002
    out_dtype = input.dtype if dtype is None else onnx_dtype(dtype)
    rows, cols = input.shape[0], input.shape[1]
    r = torch.arange(rows, device=input.device).unsqueeze(1)
    c = torch.arange(cols, device=input.device).unsqueeze(0)
    return (c - r == k).to(out_dtype)


@TORCH.register("Range", since=11)
def range_(start: Tensor, limit: Tensor, delta: Tensor) -> Tensor:
    if start.is_floating_point():
        s, lim, d = float(start.item()), float(limit.item()), float(delta.item())
        n = max(int(torch.ceil(torch.tensor((lim - s) / d)).item()), 0)
        steps = torch.arange(n, dtype=torch.float64, device=start.device)
        return (s + steps * d).to(start.dtype)
    si, li, di = int(start.item()), int(limit.item()), int(delta.item())
    return torch.arange(si, li, di, dtype=start.dtype, device=start.device)


@TORCH.register("Trilu", since=14)
def trilu(input: Tensor, k: Tensor | None = None, upper: int = 1) -> Tensor:  # noqa: A002
    diag = 0 if k is None else int(k.reshape(-1)[0])
    return torch.triu(input, diag) if upper else torch.tril(input, diag)


@TORCH.register("NonZero", since=9)
def non_zero(x: Tensor) -> Tensor:
    if x.dim() == 0:
        return torch.nonzero(x.reshape(1)).t()[:0]
    return torch.nonzero(x).t().contiguous()


@TORCH.register("OneHot", since=9)  # negative indices allowed from 11: a superset
@TORCH.register("OneHot", since=11)
def one_hot(indices: Tensor, depth: Tensor, values: Tensor, axis: int = -1) -> Tensor:
    n = int(depth.reshape(-1)[0].item())
    idx = indices.to(torch.int64)
    idx = torch.where(idx < 0, idx + n, idx)
    dim = norm_axis(axis, indices.dim() + 1)
    classes = torch.arange(n, device=indices.device)
    shape = [1] * (indices.dim() + 1)
    shape[dim] = n
    hot = idx.unsqueeze(dim) == classes.reshape(shape)
    return torch.where(hot, values[1], values[0])


def _fix_index(idx: Tensor, n: int) -> Tensor:
    idx = idx.to(torch.int64)
    return torch.where(idx < 0, idx + n, idx)


@TORCH.register("Gather", since=1)
def gather(data: Tensor, indices: Tensor, axis: int = 0) -> Tensor:
    dim = norm_axis(axis, data.dim())
    idx = _fix_index(indices, data.shape[dim])
    out = torch.index_select(data, dim, idx.reshape(-1))
    shape = list(data.shape[:dim]) + list(indices.shape) + list(data.shape[dim + 1 :])
    return out.reshape(shape)


@TORCH.register("GatherElements", since=11)
def gather_elements(data: Tensor, indices: Tensor, axis: int = 0) -> Tensor:
    dim = norm_axis(axis, data.dim())
    return torch.gather(data, dim, _fix_index(indices, data.shape[dim]))


def _nd_linear(data_shape: list[int], indices: Tensor, batch_dims: int) -> tuple[Tensor, int]:
    """Flat positions of each index tuple into ``data`` viewed as [batch, cells, slice]."""
    k = indices.shape[-1]
    idx = indices.to(torch.int64)
    lin = torch.zeros(idx.shape[:-1], dtype=torch.int64, device=indices.device)
    for j in range(k):
        n = data_shape[batch_dims + j]
        lin = lin * n + _fix_index(idx[..., j], n)
    return lin, k


@TORCH.register("GatherND", since=11)  # no batch_dims before 12 (the default 0)
@TORCH.register("GatherND", since=12)
def gather_nd(data: Tensor, indices: Tensor, batch_dims: int = 0) -> Tensor:
    shape: list[int] = list(data.shape)
    lin, k = _nd_linear(shape, indices, batch_dims)
    batch = 1
    for d in shape[:batch_dims]:
        batch *= d
    cells = 1
    for d in shape[batch_dims : batch_dims + k]:
        cells *= d
    rest = shape[batch_dims + k :]
    flat = data.reshape([batch, cells] + [-1] if len(rest) > 0 else [batch, cells, 1])
    lin = lin.reshape([batch, -1])
    picked = torch.stack([flat[b].index_select(0, lin[b]) for b in range(batch)])
    return picked.reshape(list(indices.shape[:-1]) + rest)


def _scatter_reduce(out: Tensor, dim: int, idx: Tensor, updates: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return out.scatter(dim, idx, updates)
    if reduction == "add":
        return out.scatter_add(dim, idx, updates)
    mode = "prod" if reduction == "mul" else ("amax" if reduction == "max" else "amin")
    return out.scatter_reduce(dim, idx, updates, mode, include_self=True)


@TORCH.register("ScatterND", since=11)
def scatter_nd(data: Tensor, indices: Tensor, updates: Tensor, reduction: str = "none") -> Tensor:
    shape: list[int] = list(data.shape)
    lin, k = _nd_linear(shape, indices, 0)
    cells = 1
    for d in shape[:k]:
        cells *= d
    flat = data.reshape([cells, -1]) if data.numel() > 0 else data.reshape([cells, 0])
    upd = updates.reshape([lin.numel(), flat.shape[1]])
    idx = lin.reshape(-1, 1).expand(upd.shape)
    return _scatter_reduce(flat.clone(), 0, idx, upd, reduction).reshape(shape)


@TORCH.register("ScatterElements", since=11)
def scatter_elements(data: Tensor, indices: Tensor, updates: Tensor, axis: int = 0, reduction: str = "none") -> Tensor:
    dim = norm_axis(axis, data.dim())
    return _scatter_reduce(data.clone(), dim, _fix_index(indices, data.shape[dim]), updates, reduction)


@TORCH.register("Scatter", since=9)
def scatter(data: Tensor, indices: Tensor, updates: Tensor, axis: int = 0) -> Tensor:
    return scatter_elements(data, indices, updates, axis, "none")


@TORCH.register("Compress", since=9)  # negative axes allowed from 11: a superset
@TORCH.register("Compress", since=11)
def compress(input: Tensor, condition: Tensor, axis: int | None = None) -> Tensor:  # noqa: A002
    flat = input.reshape(-1) if axis is None else input
    dim = 0 if axis is None else norm_axis(axis, input.dim())
    cond = condition.to(torch.bool)
    n = min(cond.shape[0], flat.shape[dim])
    keep = torch.nonzero(cond[:n]).reshape(-1)
    return torch.index_select(flat, dim, keep)


@TORCH.register("ReverseSequence", since=10)
def reverse_sequence(input: Tensor, sequence_lens: Tensor, batch_axis: int = 1, time_axis: int = 0) -> Tensor:  # noqa: A002
    out = input.clone()
    lens = ints(sequence_lens)
    for b, n in enumerate(lens):
        seq = input.select(batch_axis, b).narrow(time_axis if time_axis < batch_axis else time_axis - 1, 0, n)
        t_dim = time_axis if time_axis < batch_axis else time_axis - 1
        out.select(batch_axis, b).narrow(t_dim, 0, n).copy_(torch.flip(seq, [t_dim]))
    return out


@TORCH.register("TensorScatter", since=24)
def tensor_scatter(
    past_cache: Tensor, update: Tensor, write_indices: Tensor | None = None, axis: int = -2, mode: str = "linear"
) -> Tensor:
    """Writes ``update`` into each batch row of the cache from that row's write index on (``circular``: wrapping)."""
    ax = norm_axis(axis, past_cache.dim())
    batch, length, steps = past_cache.shape[0], past_cache.shape[ax], update.shape[ax]
    start = torch.zeros(batch, dtype=torch.int64, device=past_cache.device) if write_indices is None else write_indices.to(torch.int64)
    pos = start.reshape(-1, 1) + torch.arange(steps, device=past_cache.device).reshape(1, -1)  # (batch, steps)
    if mode == "circular":
        pos = torch.remainder(pos, length)
    shape = [1] * update.dim()
    shape[0] = batch
    shape[ax] = steps
    return past_cache.scatter(ax, pos.reshape(shape).expand(update.shape), update)


@TORCH.register("Unique", since=11)
def unique(x: Tensor, axis: int | None = None, sorted: int = 1) -> tuple[Tensor, Tensor, Tensor, Tensor]:  # noqa: A002
    """Unique values (or slices along ``axis``), the index of each one's first occurrence, the
    inverse indices and the counts; ``sorted=0`` keeps the order of first occurrence."""
    data = x.reshape(-1) if axis is None else x
    dim = 0 if axis is None else (axis + x.dim() if axis < 0 else axis)
    values, inverse, counts = torch.unique(data, sorted=True, return_inverse=True, return_counts=True, dim=dim)
    inverse = inverse.reshape(-1)
    n = data.shape[dim]
    positions = torch.arange(n, device=x.device)
    first = torch.full([counts.shape[0]], n, dtype=torch.int64, device=x.device)
    first = first.scatter_reduce(0, inverse, positions, "amin", include_self=True)
    if not sorted:
        order = torch.argsort(first)
        rank = torch.empty_like(order).scatter_(0, order, torch.arange(order.shape[0], device=x.device))
        values, first, counts, inverse = values.index_select(dim, order), first[order], counts[order], rank[inverse]
    return values, first, inverse, counts
