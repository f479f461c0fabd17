"""Elementwise ATen ops: arithmetic with type promotion, comparisons, activations, casts.

Type promotion follows the FX node's output dtype (``meta["val"]``): operands,
Python scalars included, are cast to it before the ONNX op, which needs equal
types. Comparisons promote their operands with ``torch.result_type``.
"""

from __future__ import annotations

import math
from typing import Any

import torch

import ir
from converter.frontends.torch.emit import BOOL, Emitter
from converter.frontends.torch.ops import ATEN

# ---- unary ops: same dtype in and out (ints promoted to float where torch does) ----

_UNARY = {
    "aten::relu": "Relu",  # max(x, 0)
    "aten::sigmoid": "Sigmoid",
    "aten::tanh": "Tanh",
    "aten::exp": "Exp",
    "aten::log": "Log",
    "aten::sqrt": "Sqrt",
    "aten::neg": "Neg",
    "aten::abs": "Abs",
    "aten::sin": "Sin",
    "aten::cos": "Cos",
    "aten::tan": "Tan",
    "aten::asin": "Asin",
    "aten::acos": "Acos",
    "aten::atan": "Atan",
    "aten::asinh": "Asinh",
    "aten::acosh": "Acosh",
    "aten::atanh": "Atanh",
    "aten::sinh": "Sinh",
    "aten::cosh": "Cosh",
    "aten::erf": "Erf",
    "aten::floor": "Floor",
    "aten::ceil": "Ceil",
    "aten::round": "Round",  # both round half to even
    "aten::sign": "Sign",
    "aten::reciprocal": "Reciprocal",
    "aten::hardswish": "HardSwish",
    "aten::mish": "Mish",
}


def _unary(onnx_op: str) -> Any:
    def translate(e: Emitter, x: ir.Value) -> ir.Value:
        return e.op(onnx_op, e.cast(x, e.out_dtype))

    translate.__name__ = onnx_op.lower()
    return translate


for _key, _onnx_op in _UNARY.items():
    ATEN.register(_key)(_unary(_onnx_op))


@ATEN.register("aten::rsqrt")
def rsqrt(e: Emitter, x: ir.Value) -> ir.Value:
    return e.op("Reciprocal", e.op("Sqrt", e.cast(x, e.out_dtype)))


@ATEN.register("aten::log1p")
def log1p(e: Emitter, x: ir.Value) -> ir.Value:
    dt = e.out_dtype
    return e.op("Log", e.op("Add", e.cast(x, dt), e.const(1, dt)))


@ATEN.register("aten::expm1")
def expm1(e: Emitter, x: ir.Value) -> ir.Value:
    dt = e.out_dtype
    return e.op("Sub", e.op("Exp", e.cast(x, dt)), e.const(1, dt))


@ATEN.register("aten::trunc")
def trunc(e: Emitter, x: ir.Value) -> ir.Value:
    return e.op("Mul", e.op("Sign", x), e.op("Floor", e.op("Abs", x)))


@ATEN.register("aten::isnan")
def isnan(e: Emitter, x: ir.Value) -> ir.Value:
    return e.op("IsNaN", x)


@ATEN.register("aten::isinf")
def isinf(e: Emitter, x: ir.Value) -> ir.Value:
    return e.op("IsInf", x)


# ---- activations with parameters --------------------------------------------------


@ATEN.register("aten::gelu")
def gelu(e: Emitter, x: ir.Value, approximate: str = "none") -> ir.Value:
    return e.op("Gelu", x, approximate=approximate)


@ATEN.register("aten::silu")
def silu(e: Emitter, x: ir.Value) -> ir.Value:
    return e.op("Mul", x, e.op("Sigmoid", x))


@ATEN.register("aten::hardtanh")
def hardtanh(e: Emitter, x: ir.Value, min_val: float = -1.0, max_val: float = 1.0) -> ir.Value:
    return e.op("Clip", x, e.const(min_val, x.dtype), e.const(max_val, x.dtype))


@ATEN.register("aten::clamp")
def clamp(e: Emitter, x: ir.Value, min: Any = None, max: Any = None) -> ir.Value:  # noqa: A002
    dt = e.out_dtype
    x = e.cast(x, dt)
    lo = e.operand(min, dt) if min is not None else None
    hi = e.operand(max, dt) if max is not None else None
    return e.op("Clip", x, lo, hi)


@ATEN.register("aten::clamp.Tensor")
def clamp_tensor(e: Emitter, x: ir.Value, min: Any = None, max: Any = None) -> ir.Value:  # noqa: A002
    dt = e.out_dtype
    out = e.cast(x, dt)
    if min is not None:
        out = e.op("Max", out, e.cast(min, dt))
    if max is not None:
        out = e.op("Min", out, e.cast(max, dt))
    return out


@ATEN.register("aten::leaky_relu")
def leaky_relu(e: Emitter, x: ir.Value, negative_slope: float = 0.01) -> ir.Value:
    return e.op("LeakyRelu", x, alpha=float(negative_slope))


@ATEN.register("aten::elu")
def elu(e: Emitter, x: ir.Value, alpha: float = 1.0, scale: float = 1.0, input_scale: float = 1.0) -> ir.Value:
    if input_scale != 1:
        x = e.op("Mul", x, e.const(input_scale, x.dtype))
    out = e.op("Elu", x, alpha=float(alpha))
    return out if scale == 1 else e.op("Mul", out, e.const(scale, x.dtype))


@ATEN.register("aten::hardsigmoid")
def hardsigmoid(e: Emitter, x: ir.Value) -> ir.Value:
    return e.op("HardSigmoid", x, alpha=1 / 6, beta=0.5)


@ATEN.register("aten::softplus")
def softplus(e: Emitter, x: ir.Value, beta: float = 1.0, threshold: float = 20.0) -> ir.Value:
    # torch switches to the identity above `threshold`; the results agree there to float precision.
    if beta == 1:
        return e.op("Softplus", x)
    b = e.const(beta, x.dtype)
    return e.op("Div", e.op("Softplus", e.op("Mul", x, b)), b)


@ATEN.register("aten::_softmax")
def softmax(e: Emitter, x: ir.Value, dim: int, half_to_float: bool = False) -> ir.Value:
    return e.op("Softmax", e.cast(x, e.out_dtype), axis=dim)


@ATEN.register("aten::_log_softmax")
def log_softmax(e: Emitter, x: ir.Value, dim: int, half_to_float: bool = False) -> ir.Value:
    return e.op("LogSoftmax", e.cast(x, e.out_dtype), axis=dim)


# ---- binary arithmetic ------------------------------------------------------------


def _binary(e: Emitter, onnx_op: str, a: Any, b: Any) -> ir.Value:
    dt = e.out_dtype
    return e.op(onnx_op, e.operand(a, dt), e.operand(b, dt))


@ATEN.register("aten::add.Tensor")
@ATEN.register("aten::add.Scalar")
def add(e: Emitter, a: Any, b: Any, alpha: Any = 1) -> ir.Value:
    if alpha != 1:
        b = e.op("Mul", e.operand(b, e.out_dtype), e.const(alpha, e.out_dtype))
    return _binary(e, "Add", a, b)


@ATEN.register("aten::sub.Tensor")
@ATEN.register("aten::sub.Scalar")
def sub(e: Emitter, a: Any, b: Any, alpha: Any = 1) -> ir.Value:
    if alpha != 1:
        b = e.op("Mul", e.operand(b, e.out_dtype), e.const(alpha, e.out_dtype))
    return _binary(e, "Sub", a, b)


@ATEN.register("aten::rsub.Scalar")
@ATEN.register("aten::rsub.Tensor")
def rsub(e: Emitter, a: Any, b: Any, alpha: Any = 1) -> ir.Value:
    return sub(e, b, a, alpha) if alpha == 1 else _binary(e, "Sub", b, e.op("Mul", e.operand(a, e.out_dtype), e.const(alpha, e.out_dtype)))


@ATEN.register("aten::mul.Tensor")
@ATEN.register("aten::mul.Scalar")
def mul(e: Emitter, a: Any, b: Any) -> ir.Value:
    if e.out_dtype == BOOL:
        return e.op("And", e.operand(a, BOOL), e.operand(b, BOOL))
    return _binary(e, "Mul", a, b)


@ATEN.register("aten::div.Tensor")
@ATEN.register("aten::div.Scalar")
def div(e: Emitter, a: Any, b: Any) -> ir.Value:
    return _binary(e, "Div", a, b)


@ATEN.register("aten::div.Tensor_mode")
@ATEN.register("aten::div.Scalar_mode")
def div_mode(e: Emitter, a: Any, b: Any, rounding_mode: str | None = None) -> ir.Value:
    dt = e.out_dtype
    if rounding_mode is None:
        return _binary(e, "Div", a, b)
    # Integer division rounds in double: exact for |values| < 2**53.
    wide = ir.DataType.DOUBLE if not dt.is_floating_point() else dt
    q = e.op("Div", e.operand(a, wide), e.operand(b, wide))
    q = e.op("Floor", q) if rounding_mode == "floor" else trunc(e, q)
    return e.cast(q, dt)


@ATEN.register("aten::remainder.Tensor")
@ATEN.register("aten::remainder.Scalar")
def remainder(e: Emitter, a: Any, b: Any) -> ir.Value:
    dt = e.out_dtype
    a, b = e.operand(a, dt), e.operand(b, dt)
    if not dt.is_floating_point():
        return e.op("Mod", a, b)  # fmod=0: the sign of the divisor, as Python's %
    return e.op("Sub", a, e.op("Mul", e.op("Floor", e.op("Div", a, b)), b))


@ATEN.register("aten::fmod.Tensor")
@ATEN.register("aten::fmod.Scalar")
def fmod(e: Emitter, a: Any, b: Any) -> ir.Value:
    dt = e.out_dtype
    return e.op("Mod", e.operand(a, dt), e.operand(b, dt), fmod=1)


@ATEN.register("aten::pow.Tensor_Scalar")
@ATEN.register("aten::pow.Tensor_Tensor")
@ATEN.register("aten::pow.Scalar")
def pow(e: Emitter, a: Any, b: Any) -> ir.Value:  # noqa: A001
    if isinstance(b, int | float) and b == 2 and isinstance(a, ir.Value):
        x = e.cast(a, e.out_dtype)
        return e.op("Mul", x, x)
    return _binary(e, "Pow", a, b)


@ATEN.register("aten::maximum")
def maximum(e: Emitter, a: ir.Value, b: ir.Value) -> ir.Value:
    return _binary(e, "Max", a, b)


@ATEN.register("aten::minimum")
def minimum(e: Emitter, a: ir.Value, b: ir.Value) -> ir.Value:
    return _binary(e, "Min", a, b)


@ATEN.register("aten::atan2")
def atan2(e: Emitter, y: ir.Value, x: ir.Value) -> ir.Value:
    dt = e.out_dtype
    y, x = e.cast(y, dt), e.cast(x, dt)
    base = e.op("Atan", e.op("Div", y, x))
    pi = e.op("Where", e.op("Less", y, e.const(0, dt)), e.const(-math.pi, dt), e.const(math.pi, dt))
    return e.op("Add", base, e.op("Where", e.op("Less", x, e.const(0, dt)), pi, e.const(0, dt)))


# ---- comparisons and logic ---------------------------------------------------------


def _promoted(e: Emitter) -> ir.DataType:
    """The dtype both operands of a comparison are promoted to."""

    def dummy(v: Any) -> Any:
        if isinstance(v, torch.Tensor):
            return torch.empty((0,) * v.dim(), dtype=v.dtype)
        return {torch.SymInt: 1, torch.SymFloat: 1.0, torch.SymBool: True}.get(type(v), v)

    return e.translator.dtype_of(dummy(torch.empty(0, dtype=torch.result_type(dummy(e.arg_meta(0)), dummy(e.arg_meta(1))))))


_COMPARE = {"eq": "Equal", "lt": "Less", "le": "LessOrEqual", "gt": "Greater", "ge": "GreaterOrEqual"}


def _compare(onnx_op: str) -> Any:
    def translate(e: Emitter, a: Any, b: Any) -> ir.Value:
        dt = _promoted(e)
        return e.op(onnx_op, e.operand(a, dt), e.operand(b, dt))

    translate.__name__ = onnx_op.lower()
    return translate


for _name, _onnx_op in _COMPARE.items():
    ATEN.register(f"aten::{_name}.Tensor")(_compare(_onnx_op))
    ATEN.register(f"aten::{_name}.Scalar")(_compare(_onnx_op))


@ATEN.register("aten::ne.Tensor")
@ATEN.register("aten::ne.Scalar")
def ne(e: Emitter, a: Any, b: Any) -> ir.Value:
    dt = _promoted(e)
    return e.op("Not", e.op("Equal", e.operand(a, dt), e.operand(b, dt)))


@ATEN.register("aten::logical_not")
@ATEN.register("aten::bitwise_not")
def logical_not(e: Emitter, x: ir.Value) -> ir.Value:
    if e.out_dtype != BOOL:
        return e.op("BitwiseNot", x)
    return e.op("Not", e.cast(x, BOOL))


_LOGIC = {"and": "And", "or": "Or", "xor": "Xor"}


def _logic(onnx_op: str, bitwise: bool) -> Any:
    def translate(e: Emitter, a: Any, b: Any) -> ir.Value:
        if bitwise and e.out_dtype != BOOL:
            return _binary(e, f"Bitwise{onnx_op}", a, b)
        return e.op(onnx_op, e.operand(a, BOOL), e.operand(b, BOOL))

    translate.__name__ = onnx_op.lower()
    return translate


for _name, _onnx_op in _LOGIC.items():
    ATEN.register(f"aten::logical_{_name}")(_logic(_onnx_op, bitwise=False))
    ATEN.register(f"aten::bitwise_{_name}.Tensor")(_logic(_onnx_op, bitwise=True))
    ATEN.register(f"aten::bitwise_{_name}.Scalar")(_logic(_onnx_op, bitwise=True))


@ATEN.register("aten::where.self")
def where(e: Emitter, cond: ir.Value, a: Any, b: Any) -> ir.Value:
    dt = e.out_dtype
    return e.op("Where", e.cast(cond, BOOL), e.operand(a, dt), e.operand(b, dt))


@ATEN.register("aten::masked_fill.Scalar")
@ATEN.register("aten::masked_fill.Tensor")
def masked_fill(e: Emitter, x: ir.Value, mask: ir.Value, value: Any) -> ir.Value:
    return e.op("Where", e.cast(mask, BOOL), e.operand(value, x.dtype), x)


# ---- copies and casts --------------------------------------------------------------


@ATEN.register("aten::clone")
@ATEN.register("aten::alias")
@ATEN.register("aten::detach")
@ATEN.register("aten::lift_fresh_copy")
@ATEN.register("aten::contiguous")
def clone(e: Emitter, x: ir.Value, *args: Any, **kwargs: Any) -> ir.Value:
    return x


@ATEN.register("aten::_to_copy")
@ATEN.register("aten::to.dtype")
@ATEN.register("aten::type_as")
def to_copy(e: Emitter, x: ir.Value, *args: Any, **kwargs: Any) -> ir.Value:
    return e.cast(x, e.out_dtype)


@ATEN.register("aten::copy")
def copy(e: Emitter, dst: ir.Value, src: ir.Value, non_blocking: bool = False) -> ir.Value:
    return e.op("Expand", e.cast(src, dst.dtype), e.shape_of(dst))


@ATEN.register("aten::fill.Scalar")
@ATEN.register("aten::fill.Tensor")
def fill(e: Emitter, x: ir.Value, value: Any) -> ir.Value:
    return e.op("Expand", e.operand(value, x.dtype), e.shape_of(x))
