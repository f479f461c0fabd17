"""Quantization ops: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, QLinearMatMul,
and the bit-level BitCast.

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


@TORCH.register("BitCast", since=26)
def bit_cast(input: Tensor, to: int) -> Tensor:  # noqa: A002
    return _reinterpret(input, onnx_dtype(to))


def _reinterpret(x: Tensor, dtype: torch.dtype) -> Tensor:
    """``x``'s bytes as ``dtype`` (same element size in ONNX BitCast).

    Eager only: TorchScript resolves ``Tensor.view`` with a dtype to the shape overload.
    """
    return x.contiguous().view(dtype)
