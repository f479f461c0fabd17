"""Reductions: sum, mean, amax/amin, max/min with indices, argmax, var, any/all, cumsum.

ONNX reductions (opset 18+) take ``axes`` as an input; ``dim=None`` or ``[]``
reduces every axis (the input is omitted). ``var`` divides by the reduced element
count minus ``correction``, computed from the runtime shape when a reduced dim
is symbolic.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import ir
from converter.frontends.torch.emit import INT64, Emitter, axis_list, rank
from converter.frontends.torch.ops import ATEN


def _reduce(e: Emitter, onnx_op: str, x: ir.Value, dim: Any, keepdim: bool) -> ir.Value:
    axes = None if dim is None or (isinstance(dim, list | tuple) and not dim) else e.ints(axis_list(dim, rank(x)))
    if rank(x) == 0:
        return x
    return e.op(onnx_op, x, axes, keepdims=keepdim)


@ATEN.register("aten::sum.dim_IntList")
def sum_dim(e: Emitter, x: ir.Value, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> ir.Value:
    return _reduce(e, "ReduceSum", e.cast(x, e.out_dtype), dim, keepdim)


@ATEN.register("aten::sum")
def sum_all(e: Emitter, x: ir.Value, *, dtype: Any = None) -> ir.Value:
    return _reduce(e, "ReduceSum", e.cast(x, e.out_dtype), None, False)


@ATEN.register("aten::mean.dim")
def mean_dim(e: Emitter, x: ir.Value, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> ir.Value:
    return _reduce(e, "ReduceMean", e.cast(x, e.out_dtype), dim, keepdim)


@ATEN.register("aten::mean")
def mean_all(e: Emitter, x: ir.Value, *, dtype: Any = None) -> ir.Value:
    return _reduce(e, "ReduceMean", e.cast(x, e.out_dtype), None, False)


@ATEN.register("aten::prod.dim_int")
def prod_dim(e: Emitter, x: ir.Value, dim: int, keepdim: bool = False, *, dtype: Any = None) -> ir.Value:
    return _reduce(e, "ReduceProd", e.cast(x, e.out_dtype), dim, keepdim)


@ATEN.register("aten::amax")
def amax(e: Emitter, x: ir.Value, dim: Any = (), keepdim: bool = False) -> ir.Value:
    return _reduce(e, "ReduceMax", x, dim, keepdim)


@ATEN.register("aten::amin")
def amin(e: Emitter, x: ir.Value, dim: Any = (), keepdim: bool = False) -> ir.Value:
    return _reduce(e, "ReduceMin", x, dim, keepdim)


@ATEN.register("aten::max")
def max_all(e: Emitter, x: ir.Value) -> ir.Value:
    return _reduce(e, "ReduceMax", x, None, False)


@ATEN.register("aten::min")
def min_all(e: Emitter, x: ir.Value) -> ir.Value:
    return _reduce(e, "ReduceMin", x, None, False)


@ATEN.register("aten::max.dim")
def max_dim(e: Emitter, x: ir.Value, dim: int, keepdim: bool = False) -> tuple[ir.Value, ir.Value]:
    return _reduce(e, "ReduceMax", x, dim, keepdim), e.op("ArgMax", x, axis=dim, keepdims=keepdim)


@ATEN.register("aten::min.dim")
def min_dim(e: Emitter, x: ir.Value, dim: int, keepdim: bool = False) -> tuple[ir.Value, ir.Value]:
    return _reduce(e, "ReduceMin", x, dim, keepdim), e.op("ArgMin", x, axis=dim, keepdims=keepdim)


def _arg(e: Emitter, onnx_op: str, x: ir.Value, dim: int | None, keepdim: bool) -> ir.Value:
    if rank(x) == 0:
        return e.const(np.int64(0))
    if dim is None:
        flat = e.op("Reshape", x, e.ints([-1]))
        out = e.op(onnx_op, flat, axis=0, keepdims=0)
        return e.op("Reshape", out, e.ints([1] * rank(x))) if keepdim else out
    return e.op(onnx_op, x, axis=dim, keepdims=keepdim)


@ATEN.register("aten::argmax")
def argmax(e: Emitter, x: ir.Value, dim: int | None = None, keepdim: bool = False) -> ir.Value:
    return _arg(e, "ArgMax", x, dim, keepdim)


@ATEN.register("aten::argmin")
def argmin(e: Emitter, x: ir.Value, dim: int | None = None, keepdim: bool = False) -> ir.Value:
    return _arg(e, "ArgMin", x, dim, keepdim)


@ATEN.register("aten::any.dim")
@ATEN.register("aten::any.dims")
@ATEN.register("aten::any")
def any_dim(e: Emitter, x: ir.Value, dim: Any = None, keepdim: bool = False) -> ir.Value:
    out = _reduce(e, "ReduceMax", e.cast(x, INT64), dim, keepdim)
    return e.cast(out, ir.DataType.BOOL)


@ATEN.register("aten::all.dim")
@ATEN.register("aten::all.dims")
@ATEN.register("aten::all")
def all_dim(e: Emitter, x: ir.Value, dim: Any = None, keepdim: bool = False) -> ir.Value:
    out = _reduce(e, "ReduceMin", e.cast(x, INT64), dim, keepdim)
    return e.cast(out, ir.DataType.BOOL)


def element_count(e: Emitter, x: ir.Value, axes: list[int], dtype: ir.DataType) -> ir.Value:
    """The number of elements over ``axes`` of ``x`` as a 0-d ``dtype`` value."""
    dims = [x.shape[a] for a in axes]
    if all(isinstance(d, int) for d in dims):
        return e.const(float(np.prod(dims)) if dtype.is_floating_point() else int(np.prod(dims)), dtype)
    sizes = e.op("Gather", e.shape_of(x), e.ints(axes))
    return e.cast(e.op("ReduceProd", sizes, keepdims=0), dtype)


@ATEN.register("aten::var.correction")
@ATEN.register("aten::var.dim")
def var(e: Emitter, x: ir.Value, dim: Any = None, *args: Any, correction: Any = None, keepdim: bool = False) -> ir.Value:
    unbiased = args[0] if args and isinstance(args[0], bool) else None
    if unbiased is not None and len(args) > 1:
        keepdim = args[1]
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    dt = e.out_dtype
    axes = axis_list(dim, rank(x))
    x = e.cast(x, dt)
    diff = e.op("Sub", x, e.op("ReduceMean", x, e.ints(axes), keepdims=1))
    total = e.op("ReduceSum", e.op("Mul", diff, diff), e.ints(axes), keepdims=keepdim)
    n = element_count(e, x, axes, dt)
    return e.op("Div", total, e.op("Sub", n, e.const(float(correction), dt)))


@ATEN.register("aten::cumsum")
def cumsum(e: Emitter, x: ir.Value, dim: int, *, dtype: Any = None) -> ir.Value:
    return e.op("CumSum", e.cast(x, e.out_dtype), e.const(np.int64(dim)))


@ATEN.register("aten::logsumexp")
def logsumexp(e: Emitter, x: ir.Value, dim: Any, keepdim: bool = False) -> ir.Value:
    x = e.cast(x, e.out_dtype)
    if rank(x) == 0:
        return x
    return e.op("ReduceLogSumExp", x, e.ints(axis_list(dim, rank(x))), keepdims=keepdim)


@ATEN.register("aten::prod")
def prod_all(e: Emitter, x: ir.Value, *, dtype: Any = None) -> ir.Value:
    return _reduce(e, "ReduceProd", e.cast(x, e.out_dtype), None, False)


@ATEN.register("aten::var_mean.correction")
def var_mean(e: Emitter, x: ir.Value, dim: Any = None, *, correction: Any = None, keepdim: bool = False) -> tuple[ir.Value, ir.Value]:
    mean = _reduce(e, "ReduceMean", e.cast(x, e.out_dtype), dim, keepdim)
    return var(e, x, dim, correction=correction, keepdim=keepdim), mean


@ATEN.register("aten::linalg_vector_norm")
def linalg_vector_norm(e: Emitter, x: ir.Value, ord: Any = 2, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> ir.Value:  # noqa: A002
    """``ord`` 2 and 1 are ReduceL2/ReduceL1, ±inf the max/min of ``|x|``, 0 a count of
    non-zeros, any other p ``(Σ|x|^p)^(1/p)``."""
    dt = e.out_dtype
    magnitude = e.op("Abs", e.cast(x, dt))
    if ord == 0:
        magnitude = e.cast(e.op("Not", e.op("Equal", magnitude, e.const(0, dt))), dt)
    magnitude.shape = x.shape  # elementwise so far; _reduce reads the rank
    if rank(x) == 0:
        return magnitude
    if ord == 0:
        return _reduce(e, "ReduceSum", magnitude, dim, keepdim)
    if ord in (2, 1):
        return _reduce(e, "ReduceL2" if ord == 2 else "ReduceL1", magnitude, dim, keepdim)
    if ord in (float("inf"), float("-inf")):
        return _reduce(e, "ReduceMax" if ord > 0 else "ReduceMin", magnitude, dim, keepdim)
    p = e.const(float(ord), dt)
    powered = e.op("Pow", magnitude, p)
    powered.shape = x.shape
    total = _reduce(e, "ReduceSum", powered, dim, keepdim)
    return e.op("Pow", total, e.op("Reciprocal", p))


@ATEN.register("aten::dist")
def dist(e: Emitter, a: ir.Value, b: ir.Value, p: Any = 2) -> ir.Value:
    dt = e.out_dtype
    diff = e.op("Sub", e.cast(a, dt), e.cast(b, dt))
    diff.shape = ir.Shape([None] * max(rank(a), rank(b)))  # only its rank is read
    return linalg_vector_norm(e, diff, p)
