"""Linear quantization: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, MatMulInteger, QLinearMatMul,
ConvInteger, QLinearConv.

    QuantizeLinear:   y = clip(round_half_even(x / scale) + zero_point, qmin, qmax)
    DequantizeLinear: y = (x - zero_point) * scale

Scales and zero points are per tensor (a scalar or one element), per axis (1-D
along ``axis``) or blocked (``block_size`` > 0: the parameter has ``ceil(n /
block_size)`` entries on ``axis``, each repeated over its block). Integer
targets and float8 (e4m3fn, e5m2; saturating by clipping to the largest finite
value): TensorFlow has no CPU conversions for int4/int2, float4 and the fnuz
float8 types.
"""

from __future__ import annotations

import tensorflow as tf

from kernels.tf import TF
from kernels.tf._util import axis_of, rank, tf_dtype


def _broadcast(p: tf.Tensor, x: tf.Tensor, axis: int, block_size: int) -> tf.Tensor:
    """A scale or zero point shaped to broadcast against ``x``."""
    if p.shape.rank == 0 or (p.shape.num_elements() == 1):
        return tf.reshape(p, [])
    r = rank(x)
    axis = axis_of(axis, r)
    if block_size:
        return tf.repeat(p, block_size, axis=axis)[tuple(slice(None, x.shape[i]) for i in range(r))]
    return tf.reshape(p, [-1] + [1] * (r - 1 - axis))


def _range(dtype: tf.DType) -> tuple[int, int]:
    return int(dtype.min), int(dtype.max)


#: Float8 targets: the largest finite value a saturating conversion clips to.
_FLOAT8_MAX = {"float8_e4m3fn": 448.0, "float8_e5m2": 57344.0}

#: Types TensorFlow cannot convert to or from on CPU.
_UNSUPPORTED = ("int4", "uint4", "int2", "uint2", "float4_e2m1fn", "float8_e4m3fnuz", "float8_e5m2fnuz")


def _check_supported(dtype: tf.DType) -> None:
    if dtype.name in _UNSUPPORTED or not (dtype.is_integer or dtype.name in _FLOAT8_MAX):
        raise NotImplementedError(f"TensorFlow has no CPU conversion for quantized type {dtype.name}")


@TF.register("QuantizeLinear", since=10)
def quantize_linear(x, y_scale, y_zero_point=None, *, axis: int = 1, saturate: int = 1, block_size: int = 0,
                    output_dtype: int = 0, precision: int = 0):
    if y_zero_point is not None:
        dtype = y_zero_point.dtype
    else:
        dtype = tf_dtype(output_dtype) if output_dtype else tf.uint8
    _check_supported(dtype)
    compute = tf_dtype(precision) if precision else x.dtype
    scale = tf.cast(_broadcast(y_scale, x, axis, block_size), compute)
    if dtype.name in _FLOAT8_MAX:
        scaled = tf.cast(tf.cast(x, compute) / scale, tf.float32)
        if saturate:
            limit = _FLOAT8_MAX[dtype.name]
            scaled = tf.where(tf.math.is_nan(scaled), scaled, tf.clip_by_value(scaled, -limit, limit))
        return tf.cast(scaled, dtype)
    q = tf.round(tf.cast(x, compute) / scale)  # tf.round rounds half to even, as ONNX does
    q = tf.cast(q, tf.float32 if compute != tf.float64 else tf.float64)
    if y_zero_point is not None:
        q = q + tf.cast(_broadcast(y_zero_point, x, axis, block_size), q.dtype)
    low, high = _range(dtype)
    return tf.cast(tf.clip_by_value(q, low, high), dtype)


@TF.register("DequantizeLinear", since=10)
def dequantize_linear(x, x_scale, x_zero_point=None, *, axis: int = 1, block_size: int = 0, output_dtype: int = 0):
    out = tf_dtype(output_dtype) if output_dtype else x_scale.dtype
    _check_supported(x.dtype)
    scale = _broadcast(x_scale, x, axis, block_size)
    compute = tf.float32 if scale.dtype in (tf.float16, tf.bfloat16) else scale.dtype
    centered = tf.int32 if x.dtype.is_integer else tf.float32
    value = tf.cast(x, centered)
    if x_zero_point is not None:
        value = value - tf.cast(_broadcast(x_zero_point, x, axis, block_size), centered)
    return tf.cast(tf.cast(value, compute) * tf.cast(scale, compute), out)


@TF.register("DynamicQuantizeLinear", since=11)
def dynamic_quantize_linear(x, num_outputs: int = 3):
    x = tf.cast(x, tf.float32)
    high = tf.maximum(0.0, tf.reduce_max(x))
    low = tf.minimum(0.0, tf.reduce_min(x))
    scale = tf.where(tf.equal(high, low), 1.0, high - low) / 255.0
    zero_point = tf.round(tf.clip_by_value(-low / scale, 0.0, 255.0))
    y = tf.clip_by_value(tf.round(x / scale) + zero_point, 0.0, 255.0)
    return (tf.cast(y, tf.uint8), scale, tf.cast(zero_point, tf.uint8))[:max(1, num_outputs)]


def _centered(a: tf.Tensor, zero_point) -> tf.Tensor:
    a = tf.cast(a, tf.int32)
    return a if zero_point is None else a - tf.cast(zero_point, tf.int32)


def _row_zero_point(zero_point, a: tf.Tensor):
    """A per-row zero point of A ([M]) broadcast over A's columns."""
    if zero_point is None or zero_point.shape.rank == 0 or a.shape.rank is None:
        return zero_point
    return tf.reshape(zero_point, [-1, 1]) if zero_point.shape.num_elements() != 1 else tf.reshape(zero_point, [])


@TF.register("MatMulInteger", since=10)
def matmul_integer(a, b, a_zero_point=None, b_zero_point=None):
    return tf.matmul(_centered(a, _row_zero_point(a_zero_point, a)), _centered(b, b_zero_point))


@TF.register("QLinearMatMul", since=10)
def qlinear_matmul(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point=None):
    product = tf.matmul(_centered(a, _row_zero_point(a_zero_point, a)), _centered(b, b_zero_point))
    multiplier = a_scale * b_scale / y_scale  # in the scales' float32, as the reference does
    y = tf.cast(product, tf.float64) * tf.cast(multiplier, tf.float64)
    dtype = y_zero_point.dtype if y_zero_point is not None else a.dtype
    if y_zero_point is not None:
        y = y + tf.cast(y_zero_point, tf.float64)
    low, high = _range(dtype)
    return tf.cast(tf.clip_by_value(tf.round(y), low, high), dtype)


def _conv_centered(x, w, x_zero_point, w_zero_point, attrs) -> tf.Tensor:
    """The exact convolution of zero-point-centered integers, in float64 (8-bit products and their
    sums stay far below 2**53); a 1-D weight zero point is per output channel."""
    from kernels.tf.nn import conv

    xc = tf.cast(x, tf.float64)
    if x_zero_point is not None:
        xc = xc - tf.cast(tf.reshape(x_zero_point, []), tf.float64)
    wc = tf.cast(w, tf.float64)
    if w_zero_point is not None:
        z = tf.cast(w_zero_point, tf.float64)
        wc = wc - (tf.reshape(z, [-1] + [1] * (w.shape.rank - 1)) if z.shape.num_elements() != 1 else tf.reshape(z, []))
    return conv(xc, wc, None, **attrs)


@TF.register("ConvInteger", since=10)
def conv_integer(x, w, x_zero_point=None, w_zero_point=None, **attrs):
    return tf.cast(tf.round(_conv_centered(x, w, x_zero_point, w_zero_point, attrs)), tf.int32)


@TF.register("QLinearConv", since=10)
def qlinear_conv(x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point=None, b=None, **attrs):
    """The int32 accumulator (plus the int32 bias) requantized as onnxruntime does: times the float32
    multiplier ``x_scale * w_scale / y_scale`` (per output channel), rounded half to even."""
    acc = _conv_centered(x, w, x_zero_point, w_zero_point, attrs)
    channel = [1, -1] + [1] * (x.shape.rank - 2)
    if b is not None:
        acc = acc + tf.reshape(tf.cast(b, tf.float64), channel)
    multiplier = tf.cast(x_scale, tf.float32) * tf.cast(w_scale, tf.float32) / tf.cast(y_scale, tf.float32)
    multiplier = tf.reshape(multiplier, channel) if multiplier.shape.num_elements() != 1 else tf.reshape(multiplier, [])
    y = tf.round(tf.cast(acc, tf.float32) * multiplier)
    dtype = y_zero_point.dtype if y_zero_point is not None else x.dtype
    if y_zero_point is not None:
        y = y + tf.cast(tf.reshape(y_zero_point, []), tf.float32)
    low, high = _range(dtype)
    return tf.cast(tf.clip_by_value(y, low, high), dtype)
