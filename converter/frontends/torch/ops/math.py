"""More pointwise math: logs and powers of other bases, rounding to decimals, sign games.

Each is one ONNX op or a short composition of them:

- ``log2(x) = Log(x) / ln 2``, ``log10(x) = Log(x) / ln 10``, ``exp2(x) = Pow(2, x)``,
  ``erfc(x) = 1 - Erf(x)``, ``ldexp(x, e) = x * 2**e``, ``hypot(a, b) = sqrt(a² + b²)``.
- ``round(x, decimals=d)``: torch scales by ``10**|d|`` (multiplying for d > 0,
  dividing for d < 0), rounds half to even, and scales back: so does this.
- ``fmax``/``fmin`` ignore a NaN operand (ONNX ``Max``/``Min`` propagate it).
- ``signbit`` and ``copysign`` see the sign of -0.0 (``x == 0`` and ``1/x < 0``).
"""

from __future__ import annotations

import math
from typing import Any

import ir
from converter.frontends.torch.emit import BOOL, Emitter
from converter.frontends.torch.ops import ATEN


def _log_base(e: Emitter, x: ir.Value, base: float) -> ir.Value:
    dt = e.out_dtype
    return e.op("Div", e.op("Log", e.cast(x, dt)), e.const(math.log(base), dt))


@ATEN.register("aten::log2")
def log2(e: Emitter, x: ir.Value) -> ir.Value:
    return _log_base(e, x, 2.0)


@ATEN.register("aten::log10")
def log10(e: Emitter, x: ir.Value) -> ir.Value:
    return _log_base(e, x, 10.0)


@ATEN.register("aten::exp2")
def exp2(e: Emitter, x: ir.Value) -> ir.Value:
    dt = e.out_dtype
    return e.op("Pow", e.const(2.0, dt), e.cast(x, dt))


@ATEN.register("aten::erfc")
def erfc(e: Emitter, x: ir.Value) -> ir.Value:
    dt = e.out_dtype
    return e.op("Sub", e.const(1.0, dt), e.op("Erf", e.cast(x, dt)))


@ATEN.register("aten::ldexp.Tensor")
def ldexp(e: Emitter, x: ir.Value, exponent: ir.Value) -> ir.Value:
    dt = e.out_dtype
    return e.op("Mul", e.cast(x, dt), e.op("Pow", e.const(2.0, dt), e.cast(exponent, dt)))


@ATEN.register("aten::hypot")
def hypot(e: Emitter, a: ir.Value, b: ir.Value) -> ir.Value:
    dt = e.out_dtype
    a, b = e.cast(a, dt), e.cast(b, dt)
    return e.op("Sqrt", e.op("Add", e.op("Mul", a, a), e.op("Mul", b, b)))


@ATEN.register("aten::round.decimals")
def round_decimals(e: Emitter, x: ir.Value, *, decimals: int = 0) -> ir.Value:
    dt = e.out_dtype
    if decimals == 0:
        return e.op("Round", x)
    scale = e.const(10.0 ** abs(decimals), dt)
    up, down = ("Mul", "Div") if decimals > 0 else ("Div", "Mul")
    return e.op(down, e.op("Round", e.op(up, x, scale)), scale)


def _nan_ignoring(e: Emitter, onnx_op: str, a: ir.Value, b: ir.Value) -> ir.Value:
    dt = e.out_dtype
    a, b = e.cast(a, dt), e.cast(b, dt)
    out = e.op(onnx_op, a, b)
    if not dt.is_floating_point():
        return out
    return e.op("Where", e.op("IsNaN", a), b, e.op("Where", e.op("IsNaN", b), a, out))


@ATEN.register("aten::fmax")
def fmax(e: Emitter, a: ir.Value, b: ir.Value) -> ir.Value:
    return _nan_ignoring(e, "Max", a, b)


@ATEN.register("aten::fmin")
def fmin(e: Emitter, a: ir.Value, b: ir.Value) -> ir.Value:
    return _nan_ignoring(e, "Min", a, b)


def _is_negative(e: Emitter, x: ir.Value) -> ir.Value:
    """``x < 0``, and true for -0.0 (whose reciprocal is -inf)."""
    zero = e.const(0, x.dtype)
    negative = e.op("Less", x, zero)
    if not x.dtype.is_floating_point():
        return negative
    negative_zero = e.op("And", e.op("Equal", x, zero), e.op("Less", e.op("Reciprocal", x), zero))
    return e.op("Or", negative, negative_zero)


@ATEN.register("aten::signbit")
def signbit(e: Emitter, x: ir.Value) -> ir.Value:
    if x.dtype == BOOL:
        return e.op("Equal", x, e.op("Not", x))  # all false
    return _is_negative(e, x)


@ATEN.register("aten::copysign.Tensor")
@ATEN.register("aten::copysign.Scalar")
def copysign(e: Emitter, a: ir.Value, b: Any) -> ir.Value:
    dt = e.out_dtype
    magnitude = e.op("Abs", e.cast(a, dt))
    return e.op("Where", _is_negative(e, e.operand(b, dt)), e.op("Neg", magnitude), magnitude)


@ATEN.register("aten::angle")
def angle(e: Emitter, x: ir.Value) -> ir.Value:
    # Real inputs only: pi for negatives, 0 otherwise, NaN kept.
    dt = e.out_dtype
    x = e.cast(x, dt)
    out = e.op("Where", e.op("Less", x, e.const(0.0, dt)), e.const(math.pi, dt), e.const(0.0, dt))
    return e.op("Where", e.op("IsNaN", x), x, out)
