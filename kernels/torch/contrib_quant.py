"""onnxruntime's quantized contrib ops (domain ``com.microsoft``), as ``onnxruntime.quantization``
emits them in QOperator format: QLinearAdd, QLinearMul, QLinearGlobalAveragePool,
QLinearAveragePool, QLinearConcat, QLinearSigmoid, QLinearLeakyRelu, QLinearSoftmax,
QGemm, DynamicQuantizeMatMul and MatMulIntegerToFloat.

The numerics follow onnxruntime's CPU kernels, all in float32:

- Add / Mul:     y = round((a - za) * sa/sc + (b - zb) * sb/sc) + zc,  round((a - za)(b - zb) * sa*sb/sc) + zc
- lookup ops (Sigmoid, LeakyRelu, Concat): y = quantize(f(dequantize(x))) for every input code
- integer GEMMs: an exact int32 accumulator (plus the int32 bias) times a float32 multiplier
- pools and Softmax: in float, then quantized

Rounding is half to even (``torch.round``), and results saturate to the output type.
"""

import torch
from torch import Tensor

from kernels.torch import TORCH
from kernels.torch._util import int_bounds
from kernels.torch.nn import average_pool
from kernels.torch.quantize import dynamic_quantize_linear

C = "com.microsoft::"


def _zero(zero: Tensor | None, like: Tensor) -> Tensor:
    """A zero point as a float32 scalar (0 when omitted)."""
    if zero is None:
        return torch.zeros((), dtype=torch.float32, device=like.device)
    return zero.to(torch.float32).reshape(())


def _out_type(zero: Tensor | None, x: Tensor) -> torch.dtype:
    return x.dtype if zero is None else zero.dtype


def _saturate(y: Tensor, dtype: torch.dtype) -> Tensor:
    """Rounded float values clamped to ``dtype``'s range and cast."""
    lo, hi = int_bounds(dtype)
    return torch.clamp(y, float(lo), float(hi)).to(dtype)


def _dequantize(x: Tensor, scale: Tensor, zero: Tensor | None) -> Tensor:
    return (x.to(torch.float32) - _zero(zero, x)) * scale.to(torch.float32).reshape(())


def _quantize(y: Tensor, scale: Tensor, zero: Tensor | None, dtype: torch.dtype) -> Tensor:
    q = torch.round(y / scale.to(torch.float32).reshape(())) + _zero(zero, y)
    return _saturate(q, dtype)


@TORCH.register(C + "QLinearAdd", since=1)
def q_linear_add(
    a: Tensor,
    a_scale: Tensor,
    a_zero_point: Tensor | None,
    b: Tensor,
    b_scale: Tensor,
    b_zero_point: Tensor | None,
    c_scale: Tensor,
    c_zero_point: Tensor | None = None,
) -> Tensor:
    sc = c_scale.to(torch.float32).reshape(())
    ra = a_scale.to(torch.float32).reshape(()) / sc
    rb = b_scale.to(torch.float32).reshape(()) / sc
    y = (a.to(torch.float32) - _zero(a_zero_point, a)) * ra + (b.to(torch.float32) - _zero(b_zero_point, b)) * rb
    return _saturate(torch.round(y) + _zero(c_zero_point, a), _out_type(c_zero_point, a))


@TORCH.register(C + "QLinearMul", since=1)
def q_linear_mul(
    a: Tensor,
    a_scale: Tensor,
    a_zero_point: Tensor | None,
    b: Tensor,
    b_scale: Tensor,
    b_zero_point: Tensor | None,
    c_scale: Tensor,
    c_zero_point: Tensor | None = None,
) -> Tensor:
    ratio = a_scale.to(torch.float32).reshape(()) * b_scale.to(torch.float32).reshape(())
    ratio = ratio / c_scale.to(torch.float32).reshape(())
    product = (a.to(torch.float32) - _zero(a_zero_point, a)) * (b.to(torch.float32) - _zero(b_zero_point, b))
    return _saturate(torch.round(product * ratio) + _zero(c_zero_point, a), _out_type(c_zero_point, a))


@TORCH.register(C + "QLinearSigmoid", since=1)
def q_linear_sigmoid(
    x: Tensor, x_scale: Tensor, x_zero_point: Tensor | None, y_scale: Tensor, y_zero_point: Tensor | None = None
) -> Tensor:
    y = torch.sigmoid(_dequantize(x, x_scale, x_zero_point))
    return _quantize(y, y_scale, y_zero_point, _out_type(y_zero_point, x))


@TORCH.register(C + "QLinearLeakyRelu", since=1)
def q_linear_leaky_relu(
    x: Tensor,
    x_scale: Tensor,
    x_zero_point: Tensor | None,
    y_scale: Tensor,
    y_zero_point: Tensor | None = None,
    alpha: float = 0.01,
) -> Tensor:
    v = _dequantize(x, x_scale, x_zero_point)
    y = torch.where(v >= 0, v, v * alpha)
    return _quantize(y, y_scale, y_zero_point, _out_type(y_zero_point, x))


@TORCH.register(C + "QLinearSoftmax", since=1)
def q_linear_softmax(
    x: Tensor,
    x_scale: Tensor,
    x_zero_point: Tensor | None,
    y_scale: Tensor,
    y_zero_point: Tensor,
    axis: int = -1,
    opset: int = 13,
) -> Tensor:
    """Softmax over ``axis`` (opset >= 13) or over the rows of the 2-D coercion at ``axis`` (older)."""
    v = _dequantize(x, x_scale, x_zero_point)
    if opset >= 13:
        y = torch.softmax(v, axis)
    else:
        a = axis + x.dim() if axis < 0 else axis
        y = torch.softmax(v.reshape(list(x.shape[:a]) + [-1]), -1).reshape(x.shape)
    return _quantize(y, y_scale, y_zero_point, y_zero_point.dtype)


@TORCH.register(C + "QLinearConcat", since=1)
def q_linear_concat(y_scale: Tensor, y_zero_point: Tensor, inputs: list[Tensor], axis: int) -> Tensor:
    """``inputs`` holds (X, scale, zero point) triples; each X is requantized to Y's parameters."""
    parts: list[Tensor] = []
    for i in range(0, len(inputs), 3):
        v = _dequantize(inputs[i], inputs[i + 1], inputs[i + 2])
        parts.append(_quantize(v, y_scale, y_zero_point, y_zero_point.dtype))
    return torch.cat(parts, axis)


@TORCH.register(C + "QLinearGlobalAveragePool", since=1)
def q_linear_global_average_pool(
    x: Tensor, x_scale: Tensor, x_zero_point: Tensor, y_scale: Tensor, y_zero_point: Tensor, channels_last: int = 0
) -> Tensor:
    """The exact integer sum of each plane, minus the zero point times its size, requantized by
    the float32 multiplier ``x_scale / y_scale / size``."""
    spatial = list(range(1, x.dim() - 1)) if channels_last != 0 else list(range(2, x.dim()))
    size = 1
    for d in spatial:
        size *= x.shape[d]
    acc = torch.sum(x.to(torch.float64), spatial, keepdim=True) - x_zero_point.to(torch.float64).reshape(()) * size
    scale = x_scale.to(torch.float32).reshape(()) / y_scale.to(torch.float32).reshape(()) / float(size)
    y = torch.round(acc.to(torch.float32) * scale) + y_zero_point.to(torch.float32).reshape(())
    return _saturate(y, y_zero_point.dtype)


@TORCH.register(C + "QLinearAveragePool", since=1)
def q_linear_average_pool(
    x: Tensor,
    x_scale: Tensor,
    x_zero_point: Tensor | None,
    y_scale: Tensor,
    y_zero_point: Tensor | None = None,
    auto_pad: str = "NOTSET",
    ceil_mode: int = 0,
    channels_last: int = 0,
    count_include_pad: int = 0,
    kernel_shape: list[int] | None = None,
    pads: list[int] | None = None,
    strides: list[int] | None = None,
) -> Tensor:
    """The float AveragePool of the dequantized input, quantized (padding counts as real zero)."""
    v = _dequantize(x, x_scale, x_zero_point)
    if channels_last != 0:
        v = v.movedim(-1, 1)
    y = average_pool(v, auto_pad, ceil_mode, count_include_pad, None, kernel_shape, pads, strides)
    if channels_last != 0:
        y = y.movedim(1, -1)
    return _quantize(y, y_scale, y_zero_point, _out_type(y_zero_point, x))


def _centered(x: Tensor, zero: Tensor | None, columns: bool) -> Tensor:
    """Integer values minus their zero point in float64 (exact); a 1-D zero point of B is per column."""
    v = x.to(torch.float64)
    if zero is None:
        return v
    z = zero.to(torch.float64)
    return v - (z if columns and z.numel() > 1 else z.reshape(()))


@TORCH.register(C + "QGemm", since=1)
def q_gemm(
    a: Tensor,
    a_scale: Tensor,
    a_zero_point: Tensor,
    b: Tensor,
    b_scale: Tensor,
    b_zero_point: Tensor,
    c: Tensor | None = None,
    y_scale: Tensor | None = None,
    y_zero_point: Tensor | None = None,
    alpha: float = 1.0,
    transA: int = 0,  # noqa: N803
    transB: int = 0,  # noqa: N803
) -> Tensor:
    """int32 ``A' B' + C`` times ``alpha * a_scale * b_scale`` (per column of B), then quantized to
    ``y_scale`` / ``y_zero_point``; float32 output when ``y_scale`` is omitted."""
    am = _centered(a, a_zero_point, False)
    if transA != 0:
        am = am.t()
    bz = b_zero_point if transB == 0 else b_zero_point.reshape(-1, 1) if b_zero_point.numel() > 1 else b_zero_point
    bm = _centered(b, bz, True)
    if transB != 0:
        bm = bm.t()
    acc = torch.matmul(am, bm)
    if c is not None:
        acc = acc + c.to(torch.float64)
    scale = alpha * a_scale.to(torch.float32).reshape(()) * b_scale.to(torch.float32)
    if y_scale is None:
        return acc.to(torch.float32) * scale
    multiplier = scale / y_scale.to(torch.float32).reshape(())
    y = torch.round(acc.to(torch.float32) * multiplier) + _zero(y_zero_point, a)
    return _saturate(y, _out_type(y_zero_point, a))


def _integer_matmul_to_float(
    a: Tensor, b: Tensor, a_zero: Tensor | None, b_zero: Tensor | None, scale: Tensor, bias: Tensor | None
) -> Tensor:
    acc = torch.matmul(_centered(a, a_zero, False), _centered(b, b_zero, True)).to(torch.float32)
    y = acc * scale
    return y if bias is None else y + bias


@TORCH.register(C + "MatMulIntegerToFloat", since=1)
def mat_mul_integer_to_float(
    a: Tensor,
    b: Tensor,
    a_scale: Tensor,
    b_scale: Tensor,
    a_zero_point: Tensor | None = None,
    b_zero_point: Tensor | None = None,
    bias: Tensor | None = None,
) -> Tensor:
    scale = a_scale.to(torch.float32).reshape(()) * b_scale.to(torch.float32)
    return _integer_matmul_to_float(a, b, a_zero_point, b_zero_point, scale, bias)


@TORCH.register(C + "DynamicQuantizeMatMul", since=1)
def dynamic_quantize_mat_mul(
    a: Tensor, b: Tensor, b_scale: Tensor, b_zero_point: Tensor | None = None, bias: Tensor | None = None
) -> Tensor:
    """A quantized to uint8 as DynamicQuantizeLinear does, then MatMulIntegerToFloat."""
    aq, a_scale, a_zero = dynamic_quantize_linear(a)
    scale = a_scale.reshape(()) * b_scale.to(torch.float32)
    return _integer_matmul_to_float(aq, b, a_zero, b_zero_point, scale, bias)

