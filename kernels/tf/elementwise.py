"""Elementwise kernels: arithmetic, comparison, logic, bitwise, math functions, Cast, Where, Clip.

TensorFlow broadcasts binary ops the way ONNX does (numpy rules), so binary
kernels call the TensorFlow op directly; the exceptions are the ops whose
integer semantics differ (``Div`` truncates, ``Mod`` follows ``fmod``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import reduce

import tensorflow as tf

from kernels.tf import TF
from kernels.tf._util import builtins_only, tf_dtype


def _named(name: str, fn: Callable) -> Callable:
    fn.__name__ = fn.__qualname__ = name
    return fn


#: Unary ops that are one TensorFlow call, by ONNX op (all since opset 1 bodies).
_UNARY: dict[str, Callable] = {
    "Abs": tf.abs,
    "Neg": tf.negative,
    "Reciprocal": tf.math.reciprocal,
    "Floor": tf.floor,
    "Ceil": tf.math.ceil,
    "Round": tf.round,  # half to even, as ONNX
    "Sqrt": tf.sqrt,
    "Exp": tf.exp,
    "Log": tf.math.log,
    "Sin": tf.sin, "Cos": tf.cos, "Tan": tf.tan,
    "Asin": tf.asin, "Acos": tf.acos, "Atan": tf.atan,
    "Sinh": tf.sinh, "Cosh": tf.cosh,
    "Asinh": tf.asinh, "Acosh": tf.acosh, "Atanh": tf.atanh,
    "Sign": tf.sign,
    "Not": tf.logical_not,
    "BitwiseNot": tf.bitwise.invert,
    "IsNaN": tf.math.is_nan,
}

#: Binary ops that are one TensorFlow call with numpy broadcasting.
_BINARY: dict[str, Callable] = {
    "Add": tf.add,
    "Sub": tf.subtract,
    "Mul": tf.multiply,
    "Equal": tf.equal,
    "Greater": tf.greater,
    "GreaterOrEqual": tf.greater_equal,
    "Less": tf.less,
    "LessOrEqual": tf.less_equal,
    "And": tf.logical_and,
    "Or": tf.logical_or,
    "Xor": tf.math.logical_xor,
    "BitwiseAnd": tf.bitwise.bitwise_and,
    "BitwiseOr": tf.bitwise.bitwise_or,
    "BitwiseXor": tf.bitwise.bitwise_xor,
}

for _op, _fn in _UNARY.items():
    TF.register(_op)(_named(_op.lower(), lambda x, _f=_fn: _f(x)))
for _op, _fn in _BINARY.items():
    TF.register(_op)(_named(_op.lower(), lambda a, b, _f=_fn: _f(a, b)))


#: Abramowitz & Stegun 7.1.26 for |x| >= 1: erf(x) = 1 - t * P(t) * exp(-x^2), t = 1 / (1 + p x)
#: (absolute error below 1.5e-7); below 1, where 1 - (...) cancels in float32, the Taylor
#: series 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1)) to n = 10.
_ERF_P = 0.3275911
_ERF_COEFFS = (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592)
_ERF_SERIES = tuple((-1) ** n / (math.factorial(n) * (2 * n + 1)) for n in range(11))


@TF.register("Erf")
def erf(x):
    """``tf.math.erf``; traced for TFLite (which has no ERF builtin) an approximation made of
    builtins (ABS, MUL, ADD, DIV, EXP, SIGN, SELECT) within 3e-7 of erf in float32."""
    if not builtins_only() or not x.dtype.is_floating:
        return tf.math.erf(x)
    wide = tf.cast(x, tf.float32) if x.dtype != tf.float64 else x
    a = tf.abs(wide)
    t = 1.0 / (1.0 + _ERF_P * a)
    poly = tf.zeros_like(t)
    for c in _ERF_COEFFS:
        poly = (poly + c) * t
    far = tf.sign(wide) * (1.0 - poly * tf.exp(-a * a))
    square, series = wide * wide, tf.zeros_like(wide)
    for c in reversed(_ERF_SERIES):
        series = series * square + c
    near = (2.0 / math.sqrt(math.pi)) * wide * series
    return tf.cast(tf.where(a < 1.0, near, far), x.dtype)


@TF.register("Identity")
def identity(x):
    if x is None or isinstance(x, list):  # an empty optional, or a sequence (in a 1-tuple: one output)
        return (x,)
    return tf.identity(x)


@TF.register("Div")
def div(a, b):
    if a.dtype.is_integer:
        return tf.truncatediv(a, b)  # C semantics: toward zero
    return tf.math.divide(a, b)


@TF.register("Mod", since=10)
def mod(a, b, fmod: int = 0):
    if fmod:
        if a.dtype in (tf.float16, tf.bfloat16):  # no half TruncateMod kernel on CPU
            return tf.cast(tf.truncatemod(tf.cast(a, tf.float32), tf.cast(b, tf.float32)), a.dtype)
        return tf.truncatemod(a, b)  # C fmod: the sign of the dividend
    return tf.math.floormod(a, b)  # the sign of the divisor


@TF.register("Pow")
def pow_(x, y):
    if x.dtype.is_integer and y.dtype.is_floating:
        return tf.cast(tf.pow(tf.cast(x, y.dtype), y), x.dtype)
    return tf.pow(x, tf.cast(y, x.dtype))


@TF.register("BitShift", since=11)
def bit_shift(x, y, direction: str = "LEFT"):
    if direction == "LEFT":
        return tf.bitwise.left_shift(x, y)
    return tf.bitwise.right_shift(x, y)


@TF.register("IsInf", since=10)
def is_inf(x, detect_negative: int = 1, detect_positive: int = 1):
    pos = tf.equal(x, float("inf")) if detect_positive else tf.zeros_like(x, tf.bool)
    neg = tf.equal(x, float("-inf")) if detect_negative else tf.zeros_like(x, tf.bool)
    return tf.logical_or(pos, neg)


def _variadic(fn: Callable, inputs: list) -> tf.Tensor:
    return reduce(fn, inputs[1:], inputs[0]) if len(inputs) > 1 else tf.identity(inputs[0])


@TF.register("Sum", since=6)  # 6 and 7: no broadcasting, a subset
@TF.register("Sum", since=8)
def sum_(inputs):
    return _variadic(tf.add, inputs)


@TF.register("Mean", since=6)  # 6 and 7: no broadcasting, a subset
@TF.register("Mean", since=8)
def mean(inputs):
    return _variadic(tf.add, inputs) / tf.cast(len(inputs), inputs[0].dtype)


def _nan_max(a, b):
    out = tf.maximum(a, b)
    if a.dtype.is_floating:  # ONNX propagates NaN, tf.maximum does not always
        out = tf.where(tf.math.is_nan(a) | tf.math.is_nan(b), tf.cast(float("nan"), a.dtype), out)
    return out


def _nan_min(a, b):
    out = tf.minimum(a, b)
    if a.dtype.is_floating:
        out = tf.where(tf.math.is_nan(a) | tf.math.is_nan(b), tf.cast(float("nan"), a.dtype), out)
    return out


@TF.register("Max", since=6)  # 6 and 7: no broadcasting, a subset
@TF.register("Max", since=8)
def max_(inputs):
    return _variadic(_nan_max, inputs)


@TF.register("Min", since=6)  # 6 and 7: no broadcasting, a subset
@TF.register("Min", since=8)
def min_(inputs):
    return _variadic(_nan_min, inputs)


@TF.register("Where", since=9)
def where(cond, x, y):
    return tf.where(cond, x, y)


@TF.register("Clip", since=6)
def clip_6(x, max: float = 3.4028234663852886e38, min: float = -3.4028234663852886e38):  # noqa: A002
    return tf.minimum(tf.maximum(x, tf.cast(min, x.dtype)), tf.cast(max, x.dtype))


@TF.register("Clip", since=11)
def clip(x, lo=None, hi=None):
    # min(max(x, lo), hi): where lo > hi every element becomes hi, as ONNX says.
    if lo is not None:
        x = tf.maximum(x, lo)
    if hi is not None:
        x = tf.minimum(x, hi)
    return x


@TF.register("Cast", since=6)
def cast(x, to: int, saturate: int = 1, round_mode: str = "up"):
    dtype = tf_dtype(to)
    if dtype == tf.string:
        return tf.strings.as_string(x) if x.dtype != tf.string else x
    if x.dtype == tf.string:
        return tf.strings.to_number(x, dtype)
    return tf.cast(x, dtype)


@TF.register("CastLike", since=15)
def cast_like(x, target, saturate: int = 1, round_mode: str = "up"):
    return tf.cast(x, target.dtype)
