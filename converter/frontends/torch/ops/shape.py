"""Shape and layout ops: view/reshape, permute, expand, squeeze, cat, split, slice, pad, flip.

Sizes in these ops may be SymInts (0-d int64 values): shape vectors are built
with ``Concat`` at run time, so a dynamic dim stays dynamic in the result.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import ir
from converter.frontends.torch.emit import Emitter, axis_list, rank
from converter.frontends.torch.ops import ATEN

_INT64_MAX = np.iinfo(np.int64).max
_INT64_MIN = np.iinfo(np.int64).min


def _index(e: Emitter, x: Any) -> ir.Value:
    """A start/end/index (int or SymInt) as a 1-d int64 of one element."""
    return e.shape_vector([x])


@ATEN.register("aten::view")
@ATEN.register("aten::view_copy")
@ATEN.register("aten::_unsafe_view")
@ATEN.register("aten::reshape")
def view(e: Emitter, x: ir.Value, size: list[Any]) -> ir.Value:
    return e.op("Reshape", x, e.shape_vector(size))


@ATEN.register("aten::permute")
@ATEN.register("aten::permute_copy")
def permute(e: Emitter, x: ir.Value, dims: list[int]) -> ir.Value:
    return e.op("Transpose", x, perm=axis_list(dims, rank(x)))


@ATEN.register("aten::transpose.int")
def transpose(e: Emitter, x: ir.Value, dim0: int, dim1: int) -> ir.Value:
    n = rank(x)
    if n < 2:
        return x
    perm = list(range(n))
    a, b = dim0 % n, dim1 % n
    perm[a], perm[b] = perm[b], perm[a]
    return e.op("Transpose", x, perm=perm)


@ATEN.register("aten::t")
def t(e: Emitter, x: ir.Value) -> ir.Value:
    return transpose(e, x, 0, 1)


@ATEN.register("aten::expand")
def expand(e: Emitter, x: ir.Value, size: list[Any], implicit: bool = False) -> ir.Value:
    # -1 keeps the input's size, which broadcasting against 1 does too.
    return e.op("Expand", x, e.shape_vector([1 if isinstance(s, int) and s == -1 else s for s in size]))


@ATEN.register("aten::unsqueeze")
def unsqueeze(e: Emitter, x: ir.Value, dim: int) -> ir.Value:
    return e.op("Unsqueeze", x, e.ints([dim % (rank(x) + 1)]))


@ATEN.register("aten::squeeze.dims")
@ATEN.register("aten::squeeze.dim")
@ATEN.register("aten::squeeze")
def squeeze(e: Emitter, x: ir.Value, dim: Any = None) -> ir.Value:
    n = rank(x)
    if isinstance(dim, list | tuple) and not dim:
        return x  # squeeze.dims with no dims squeezes nothing
    candidates = range(n) if dim is None else axis_list(dim, n)
    axes = [a for a in candidates if x.shape[a] == 1]  # torch leaves other dims alone
    if not axes:
        return x
    return e.op("Squeeze", x, e.ints(axes))


@ATEN.register("aten::cat")
def cat(e: Emitter, tensors: list[ir.Value], dim: int = 0) -> ir.Value:
    dt = e.out_dtype
    parts = [e.cast(t, dt) for t in tensors if not (t.shape is not None and len(t.shape) == 1 and t.shape[0] == 0)]
    return e.op("Concat", *parts, axis=dim)


@ATEN.register("aten::stack")
def stack(e: Emitter, tensors: list[ir.Value], dim: int = 0) -> ir.Value:
    axis = e.ints([dim % (rank(tensors[0]) + 1)])
    return e.op("Concat", *[e.op("Unsqueeze", t, axis) for t in tensors], axis=dim)


@ATEN.register("aten::split.Tensor")
def split(e: Emitter, x: ir.Value, split_size: Any, dim: int = 0) -> list[ir.Value]:
    pieces = []
    for i in range(len(e.meta)):
        start = i * split_size if isinstance(split_size, int) else e.op("Mul", split_size, e.const(np.int64(i)))
        end = (i + 1) * split_size if isinstance(split_size, int) else e.op("Add", start, split_size)
        pieces.append(e.op("Slice", x, _index(e, start), _index(e, end), e.ints([dim])))
    return pieces


@ATEN.register("aten::split_with_sizes")
def split_with_sizes(e: Emitter, x: ir.Value, split_sizes: list[Any], dim: int = 0) -> tuple[ir.Value, ...]:
    if len(split_sizes) == 1:
        return (e.op("Identity", x),)
    return e.op("Split", x, e.shape_vector(split_sizes), axis=dim, outputs=len(split_sizes))


@ATEN.register("aten::unbind.int")
@ATEN.register("aten::unbind_copy.int")
def unbind(e: Emitter, x: ir.Value, dim: int = 0) -> list[ir.Value]:
    n = len(e.meta)
    axis = e.ints([dim])
    pieces = e.op("Split", x, axis=dim, num_outputs=n, outputs=n) if n > 1 else (x,)
    return [e.op("Squeeze", p, axis) for p in pieces]


@ATEN.register("aten::slice.Tensor")
def slice(e: Emitter, x: ir.Value, dim: int = 0, start: Any = None, end: Any = None, step: Any = 1) -> ir.Value:  # noqa: A001
    start = 0 if start is None else start
    end = _INT64_MAX if end is None else end
    if isinstance(start, int) and start == 0 and isinstance(end, int) and end >= _INT64_MAX and step == 1:
        return x
    return e.op("Slice", x, _index(e, start), _index(e, end), e.ints([dim]), _index(e, step))


@ATEN.register("aten::narrow")
@ATEN.register("aten::narrow_copy")
def narrow(e: Emitter, x: ir.Value, dim: int, start: Any, length: Any) -> ir.Value:
    end = start + length if isinstance(start, int) and isinstance(length, int) else e.op("Add", e.operand(start, ir.DataType.INT64), e.operand(length, ir.DataType.INT64))
    return e.op("Slice", x, _index(e, start), _index(e, end), e.ints([dim]))


@ATEN.register("aten::select.int")
def select(e: Emitter, x: ir.Value, dim: int, index: Any) -> ir.Value:
    return e.op("Gather", x, e.operand(index, ir.DataType.INT64), axis=dim)


@ATEN.register("aten::flip")
def flip(e: Emitter, x: ir.Value, dims: list[int]) -> ir.Value:
    n = len(dims)
    return e.op("Slice", x, e.ints([-1] * n), e.ints([_INT64_MIN] * n), e.ints(dims), e.ints([-1] * n))


@ATEN.register("aten::repeat")
def repeat(e: Emitter, x: ir.Value, repeats: list[Any]) -> ir.Value:
    extra = len(repeats) - rank(x)
    if extra > 0:
        x = e.op("Unsqueeze", x, e.ints(list(range(extra))))
    return e.op("Tile", x, e.shape_vector(repeats))


@ATEN.register("aten::constant_pad_nd")
def constant_pad_nd(e: Emitter, x: ir.Value, pad: list[Any], value: float = 0) -> ir.Value:
    n = rank(x)
    k = len(pad) // 2
    axes = [n - 1 - i for i in range(k)]  # pad lists (begin, end) from the last dim backwards
    pads = e.shape_vector([pad[2 * i] for i in range(k)] + [pad[2 * i + 1] for i in range(k)])
    return e.op("Pad", x, pads, e.operand(value, x.dtype), e.ints(axes), mode="constant")


@ATEN.register("aten::tril")
def tril(e: Emitter, x: ir.Value, diagonal: int = 0) -> ir.Value:
    return e.op("Trilu", x, e.const(np.int64(diagonal)), upper=0)


@ATEN.register("aten::triu")
def triu(e: Emitter, x: ir.Value, diagonal: int = 0) -> ir.Value:
    return e.op("Trilu", x, e.const(np.int64(diagonal)), upper=1)


@ATEN.register("aten::unfold")
def unfold(e: Emitter, x: ir.Value, dimension: int, size: int, step: int) -> ir.Value:
    """Windows of ``size`` every ``step`` along ``dimension``: a ``Gather`` of static
    positions ``[windows, size]``, whose window axis moves last as torch's does."""
    n = rank(x)
    if n == 0:
        return e.op("Unsqueeze", x, e.ints([0]))
    dim = dimension % n
    length = x.shape[dim]
    if not isinstance(length, int):
        raise NotImplementedError("unfold over a dynamic dim")
    starts = range(0, length - size + 1, step)
    positions = np.array([[s + i for i in range(size)] for s in starts], dtype=np.int64).reshape(len(starts), size)
    out = e.op("Gather", x, e.const(positions), axis=dim)
    perm = [a for a in range(n + 1) if a != dim + 1] + [dim + 1]
    return e.op("Transpose", out, perm=perm)


@ATEN.register("aten::as_strided")
@ATEN.register("aten::as_strided_copy")
def as_strided(e: Emitter, x: ir.Value, size: list[Any], stride: list[Any], storage_offset: Any = None) -> ir.Value:
    """A strided view of ``x``'s elements in row-major order (the IR has no storage to alias).

    Decompositions emit it as a plain restride (``adaptive_avg_pool1d``'s result
    reshaped to ``[n, c, 1, 1]``): strides that are the contiguous ones of
    ``size`` (size-1 dims aside) are a ``Reshape``, dynamic sizes included. Other
    static views gather the elements at ``offset + sum(i_k * stride_k)``.
    """
    offset = storage_offset or 0
    if not isinstance(offset, int):
        raise NotImplementedError("as_strided with a dynamic storage offset")
    if offset == 0 and _contiguous_strides(size, stride) and not _fewer_elements(x, size):
        return view(e, x, size)
    if not all(isinstance(v, int) for v in (*size, *stride)):
        raise NotImplementedError("as_strided with dynamic sizes and non-contiguous strides")
    positions = np.full(size, offset, dtype=np.int64)
    for axis, (n, step) in enumerate(zip(size, stride, strict=True)):
        shape = [1] * len(size)
        shape[axis] = n
        positions = positions + (np.arange(n, dtype=np.int64) * step).reshape(shape)
    flat = e.op("Reshape", x, e.ints([-1]))
    return e.op("Gather", flat, e.const(positions), axis=0)


def _fewer_elements(x: ir.Value, size: list[Any]) -> bool:
    """Whether a static ``size`` holds fewer elements than a static ``x`` (a prefix view, not a reshape)."""
    dims = list(x.shape or [None])
    if not all(isinstance(d, int) for d in (*dims, *size)):
        return False
    return int(np.prod(size)) < int(np.prod(dims))


def _contiguous_strides(size: list[Any], stride: list[Any]) -> bool:
    """Whether ``stride`` is row-major for ``size``, ignoring size-1 dims (their stride is never used)."""
    expected = 1
    for n, step in reversed(list(zip(size, stride, strict=True))):
        if isinstance(n, int) and n == 1:
            continue
        if not isinstance(step, int) or step != expected:
            return False
        if not isinstance(n, int):  # a dynamic size: only the outermost non-trivial dim may have one
            expected = None  # type: ignore[assignment]
            continue
        expected = expected * n if expected is not None else None
    return True
