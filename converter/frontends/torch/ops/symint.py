"""SymInt arithmetic and shape queries, so that dynamic dims stay dynamic.

A SymInt is a 0-d int64 value computed from ``Shape`` at run time
(``sym_size.int`` -> ``Gather(Shape(x), dim)``); the Python operators an export
leaves on SymInts (``operator.mul``, ``floordiv``, ``sym_max``, ...) become the
matching ONNX ops. Assertions on sizes (``_assert_scalar`` and friends) were
checked at export and emit nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import ir
from converter.frontends.torch.emit import INT64, Emitter
from converter.frontends.torch.ops import ATEN
from converter.frontends.torch.ops.elementwise import div_mode, remainder


@ATEN.register("aten::sym_size.int")
def sym_size(e: Emitter, x: ir.Value, dim: int) -> ir.Value:
    return e.op("Gather", e.shape_of(x), e.const(np.int64(dim)), axis=0)


@ATEN.register("aten::sym_numel")
def sym_numel(e: Emitter, x: ir.Value) -> ir.Value:
    return e.op("ReduceProd", e.shape_of(x), keepdims=0)


@ATEN.register("aten::sym_storage_offset")
def sym_storage_offset(e: Emitter, x: ir.Value) -> ir.Value:
    return e.const(0, INT64)


@ATEN.register("aten::_assert_scalar")
@ATEN.register("aten::_assert_async.msg")
@ATEN.register("aten::sym_constrain_range_for_size")
@ATEN.register("aten::sym_constrain_range")
@ATEN.register("aten::_assert_tensor_metadata")
def assertion(e: Emitter, *args: Any, **kwargs: Any) -> None:
    return None


@ATEN.register("aten::_local_scalar_dense")
def local_scalar_dense(e: Emitter, x: ir.Value) -> ir.Value:
    return e.cast(e.op("Reshape", x, e.ints([])), e.out_dtype)


def _binary(onnx_op: str) -> Any:
    def translate(e: Emitter, a: Any, b: Any) -> ir.Value:
        dt = e.out_dtype
        return e.op(onnx_op, e.operand(a, dt), e.operand(b, dt))

    translate.__name__ = onnx_op.lower()
    return translate


for _key, _onnx_op in {
    "_operator::add": "Add",
    "_operator::sub": "Sub",
    "_operator::mul": "Mul",
    "_operator::truediv": "Div",
    "_operator::pow": "Pow",
    "torch::sym_max": "Max",
    "torch::sym_min": "Min",
}.items():
    ATEN.register(_key)(_binary(_onnx_op))


def _compare(onnx_op: str, negate: bool = False) -> Any:
    def translate(e: Emitter, a: Any, b: Any) -> ir.Value:
        dt = ir.DataType.DOUBLE if any(isinstance(v, float) or (isinstance(v, ir.Value) and v.dtype.is_floating_point()) for v in (a, b)) else INT64
        out = e.op(onnx_op, e.operand(a, dt), e.operand(b, dt))
        return e.op("Not", out) if negate else out

    translate.__name__ = onnx_op.lower()
    return translate


for _key, _onnx_op in {"eq": "Equal", "lt": "Less", "le": "LessOrEqual", "gt": "Greater", "ge": "GreaterOrEqual"}.items():
    ATEN.register(f"_operator::{_key}")(_compare(_onnx_op))
ATEN.register("_operator::ne")(_compare("Equal", negate=True))


@ATEN.register("_operator::floordiv")
def floordiv(e: Emitter, a: Any, b: Any) -> ir.Value:
    return div_mode(e, a, b, "floor")


@ATEN.register("_operator::mod")
def mod(e: Emitter, a: Any, b: Any) -> ir.Value:
    return remainder(e, a, b)


@ATEN.register("_operator::neg")
def neg(e: Emitter, a: ir.Value) -> ir.Value:
    return e.op("Neg", a)


@ATEN.register("_operator::and_")
def and_(e: Emitter, a: Any, b: Any) -> ir.Value:
    return e.op("And", e.operand(a, ir.DataType.BOOL), e.operand(b, ir.DataType.BOOL))


@ATEN.register("_operator::or_")
def or_(e: Emitter, a: Any, b: Any) -> ir.Value:
    return e.op("Or", e.operand(a, ir.DataType.BOOL), e.operand(b, ir.DataType.BOOL))


@ATEN.register("torch::sym_not")
@ATEN.register("_operator::not_")
def sym_not(e: Emitter, a: Any) -> ir.Value:
    return e.op("Not", e.operand(a, ir.DataType.BOOL))


@ATEN.register("torch::sym_float")
def sym_float(e: Emitter, a: Any) -> ir.Value:
    return e.operand(a, ir.DataType.DOUBLE)


@ATEN.register("torch::sym_int")
@ATEN.register("math::trunc")  # bicubic interpolate's output size: trunc(scale * float(size))
def sym_int(e: Emitter, a: Any) -> ir.Value:
    value = e.operand(a, ir.DataType.DOUBLE)
    return e.cast(e.op("Mul", e.op("Sign", value), e.op("Floor", e.op("Abs", value))), INT64)


@ATEN.register("math::ceil")
def ceil(e: Emitter, a: Any) -> ir.Value:
    return e.cast(e.op("Ceil", e.operand(a, ir.DataType.DOUBLE)), INT64)


@ATEN.register("math::floor")
def floor(e: Emitter, a: Any) -> ir.Value:
    return e.cast(e.op("Floor", e.operand(a, ir.DataType.DOUBLE)), INT64)
