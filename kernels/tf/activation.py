"""Activation kernels and the softmax family."""

from __future__ import annotations

import tensorflow as tf

from kernels.tf import TF
from kernels.tf._util import axis_of, dims, prod, rank


def _c(value: float, x: tf.Tensor) -> tf.Tensor:
    return tf.cast(value, x.dtype)


@TF.register("Relu")
def relu(x):
    return tf.nn.relu(x)


@TF.register("Sigmoid")
def sigmoid(x):
    return tf.sigmoid(x)


@TF.register("Tanh")
def tanh(x):
    return tf.tanh(x)


@TF.register("LeakyRelu")
def leaky_relu(x, alpha: float = 0.01):
    return tf.where(x >= 0, x, x * _c(alpha, x))


@TF.register("PRelu")
def prelu(x, slope):
    return tf.where(x >= 0, x, x * slope)


@TF.register("Elu")
def elu(x, alpha: float = 1.0):
    return tf.where(x > 0, x, _c(alpha, x) * (tf.exp(x) - 1))


@TF.register("Selu")
def selu(x, alpha: float = 1.67326319217681884765625, gamma: float = 1.05070102214813232421875):
    return _c(gamma, x) * tf.where(x > 0, x, _c(alpha, x) * (tf.exp(x) - 1))


@TF.register("Celu", since=12)
def celu(x, alpha: float = 1.0):
    a = _c(alpha, x)
    return tf.maximum(x, 0) + tf.minimum(_c(0, x), a * (tf.exp(x / a) - 1))


@TF.register("ThresholdedRelu", since=10)
def thresholded_relu(x, alpha: float = 1.0):
    return tf.where(x > _c(alpha, x), x, tf.zeros_like(x))


@TF.register("HardSigmoid")
def hard_sigmoid(x, alpha: float = 0.2, beta: float = 0.5):
    return tf.clip_by_value(_c(alpha, x) * x + _c(beta, x), _c(0, x), _c(1, x))


@TF.register("HardSwish", since=14)
def hard_swish(x):
    return x * tf.clip_by_value(x / _c(6, x) + _c(0.5, x), _c(0, x), _c(1, x))


@TF.register("Softplus")
def softplus(x):
    return tf.math.softplus(x)


@TF.register("Softsign")
def softsign(x):
    return x / (1 + tf.abs(x))


@TF.register("Mish", since=18)
def mish(x):
    return x * tf.tanh(tf.math.softplus(x))


@TF.register("Swish", since=24)
def swish(x, alpha: float = 1.0):
    return x * tf.sigmoid(_c(alpha, x) * x)


@TF.register("Gelu", since=20)
def gelu(x, approximate: str = "none"):
    return tf.nn.gelu(x, approximate=approximate == "tanh")


@TF.register("Shrink", since=9)
def shrink(x, bias: float = 0.0, lambd: float = 0.5):
    b, lam = _c(bias, x), _c(lambd, x)
    return tf.where(x < -lam, x + b, tf.where(x > lam, x - b, tf.zeros_like(x)))


def _hardmax_last(x: tf.Tensor) -> tf.Tensor:
    # The first maximum wins ties, as in ONNX.
    return tf.one_hot(tf.argmax(x, axis=-1), tf.shape(x)[-1], dtype=x.dtype)


def _softmax_last(x: tf.Tensor) -> tf.Tensor:
    """Softmax on the last axis; in float16 / bfloat16 as ONNX's function body, rounding each step to the type.

    Softmax-13 is defined as Exp(X - ReduceMax(X)) / ReduceSum(Exp(...)) with every
    intermediate a tensor of the input type (onnx's reference rounds after each
    numpy op the same way). TensorFlow's own half-precision kernel rounds elsewhere
    and lands 1-2 float16 steps off; each step here runs in float32 and is rounded.
    """
    if x.dtype not in (tf.float16, tf.bfloat16):
        return tf.nn.softmax(x)

    def rounded(t: tf.Tensor) -> tf.Tensor:
        return tf.cast(tf.cast(t, x.dtype), tf.float32)

    wide = tf.cast(x, tf.float32)
    exp = rounded(tf.exp(rounded(wide - tf.reduce_max(wide, -1, keepdims=True))))
    return tf.cast(exp / rounded(tf.reduce_sum(exp, -1, keepdims=True)), x.dtype)


def _log_softmax_last(x: tf.Tensor) -> tf.Tensor:
    """LogSoftmax on the last axis; float16 / bfloat16 computed in float32, rounded once."""
    if x.dtype not in (tf.float16, tf.bfloat16):
        return tf.nn.log_softmax(x)
    return tf.cast(tf.nn.log_softmax(tf.cast(x, tf.float32)), x.dtype)


_SOFTMAX = {"Softmax": _softmax_last, "LogSoftmax": _log_softmax_last, "Hardmax": _hardmax_last}


def _on_axis(fn, x: tf.Tensor, axis: int) -> tf.Tensor:
    """Apply a last-axis function along ``axis`` (opset >= 13 semantics)."""
    r = rank(x)
    axis = axis_of(axis, r)
    if axis == r - 1:
        return fn(x)
    perm = [*range(axis), *range(axis + 1, r), axis]
    inverse = [perm.index(i) for i in range(r)]
    return tf.transpose(fn(tf.transpose(x, perm)), inverse)


def _coerced(fn, x: tf.Tensor, axis: int) -> tf.Tensor:
    """Opset < 13 semantics: the input is flattened to 2-D at ``axis``."""
    d = dims(x)
    axis = axis_of(axis, len(d))
    flat = tf.reshape(x, [-1, prod(d[axis:])] if axis > 0 else [1, -1])
    return tf.reshape(fn(flat), tf.shape(x))


@TF.register("Softmax", since=1)
def softmax_1(x, axis: int = 1):
    return _coerced(_SOFTMAX["Softmax"], x, axis)


@TF.register("Softmax", since=13)
def softmax(x, axis: int = -1):
    return _on_axis(_SOFTMAX["Softmax"], x, axis)


@TF.register("LogSoftmax", since=1)
def log_softmax_1(x, axis: int = 1):
    return _coerced(_SOFTMAX["LogSoftmax"], x, axis)


@TF.register("LogSoftmax", since=13)
def log_softmax(x, axis: int = -1):
    return _on_axis(_SOFTMAX["LogSoftmax"], x, axis)


@TF.register("Hardmax", since=1)
def hardmax_1(x, axis: int = 1):
    return _coerced(_SOFTMAX["Hardmax"], x, axis)


@TF.register("Hardmax", since=13)
def hardmax(x, axis: int = -1):
    return _on_axis(_SOFTMAX["Hardmax"], x, axis)
