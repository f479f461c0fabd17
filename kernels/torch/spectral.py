"""Spectral ops: DFT, STFT and the window functions (``torch.stft`` exports as STFT).

ONNX carries complex values as a trailing dim of 2 (real, imaginary); a real
signal has a trailing dim of 1. The kernels compute in complex128 with ``torch.fft``
(whose inverse is scaled by ``1/n`` as ONNX's) and round once to the input's type:
float32 transforms differ from the reference by more than its tolerance near zero.
"""

import math

import torch
from torch import Tensor

from kernels.torch import TORCH
from kernels.torch._util import onnx_dtype


def _complex(x: Tensor) -> Tensor:
    """The signal without its trailing dim, as a complex tensor."""
    real = x.select(-1, 0).to(torch.float64)
    imag = x.select(-1, 1).to(real.dtype) if x.shape[-1] == 2 else torch.zeros_like(real)
    return torch.complex(real, imag)


def _pairs(y: Tensor, dtype: torch.dtype) -> Tensor:
    """A complex tensor as ONNX's (real, imaginary) trailing dim."""
    return torch.stack([y.real, y.imag], -1).to(dtype)


def _dft(x: Tensor, length: int | None, axis: int, inverse: int, onesided: int) -> Tensor:
    rank = x.dim()
    axis = axis + rank if axis < 0 else axis
    signal = _complex(x)
    if inverse and onesided:  # the first n // 2 + 1 bins of a real signal's spectrum -> the real signal
        n = 2 * (signal.shape[axis] - 1) if length is None else length
        return torch.fft.irfft(signal, n, axis).unsqueeze(-1).to(x.dtype)
    n = signal.shape[axis] if length is None else length
    y = torch.fft.ifft(signal, n, axis) if inverse else torch.fft.fft(signal, n, axis)
    if onesided:
        y = y.narrow(axis, 0, n // 2 + 1)
    return _pairs(y, x.dtype)


@TORCH.register("DFT", since=20)
def dft(input: Tensor, dft_length: Tensor | None = None, axis: Tensor | None = None, inverse: int = 0,  # noqa: A002
        onesided: int = 0) -> Tensor:
    length = None if dft_length is None else int(dft_length.reshape(-1)[0].item())
    dim = -2 if axis is None else int(axis.reshape(-1)[0].item())
    return _dft(input, length, dim, inverse, onesided)


@TORCH.register("DFT", since=17)
def dft_17(input: Tensor, dft_length: Tensor | None = None, axis: int = 1, inverse: int = 0,  # noqa: A002
           onesided: int = 0) -> Tensor:
    length = None if dft_length is None else int(dft_length.reshape(-1)[0].item())
    return _dft(input, length, axis, inverse, onesided)


@TORCH.register("STFT", since=17)
def stft(signal: Tensor, frame_step: Tensor, window: Tensor | None = None, frame_length: Tensor | None = None,
         onesided: int = 1) -> Tensor:
    """Frames of ``frame_length`` every ``frame_step`` samples (no padding), windowed, transformed."""
    step = int(frame_step.reshape(-1)[0].item())
    if frame_length is not None:
        length = int(frame_length.reshape(-1)[0].item())
    else:
        assert window is not None, "STFT needs a window or a frame_length"
        length = window.shape[0]
    frames = _complex(signal).unfold(1, length, step)  # batch x frames x length
    if window is not None:
        frames = frames * window.to(frames.real.dtype)
    y = torch.fft.fft(frames, length, -1)
    if onesided and signal.shape[-1] == 1:
        y = y.narrow(-1, 0, length // 2 + 1)
    return _pairs(y, signal.dtype)


def _cosine_window(size: Tensor, periodic: int, coefficients: list[float], dtype: int) -> Tensor:
    """sum_k (-1)^k a_k cos(2 pi k n / N'), N' = size if periodic else size - 1 (float64, then cast)."""
    n = int(size.reshape(-1)[0].item())
    denominator = float(n if periodic else n - 1)
    index = torch.arange(n, dtype=torch.float64, device=size.device)
    out = torch.zeros(n, dtype=torch.float64, device=size.device)
    for k, a in enumerate(coefficients):
        sign = 1.0 if k % 2 == 0 else -1.0
        out = out + sign * a * torch.cos(2.0 * math.pi * k * index / denominator)
    return out.to(onnx_dtype(dtype))


@TORCH.register("HannWindow", since=17)
def hann_window(size: Tensor, output_datatype: int = 1, periodic: int = 1) -> Tensor:
    return _cosine_window(size, periodic, [0.5, 0.5], output_datatype)


@TORCH.register("HammingWindow", since=17)
def hamming_window(size: Tensor, output_datatype: int = 1, periodic: int = 1) -> Tensor:
    return _cosine_window(size, periodic, [25.0 / 46.0, 21.0 / 46.0], output_datatype)


@TORCH.register("BlackmanWindow", since=17)
def blackman_window(size: Tensor, output_datatype: int = 1, periodic: int = 1) -> Tensor:
    return _cosine_window(size, periodic, [0.42, 0.5, 0.08], output_datatype)
