"""Helpers shared by the torch kernel families (scriptable, device-agnostic)."""

import torch
from torch import Tensor


def onnx_dtype(code: int) -> torch.dtype:
    """The torch dtype of an ONNX ``TensorProto.DataType`` code."""
    if code == 1:
        return torch.float32
    if code == 2:
        return torch.uint8
    if code == 3:
        return torch.int8
    if code == 4:
        return torch.uint16
    if code == 5:
        return torch.int16
    if code == 6:
        return torch.int32
    if code == 7:
        return torch.int64
    if code == 9:
        return torch.bool
    if code == 10:
        return torch.float16
    if code == 11:
        return torch.float64
    if code == 12:
        return torch.uint32
    if code == 13:
        return torch.uint64
    if code == 14:
        return torch.complex64
    if code == 15:
        return torch.complex128
    if code == 16:
        return torch.bfloat16
    if code == 17:
        return torch.float8_e4m3fn
    if code == 18:
        return torch.float8_e4m3fnuz
    if code == 19:
        return torch.float8_e5m2
    if code == 20:
        return torch.float8_e5m2fnuz
    raise RuntimeError("ONNX data type " + str(code) + " has no torch equivalent")


def norm_axis(axis: int, rank: int) -> int:
    """``axis`` in ``[0, rank)``; ONNX counts negative axes from the end."""
    return axis + rank if axis < 0 else axis


def norm_axes(axes: list[int], rank: int) -> list[int]:
    """Every axis of ``axes`` normalised with :func:`norm_axis`."""
    return [norm_axis(a, rank) for a in axes]


def ints(t: Tensor) -> list[int]:
    """A 1-D integer tensor (a shape, axes, pads) as a Python list."""
    out: list[int] = t.to(torch.int64).reshape(-1).tolist()
    return out


def floats(t: Tensor) -> list[float]:
    """A 1-D tensor as a list of Python floats."""
    out: list[float] = t.to(torch.float64).reshape(-1).tolist()
    return out


def is_float(t: Tensor) -> bool:
    """True for floating-point tensors (where NaN and fractional results exist)."""
    return t.is_floating_point()


def int_bounds(dtype: torch.dtype) -> tuple[int, int]:
    """The smallest and largest value of an integer (or bool) dtype."""
    if dtype == torch.bool:
        return 0, 1
    if dtype == torch.uint8:
        return 0, 255
    if dtype == torch.int8:
        return -128, 127
    if dtype == torch.int16:
        return -32768, 32767
    if dtype == torch.uint16:
        return 0, 65535
    if dtype == torch.uint32:
        return 0, 4294967295
    if dtype == torch.int32:
        return -2147483648, 2147483647
    return -9223372036854775807 - 1, 9223372036854775807


def wide_unsigned(t: Tensor) -> bool:
    """uint16/32/64: dtypes for which torch CPU has storage and casts but little arithmetic."""
    return t.dtype == torch.uint16 or t.dtype == torch.uint32 or t.dtype == torch.uint64


def to_signed(t: Tensor) -> Tensor:
    """A wide unsigned tensor in int64 for exact arithmetic (others unchanged).

    uint16/32 values convert exactly; uint64 converts modulo 2**64 (the bits are
    kept: torch's casts wrap, and ``Tensor.view(dtype)`` is not scriptable),
    which keeps ``+ - *`` and bitwise results exact modulo 2**64 (and ``/ %``
    exact below 2**63).
    """
    if wide_unsigned(t):
        return t.to(torch.int64)
    return t


def from_signed(t: Tensor, dtype: torch.dtype) -> Tensor:
    """The inverse of :func:`to_signed` (wraps modulo the unsigned range)."""
    return t.to(dtype)


def order_key(t: Tensor) -> Tensor:
    """An int64 tensor ordered as ``t`` (uint64: the sign bit flipped)."""
    if t.dtype == torch.uint64:
        return torch.bitwise_xor(t.to(torch.int64), -9223372036854775807 - 1)
    return to_signed(t)
