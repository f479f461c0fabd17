"""Elementwise math, comparison, logical and bitwise ops, casts and variadic reductions.

ONNX broadcasting is numpy's, which is torch's, so binary kernels call the torch
op directly. Integer ``Div`` truncates toward zero (C semantics) and ``Mod``
follows the sign of the divisor unless ``fmod=1``. torch CPU lacks arithmetic
and comparisons on uint16/32/64, so those compute in int64 (see
``_util.to_signed``: exact, uint64 division below 2**63).
"""

import torch
from torch import Tensor

from kernels.torch import TORCH
from kernels.torch._util import from_signed, onnx_dtype, order_key, to_signed, wide_unsigned

# --- unary math ------------------------------------------------------------------


@TORCH.register("Abs")
def abs_(x: Tensor) -> Tensor:
    return torch.abs(x)


@TORCH.register("Neg")
def neg(x: Tensor) -> Tensor:
    return torch.neg(x)


@TORCH.register("Exp")
def exp(x: Tensor) -> Tensor:
    return torch.exp(x)


@TORCH.register("Log")
def log(x: Tensor) -> Tensor:
    return torch.log(x)


@TORCH.register("Sqrt")
def sqrt(x: Tensor) -> Tensor:
    return torch.sqrt(x)


@TORCH.register("Reciprocal")
def reciprocal(x: Tensor) -> Tensor:
    return torch.reciprocal(x)


@TORCH.register("Floor")
def floor(x: Tensor) -> Tensor:
    return torch.floor(x)


@TORCH.register("Ceil")
def ceil(x: Tensor) -> Tensor:
    return torch.ceil(x)


@TORCH.register("Round", since=11)
def round_(x: Tensor) -> Tensor:
    return torch.round(x)  # half to even, as ONNX specifies


@TORCH.register("Sign", since=9)
def sign(x: Tensor) -> Tensor:
    return torch.sign(x)


@TORCH.register("Sin", since=7)
def sin(x: Tensor) -> Tensor:
    return torch.sin(x)


@TORCH.register("Cos", since=7)
def cos(x: Tensor) -> Tensor:
    return torch.cos(x)


@TORCH.register("Tan", since=7)
def tan(x: Tensor) -> Tensor:
    return torch.tan(x)


@TORCH.register("Asin", since=7)
def asin(x: Tensor) -> Tensor:
    return torch.asin(x)


@TORCH.register("Acos", since=7)
def acos(x: Tensor) -> Tensor:
    return torch.acos(x)


@TORCH.register("Atan", since=7)
def atan(x: Tensor) -> Tensor:
    return torch.atan(x)


@TORCH.register("Sinh", since=9)
def sinh(x: Tensor) -> Tensor:
    return torch.sinh(x)


@TORCH.register("Cosh", since=9)
def cosh(x: Tensor) -> Tensor:
    return torch.cosh(x)


@TORCH.register("Asinh", since=9)
def asinh(x: Tensor) -> Tensor:
    return torch.asinh(x)


@TORCH.register("Acosh", since=9)
def acosh(x: Tensor) -> Tensor:
    return torch.acosh(x)


@TORCH.register("Atanh", since=9)
def atanh(x: Tensor) -> Tensor:
    return torch.atanh(x)


@TORCH.register("Erf", since=9)
def erf(x: Tensor) -> Tensor:
    return torch.erf(x)


@TORCH.register("IsNaN", since=9)
def is_nan(x: Tensor) -> Tensor:
    return torch.isnan(x)


@TORCH.register("IsInf", since=10)
def is_inf(x: Tensor, detect_negative: int = 1, detect_positive: int = 1) -> Tensor:
    if detect_negative and detect_positive:
        return torch.isinf(x)
    if detect_negative:
        return torch.isneginf(x)
    if detect_positive:
        return torch.isposinf(x)
    return torch.zeros_like(x, dtype=torch.bool)


@TORCH.register("Not")
def not_(x: Tensor) -> Tensor:
    return torch.logical_not(x)


@TORCH.register("BitwiseNot", since=18)
def bitwise_not(x: Tensor) -> Tensor:
    if wide_unsigned(x):
        return from_signed(torch.bitwise_not(to_signed(x)), x.dtype)
    return torch.bitwise_not(x)


# --- binary arithmetic -----------------------------------------------------------


@TORCH.register("Add", since=7)
def add(a: Tensor, b: Tensor) -> Tensor:
    if wide_unsigned(a):
        return from_signed(to_signed(a) + to_signed(b), a.dtype)
    return a + b


@TORCH.register("Sub", since=7)
def sub(a: Tensor, b: Tensor) -> Tensor:
    if wide_unsigned(a):
        return from_signed(to_signed(a) - to_signed(b), a.dtype)
    return a - b


@TORCH.register("Mul", since=7)
def mul(a: Tensor, b: Tensor) -> Tensor:
    if wide_unsigned(a):
        return from_signed(to_signed(a) * to_signed(b), a.dtype)
    return a * b


@TORCH.register("Div", since=7)
def div(a: Tensor, b: Tensor) -> Tensor:
    if a.is_floating_point():
        return a / b
    if wide_unsigned(a):
        return from_signed(torch.div(to_signed(a), to_signed(b), rounding_mode="trunc"), a.dtype)
    return torch.div(a, b, rounding_mode="trunc")  # integer division truncates toward zero



@TORCH.register("Pow", since=7)
def pow_(x: Tensor, y: Tensor) -> Tensor:
    # The exponent may have another type; the result has the base's.
    return torch.pow(x, y).to(x.dtype)


@TORCH.register("Mod", since=10)
def mod(a: Tensor, b: Tensor, fmod: int = 0) -> Tensor:
    if fmod == 1:
        return torch.fmod(a, b)  # sign of the dividend, as C fmod
    if wide_unsigned(a):
        return from_signed(torch.remainder(to_signed(a), to_signed(b)), a.dtype)
    return torch.remainder(a, b)  # sign of the divisor, as Python %


@TORCH.register("BitShift", since=11)
def bit_shift(x: Tensor, y: Tensor, direction: str = "") -> Tensor:
    if x.dtype == torch.uint64 and direction != "LEFT":  # logical shift of the int64 view
        shifted = torch.bitwise_right_shift(to_signed(x), to_signed(y))
        high = torch.bitwise_left_shift(torch.ones_like(shifted), 64 - to_signed(y))
        return from_signed(torch.where(y == 0, to_signed(x), torch.bitwise_and(shifted, high - 1)), x.dtype)
    a, b = to_signed(x), to_signed(y)
    if direction == "LEFT":
        out = torch.bitwise_left_shift(a, b)
    else:
        out = torch.bitwise_right_shift(a, b)
    return from_signed(out, x.dtype) if wide_unsigned(x) else out


@TORCH.register("BitwiseAnd", since=18)
def bitwise_and(a: Tensor, b: Tensor) -> Tensor:
    return torch.bitwise_and(a, b)


@TORCH.register("BitwiseOr", since=18)
def bitwise_or(a: Tensor, b: Tensor) -> Tensor:
    return torch.bitwise_or(a, b)


@TORCH.register("BitwiseXor", since=18)
def bitwise_xor(a: Tensor, b: Tensor) -> Tensor:
    return torch.bitwise_xor(a, b)


# --- comparison and logic --------------------------------------------------------


def _comparable(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """``a`` and ``b`` as tensors that torch orders as ONNX does (uint32/uint64 through :func:`order_key`)."""
    if wide_unsigned(a):
        return order_key(a), order_key(b)
    return a, b


@TORCH.register("Equal", since=7)
def equal(a: Tensor, b: Tensor) -> Tensor:
    return torch.eq(a, b)


@TORCH.register("Less", since=7)
def less(a: Tensor, b: Tensor) -> Tensor:
    x, y = _comparable(a, b)
    return torch.lt(x, y)


@TORCH.register("LessOrEqual", since=12)
def less_or_equal(a: Tensor, b: Tensor) -> Tensor:
    x, y = _comparable(a, b)
    return torch.le(x, y)


@TORCH.register("Greater", since=7)
def greater(a: Tensor, b: Tensor) -> Tensor:
    x, y = _comparable(a, b)
    return torch.gt(x, y)


@TORCH.register("GreaterOrEqual", since=12)
def greater_or_equal(a: Tensor, b: Tensor) -> Tensor:
    x, y = _comparable(a, b)
    return torch.ge(x, y)


@TORCH.register("And", since=7)
def and_(a: Tensor, b: Tensor) -> Tensor:
    return torch.logical_and(a, b)


@TORCH.register("Or", since=7)
def or_(a: Tensor, b: Tensor) -> Tensor:
    return torch.logical_or(a, b)


@TORCH.register("Xor", since=7)
def xor(a: Tensor, b: Tensor) -> Tensor:
    return torch.logical_xor(a, b)


@TORCH.register("Where", since=9)
def where(condition: Tensor, x: Tensor, y: Tensor) -> Tensor:
    return torch.where(condition, x, y)


# --- variadic --------------------------------------------------------------------


@TORCH.register("Sum", since=6)  # 6 and 7: no broadcasting, a subset
@TORCH.register("Sum", since=8)
def sum_(data: list[Tensor]) -> Tensor:
    out = data[0]
    for t in data[1:]:
        out = out + t
    return out


@TORCH.register("Mean", since=6)  # 6 and 7: no broadcasting, a subset
@TORCH.register("Mean", since=8)
def mean(data: list[Tensor]) -> Tensor:
    return sum_(data) / float(len(data))


def _extreme(data: list[Tensor], largest: bool) -> Tensor:
    """The elementwise maximum (``largest``) or minimum of ``data``, broadcast."""
    out = data[0]
    for t in data[1:]:
        if wide_unsigned(out):
            a, b = order_key(out), order_key(t)
            keep = a >= b if largest else a <= b
            out = from_signed(torch.where(keep, to_signed(out), to_signed(t)), out.dtype)
        else:
            out = torch.maximum(out, t) if largest else torch.minimum(out, t)
    return out


@TORCH.register("Max", since=6)  # 6 and 7: no broadcasting, a subset
@TORCH.register("Max", since=8)
def max_(data: list[Tensor]) -> Tensor:
    return _extreme(data, True)


@TORCH.register("Min", since=6)  # 6 and 7: no broadcasting, a subset
@TORCH.register("Min", since=8)
def min_(data: list[Tensor]) -> Tensor:
    return _extreme(data, False)


# --- clip and casts --------------------------------------------------------------


@TORCH.register("Clip", since=6)
def clip_6(x: Tensor, min: float = -3.4028234663852886e38, max: float = 3.4028234663852886e38) -> Tensor:
    return torch.clamp(x, min, max)


@TORCH.register("Clip", since=11)
def clip(x: Tensor, min: Tensor | None = None, max: Tensor | None = None) -> Tensor:
    if min is not None:
        x = torch.maximum(x, min.to(x.dtype))
    if max is not None:
        x = torch.minimum(x, max.to(x.dtype))
    return x


@TORCH.register("Cast", since=6)
def cast(x: Tensor, to: int = 1, saturate: int = 1, round_mode: str = "up") -> Tensor:
    return x.to(onnx_dtype(to))


@TORCH.register("CastLike", since=15)
def cast_like(x: Tensor, target_type: Tensor, saturate: int = 1, round_mode: str = "up") -> Tensor:
    return x.to(target_type.dtype)
