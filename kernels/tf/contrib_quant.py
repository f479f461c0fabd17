"""onnxruntime's quantized contrib ops (domain ``com.microsoft``), as ``onnxruntime.quantization``
emits them in QOperator format: QLinearAdd, QLinearMul, QLinearGlobalAveragePool,
QLinearAveragePool, QLinearConcat, QLinearSigmoid, QLinearLeakyRelu, QLinearSoftmax,
QGemm, DynamicQuantizeMatMul and MatMulIntegerToFloat.

The numerics follow onnxruntime's CPU kernels (the torch family ``kernels.torch.contrib_quant``
documents them), all in float32 with exact integer accumulators: ``tf.round`` rounds half to
even as onnxruntime does, and results saturate to the output type.
"""

from __future__ import annotations

import tensorflow as tf

from kernels.tf import TF
from kernels.tf._util import rank
from kernels.tf.quant import dynamic_quantize_linear

C = "com.microsoft::"


def _scalar(t) -> tf.Tensor:
    return tf.reshape(tf.cast(t, tf.float32), [])


def _zero(zero) -> tf.Tensor:
    return tf.constant(0.0) if zero is None else _scalar(zero)


def _saturate(y: tf.Tensor, dtype: tf.DType) -> tf.Tensor:
    return tf.cast(tf.clip_by_value(y, float(dtype.min), float(dtype.max)), dtype)


def _dequantize(x, scale, zero) -> tf.Tensor:
    return (tf.cast(x, tf.float32) - _zero(zero)) * _scalar(scale)


def _quantize(y, scale, zero, dtype: tf.DType) -> tf.Tensor:
    return _saturate(tf.round(y / _scalar(scale)) + _zero(zero), dtype)


def _out_type(zero, x) -> tf.DType:
    return x.dtype if zero is None else zero.dtype


@TF.register(C + "QLinearAdd", since=1)
def qlinear_add(a, a_scale, a_zero_point, b, b_scale, b_zero_point, c_scale, c_zero_point=None):
    ra = _scalar(a_scale) / _scalar(c_scale)
    rb = _scalar(b_scale) / _scalar(c_scale)
    y = (tf.cast(a, tf.float32) - _zero(a_zero_point)) * ra + (tf.cast(b, tf.float32) - _zero(b_zero_point)) * rb
    return _saturate(tf.round(y) + _zero(c_zero_point), _out_type(c_zero_point, a))


@TF.register(C + "QLinearMul", since=1)
def qlinear_mul(a, a_scale, a_zero_point, b, b_scale, b_zero_point, c_scale, c_zero_point=None):
    ratio = _scalar(a_scale) * _scalar(b_scale) / _scalar(c_scale)
    product = (tf.cast(a, tf.float32) - _zero(a_zero_point)) * (tf.cast(b, tf.float32) - _zero(b_zero_point))
    return _saturate(tf.round(product * ratio) + _zero(c_zero_point), _out_type(c_zero_point, a))


@TF.register(C + "QLinearSigmoid", since=1)
def qlinear_sigmoid(x, x_scale, x_zero_point, y_scale, y_zero_point=None):
    y = tf.sigmoid(_dequantize(x, x_scale, x_zero_point))
    return _quantize(y, y_scale, y_zero_point, _out_type(y_zero_point, x))


@TF.register(C + "QLinearLeakyRelu", since=1)
def qlinear_leaky_relu(x, x_scale, x_zero_point, y_scale, y_zero_point=None, *, alpha: float = 0.01):
    v = _dequantize(x, x_scale, x_zero_point)
    y = tf.where(v >= 0, v, v * alpha)
    return _quantize(y, y_scale, y_zero_point, _out_type(y_zero_point, x))


@TF.register(C + "QLinearSoftmax", since=1)
def qlinear_softmax(x, x_scale, x_zero_point, y_scale, y_zero_point, *, axis: int = -1, opset: int = 13):
    """Softmax over ``axis`` (opset >= 13) or over the rows of the 2-D coercion at ``axis`` (older)."""
    v = _dequantize(x, x_scale, x_zero_point)
    if opset >= 13:
        y = tf.nn.softmax(v, axis=axis)
    else:
        a = axis % rank(x)
        shape = tf.shape(v)
        rows = tf.concat([shape[:a], [-1]], 0)
        y = tf.reshape(tf.nn.softmax(tf.reshape(v, rows), axis=-1), shape)
    return _quantize(y, y_scale, y_zero_point, y_zero_point.dtype)


@TF.register(C + "QLinearConcat", since=1)
def qlinear_concat(y_scale, y_zero_point, inputs, *, axis: int):
    """``inputs`` holds (X, scale, zero point) triples; each X is requantized to Y's parameters."""
    parts = [_quantize(_dequantize(inputs[i], inputs[i + 1], inputs[i + 2]), y_scale, y_zero_point, y_zero_point.dtype)
             for i in range(0, len(inputs), 3)]
    return tf.concat(parts, axis)


@TF.register(C + "QLinearGlobalAveragePool", since=1)
def qlinear_global_average_pool(x, x_scale, x_zero_point, y_scale, y_zero_point, *, channels_last: int = 0):
    """The exact integer sum of each plane, minus the zero point times its size, requantized by
    the float32 multiplier ``x_scale / y_scale / size``."""
    r = rank(x)
    axes = list(range(1, r - 1)) if channels_last else list(range(2, r))
    shape = tf.shape(x)
    size = tf.reduce_prod(tf.gather(shape, axes))
    acc = tf.reduce_sum(tf.cast(x, tf.int32), axes, keepdims=True) - tf.cast(tf.reshape(x_zero_point, []), tf.int32) * size
    scale = _scalar(x_scale) / _scalar(y_scale) / tf.cast(size, tf.float32)
    return _saturate(tf.round(tf.cast(acc, tf.float32) * scale) + _scalar(y_zero_point), y_zero_point.dtype)


@TF.register(C + "QLinearAveragePool", since=1)
def qlinear_average_pool(x, x_scale, x_zero_point, y_scale, y_zero_point=None, *, kernel_shape,
                         auto_pad: str = "NOTSET", ceil_mode: int = 0, channels_last: int = 0,
                         count_include_pad: int = 0, pads=None, strides=None):
    """The float AveragePool of the dequantized input, quantized (padding counts as real zero)."""
    from kernels.tf._util import to_channels_first, to_channels_last
    from kernels.tf.nn import average_pool_channels_last

    v = _dequantize(x, x_scale, x_zero_point)
    if not channels_last:
        v = to_channels_last(v)
    y = average_pool_channels_last(v, kernel_shape=kernel_shape, auto_pad=auto_pad, ceil_mode=ceil_mode,
                                   count_include_pad=count_include_pad, pads=pads, strides=strides)
    if not channels_last:
        y = to_channels_first(y)
    return _quantize(y, y_scale, y_zero_point, _out_type(y_zero_point, x))


def _centered(x, zero, columns: bool) -> tf.Tensor:
    """Integer values minus their zero point, in float64 (exact for 8-bit products and sums)."""
    v = tf.cast(x, tf.float64)
    if zero is None:
        return v
    z = tf.cast(zero, tf.float64)
    if not (columns and z.shape.num_elements() != 1):
        z = tf.reshape(z, [])
    return v - z


@TF.register(C + "QGemm", since=1)
def qgemm(a, a_scale, a_zero_point, b, b_scale, b_zero_point, c=None, y_scale=None, y_zero_point=None, *,
          alpha: float = 1.0, transA: int = 0, transB: int = 0):  # noqa: N803
    """int32 ``A' B' + C`` times ``alpha * a_scale * b_scale`` (per column of B), then quantized to
    ``y_scale`` / ``y_zero_point``; float32 output when ``y_scale`` is omitted."""
    bz = b_zero_point
    if transB and bz.shape.num_elements() != 1:
        bz = tf.reshape(bz, [-1, 1])
    acc = tf.matmul(_centered(a, a_zero_point, False), _centered(b, bz, True),
                    transpose_a=bool(transA), transpose_b=bool(transB))
    if c is not None:
        acc = acc + tf.cast(c, tf.float64)
    scale = alpha * _scalar(a_scale) * tf.cast(b_scale, tf.float32)
    if y_scale is None:
        return tf.cast(acc, tf.float32) * scale
    y = tf.round(tf.cast(acc, tf.float32) * (scale / _scalar(y_scale))) + _zero(y_zero_point)
    return _saturate(y, _out_type(y_zero_point, a))


def _integer_matmul_to_float(a, b, a_zero, b_zero, scale, bias) -> tf.Tensor:
    y = tf.cast(tf.matmul(_centered(a, a_zero, False), _centered(b, b_zero, True)), tf.float32) * scale
    return y if bias is None else y + bias


@TF.register(C + "MatMulIntegerToFloat", since=1)
def matmul_integer_to_float(a, b, a_scale, b_scale, a_zero_point=None, b_zero_point=None, bias=None):
    scale = _scalar(a_scale) * tf.cast(b_scale, tf.float32)
    return _integer_matmul_to_float(a, b, a_zero_point, b_zero_point, scale, bias)


@TF.register(C + "DynamicQuantizeMatMul", since=1)
def dynamic_quantize_matmul(a, b, b_scale, b_zero_point=None, bias=None):
    """A quantized to uint8 as DynamicQuantizeLinear does, then MatMulIntegerToFloat."""
    aq, a_scale, a_zero = dynamic_quantize_linear(a)
    scale = _scalar(a_scale) * tf.cast(b_scale, tf.float32)
    return _integer_matmul_to_float(aq, b, a_zero, b_zero_point, scale, bias)
