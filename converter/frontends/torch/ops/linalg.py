"""Matrix products: mm, bmm, matmul, addmm, baddbmm, linear.

``linear`` is kept undecomposed by the front end (see ``export.KEEP``): one
``Gemm`` for 2-d inputs, else ``MatMul`` with the transposed weight plus ``Add``,
which keeps the batch dims of ``x`` dynamic without reshapes.
"""

from __future__ import annotations

from typing import Any

import ir
from converter.frontends.torch.emit import Emitter, rank
from converter.frontends.torch.ops import ATEN


@ATEN.register("aten::mm")
@ATEN.register("aten::bmm")
@ATEN.register("aten::matmul")
def matmul(e: Emitter, a: ir.Value, b: ir.Value) -> ir.Value:
    return e.op("MatMul", a, b)


@ATEN.register("aten::addmm")
def addmm(e: Emitter, bias: ir.Value, a: ir.Value, b: ir.Value, *, beta: Any = 1, alpha: Any = 1) -> ir.Value:
    return e.op("Gemm", a, b, bias, alpha=float(alpha), beta=float(beta))


@ATEN.register("aten::baddbmm")
def baddbmm(e: Emitter, bias: ir.Value, a: ir.Value, b: ir.Value, *, beta: Any = 1, alpha: Any = 1) -> ir.Value:
    product = e.op("MatMul", a, b)
    if alpha != 1:
        product = e.op("Mul", product, e.const(alpha, product.dtype or bias.dtype))
    if beta != 1:
        bias = e.op("Mul", bias, e.const(beta, bias.dtype))
    return e.op("Add", product, bias)


@ATEN.register("aten::linear")
def linear(e: Emitter, x: ir.Value, weight: ir.Value, bias: ir.Value | None = None) -> ir.Value:
    if rank(x) == 2 and rank(weight) == 2:
        return e.op("Gemm", x, weight, bias, transB=1)
    out = e.op("MatMul", x, e.op("Transpose", weight, perm=[1, 0]))
    return out if bias is None else e.op("Add", out, bias)


def _scaled_sum(e: Emitter, bias: ir.Value, product: ir.Value, beta: Any, alpha: Any) -> ir.Value:
    """``beta * bias + alpha * product``; ``bias`` is ignored when ``beta`` is 0 (NaNs in it too)."""
    dt = e.out_dtype
    product = e.cast(product, dt)
    if alpha != 1:
        product = e.op("Mul", product, e.const(alpha, dt))
    if beta == 0:
        return e.op("Expand", product, e.shape_of(e.op("Add", product, e.cast(bias, dt))))
    bias = e.cast(bias, dt)
    if beta != 1:
        bias = e.op("Mul", bias, e.const(beta, dt))
    return e.op("Add", product, bias)


@ATEN.register("aten::addmv")
def addmv(e: Emitter, bias: ir.Value, mat: ir.Value, vec: ir.Value, *, beta: Any = 1, alpha: Any = 1) -> ir.Value:
    return _scaled_sum(e, bias, e.op("MatMul", mat, vec), beta, alpha)


@ATEN.register("aten::addbmm")
def addbmm(e: Emitter, bias: ir.Value, a: ir.Value, b: ir.Value, *, beta: Any = 1, alpha: Any = 1) -> ir.Value:
    product = e.op("ReduceSum", e.op("MatMul", a, b), e.ints([0]), keepdims=0)
    return _scaled_sum(e, bias, product, beta, alpha)


@ATEN.register("aten::_linalg_det")
def linalg_det(e: Emitter, a: ir.Value) -> tuple[ir.Value, None, None]:
    # Only the determinant: the LU factors and pivots torch also returns have no ONNX op.
    if any(u.args[1] != 0 for u in e.node.users):
        raise NotImplementedError("linalg det's LU factors")
    return e.op("Det", a), None, None
