"""Quantization ops: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, QLinearMatMul,
ConvInteger, QLinearConv, and the bit-level BitCast.

Scales and zero points are per tensor (one element), per axis (1-D along
``axis``) or per block (same rank as the input, ``block_size`` elements of
``axis`` per entry). Quantization rounds half to even and saturates to the
output type; integer types only (torch has no int4, and float8 saturation
differs).
"""

import torch
from torch import Tensor

from kernels.torch import TORCH
from kernels.torch._util import int_bounds, norm_axis, onnx_dtype
from kernels.torch.nn import conv


def _broadcast(p: Tensor, x: Tensor, axis: int, block_size: int) -> Tensor:
    """A scale or zero point shaped to broadcast against ``x``."""
    if p.numel() == 1 and block_size == 0:
        return p.reshape(())
    axis = norm_axis(axis, x.dim())
    if block_size > 0:
        return torch.repeat_interleave(p, block_size, axis).narrow(axis, 0, x.shape[axis])
    shape = [1] * x.dim()
    shape[axis] = -1
    return p.reshape(shape)


def _quantize(
    x: Tensor, scale: Tensor, zero: Tensor | None, dtype: torch.dtype, axis: int, block_size: int
) -> Tensor:
    lo, hi = int_bounds(dtype)
    s = _broadcast(scale, x, axis, block_size).to(torch.float32)
    q = torch.round(x.to(torch.float32) / s)
    if zero is not None:
        q = q + _broadcast(zero, x, axis, block_size).to(torch.float32)
    return torch.clamp(q, float(lo), float(hi)).to(dtype)


def _out_dtype(zero: Tensor | None, output_dtype: int) -> torch.dtype:
    if output_dtype != 0:
        return onnx_dtype(output_dtype)
    return torch.uint8 if zero is None else zero.dtype


@TORCH.register("QuantizeLinear", since=10)
def quantize_linear(
    x: Tensor,
    y_scale: Tensor,
    y_zero_point: Tensor | None = None,
    axis: int = 1,
    block_size: int = 0,
    output_dtype: int = 0,
    saturate: int = 1,
    precision: int = 0,
) -> Tensor:
    return _quantize(
        x, y_scale, y_zero_point, _out_dtype(y_zero_point, output_dtype), axis, block_size
    )


@TORCH.register("DequantizeLinear", since=10)
def dequantize_linear(
    x: Tensor,
    x_scale: Tensor,
    x_zero_point: Tensor | None = None,
    axis: int = 1,
    block_size: int = 0,
    output_dtype: int = 0,
) -> Tensor:
    values = x.to(torch.int32) if not x.is_floating_point() else x.to(torch.float32)
    if x_zero_point is not None:
        values = values - _broadcast(x_zero_point, x, axis, block_size).to(values.dtype)
    y = values.to(torch.float32) * _broadcast(x_scale, x, axis, block_size).to(torch.float32)
    return y.to(onnx_dtype(output_dtype) if output_dtype != 0 else x_scale.dtype)


@TORCH.register("DynamicQuantizeLinear", since=11)
def dynamic_quantize_linear(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    lo = torch.clamp(x.min(), max=0.0)
    hi = torch.clamp(x.max(), min=0.0)
    scale = (hi - lo) / 255.0
    zero = torch.clamp(torch.round(-lo / scale), 0.0, 255.0)
    y = torch.clamp(torch.round(x / scale) + zero, 0.0, 255.0)
    return y.to(torch.uint8), scale.to(torch.float32), zero.to(torch.uint8)


@TORCH.register("QLinearMatMul", since=10)
def q_linear_mat_mul(
    a: Tensor,
    a_scale: Tensor,
    a_zero_point: Tensor,
    b: Tensor,
    b_scale: Tensor,
    b_zero_point: Tensor,
    y_scale: Tensor,
    y_zero_point: Tensor,
) -> Tensor:
    a_real = dequantize_linear(a, a_scale, a_zero_point, 0 if a_scale.numel() > 1 else 1).to(
        torch.float64
    )
    b_real = dequantize_linear(b, b_scale, b_zero_point, 1 if b_scale.dim() == 1 else -1).to(
        torch.float64
    )
    y = torch.matmul(a_real, b_real).to(torch.float32)
    return _quantize(y, y_scale, y_zero_point, y_zero_point.dtype, 1, 0)


def _centered(x: Tensor, zero: Tensor | None, channel_axis: bool) -> Tensor:
    """Integer values minus their zero point, in float64 (exact: products and sums of
    8-bit values stay far below 2**53); a 1-D zero point of a weight is per output channel."""
    v = x.to(torch.float64)
    if zero is None:
        return v
    z = zero.to(torch.float64)
    if channel_axis and z.numel() > 1:
        z = z.reshape([-1] + [1] * (x.dim() - 1))
    else:
        z = z.reshape(())
    return v - z


@TORCH.register("ConvInteger", since=10)
def conv_integer(
    x: Tensor,
    w: Tensor,
    x_zero_point: Tensor | None = None,
    w_zero_point: Tensor | None = None,
    auto_pad: str = "NOTSET",
    dilations: list[int] | None = None,
    group: int = 1,
    kernel_shape: list[int] | None = None,
    pads: list[int] | None = None,
    strides: list[int] | None = None,
) -> Tensor:
    """Exact int32 convolution of zero-point-centered 8-bit inputs (padding holds the zero point)."""
    acc = conv(_centered(x, x_zero_point, False), _centered(w, w_zero_point, True), None,
               auto_pad, dilations, group, kernel_shape, pads, strides)
    return torch.round(acc).to(torch.int32)


@TORCH.register("QLinearConv", since=10)
def q_linear_conv(
    x: Tensor,
    x_scale: Tensor,
    x_zero_point: Tensor,
    w: Tensor,
    w_scale: Tensor,
    w_zero_point: Tensor,
    y_scale: Tensor,
    y_zero_point: Tensor,
    b: Tensor | None = None,
    auto_pad: str = "NOTSET",
    dilations: list[int] | None = None,
    group: int = 1,
    kernel_shape: list[int] | None = None,
    pads: list[int] | None = None,
    strides: list[int] | None = None,
) -> Tensor:
    """The int32 accumulator (plus the int32 bias) requantized as onnxruntime does: times the
    float32 multiplier ``x_scale * w_scale / y_scale`` (per output channel), rounded half to even."""
    acc = conv_integer(x, w, x_zero_point, w_zero_point, auto_pad, dilations, group, kernel_shape, pads, strides)
    acc = acc.to(torch.float64)
    shape = [1, -1] + [1] * (x.dim() - 2)
    if b is not None:
        acc = acc + b.to(torch.float64).reshape(shape)
    multiplier = (x_scale.to(torch.float32) * w_scale.to(torch.float32) / y_scale.to(torch.float32))
    multiplier = multiplier.reshape(shape) if multiplier.numel() > 1 else multiplier.reshape(())
    y = torch.round(acc.to(torch.float32) * multiplier) + y_zero_point.to(torch.float32).reshape(())
    lo, hi = int_bounds(y_zero_point.dtype)
    return torch.clamp(y, float(lo), float(hi)).to(y_zero_point.dtype)


@TORCH.register("BitCast", since=26)
def bit_cast(input: Tensor, to: int) -> Tensor:  # noqa: A002
    return _reinterpret(input, onnx_dtype(to))


def _reinterpret(x: Tensor, dtype: torch.dtype) -> Tensor:
    """``x``'s bytes as ``dtype`` (same element size in ONNX BitCast).

    Eager code uses ``Tensor.view(dtype)``. TorchScript resolves ``view`` with a
    dtype to the shape overload, so scripted code goes through the bit pattern
    as an int64: integer casts wrap (two's complement) and float fields are
    computed exactly in float64 (NaN payloads become the quiet NaN).
    """
    if not torch.jit.is_scripting():
        return x.contiguous().view(dtype)
    if x.dtype == dtype:
        return x
    bits = _float_bits(x) if x.is_floating_point() else x.to(torch.int64)
    if _is_float(dtype):
        width = _float_format(dtype)[2]
        return _bits_float(bits & ((1 << width) - 1) if width < 64 else bits, dtype)
    return bits.to(dtype)  # integer casts wrap


def _is_float(dtype: torch.dtype) -> bool:
    return dtype == torch.float16 or dtype == torch.bfloat16 or dtype == torch.float32 or dtype == torch.float64


def _float_format(dtype: torch.dtype) -> tuple[int, int, int]:
    """(exponent bits, mantissa bits, total bits) of a float dtype."""
    if dtype == torch.float64:
        return 11, 52, 64
    if dtype == torch.float16:
        return 5, 10, 16
    if dtype == torch.bfloat16:
        return 8, 7, 16
    return 8, 23, 32


def _float_bits(x: Tensor) -> Tensor:
    """The IEEE bit pattern of a float tensor as int64 (the sign bit as in a signed integer of that width)."""
    e_bits, m_bits, width = _float_format(x.dtype)
    bias = (1 << (e_bits - 1)) - 1
    v = x.to(torch.float64)
    a = torch.abs(v)
    m, e = torch.frexp(a)  # a = m * 2**e, m in [0.5, 1)
    biased = e.to(torch.int64) - 1 + bias
    normal_m = ((m * 2.0 - 1.0) * float(2**m_bits)).to(torch.int64)
    sub_m = (a * (2.0 ** (bias - 1)) * float(2**m_bits)).to(torch.int64)  # two steps: 2**1074 overflows
    normal = (biased > 0) & (a > 0)
    mant = torch.where(normal, normal_m, sub_m)
    expo = torch.where(normal, biased, torch.zeros_like(biased))
    top = (1 << e_bits) - 1
    expo = torch.where(torch.isfinite(v), expo, torch.full_like(expo, top))
    mant = torch.where(torch.isnan(v), torch.full_like(mant, 1 << (m_bits - 1)), torch.where(torch.isinf(v), torch.zeros_like(mant), mant))
    bits = (expo << m_bits) | mant
    negative = torch.signbit(v)
    return torch.where(negative, bits - (1 << (width - 1)) if width < 64 else bits | (-9223372036854775807 - 1), bits)


def _bits_float(bits: Tensor, dtype: torch.dtype) -> Tensor:
    """A float tensor of ``dtype`` from IEEE bit patterns held in int64."""
    e_bits, m_bits, width = _float_format(dtype)
    bias = (1 << (e_bits - 1)) - 1
    negative = bits < 0 if width == 64 else ((bits >> (width - 1)) & 1) == 1
    expo = (bits >> m_bits) & ((1 << e_bits) - 1)
    mant = (bits & ((1 << m_bits) - 1)).to(torch.float64)
    scale = torch.pow(torch.full_like(mant, 2.0), (expo - bias).to(torch.float64))
    normal = (1.0 + mant / float(2**m_bits)) * scale
    subnormal = mant * (2.0 ** (1 - bias - m_bits))
    v = torch.where(expo == 0, subnormal, normal)
    top = (1 << e_bits) - 1
    special = torch.where(mant == 0, torch.full_like(v, float("inf")), torch.full_like(v, float("nan")))
    v = torch.where(expo == top, special, v)
    return torch.where(negative, -v, v).to(dtype)
