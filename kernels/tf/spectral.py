"""Spectral ops: DFT, STFT and the window functions (``torch.stft`` exports as STFT).

ONNX carries complex values as a trailing dim of 2 (real, imaginary); a real
signal has a trailing dim of 1. Transforms run in complex128 with ``tf.signal``
(whose inverse is scaled by ``1/n`` as ONNX's) and round once to the input's
type. ``tf.signal`` transforms the innermost axis, so the DFT axis is moved there
and back. Transform lengths, steps and axes must be known when tracing.
"""

from __future__ import annotations

import math

import tensorflow as tf

from kernels.tf import TF
from kernels.tf._util import static_ints, tf_dtype


def _complex(x: tf.Tensor) -> tf.Tensor:
    """The signal without its trailing dim, as complex128."""
    real = tf.cast(x[..., 0], tf.float64)
    imag = tf.cast(x[..., 1], tf.float64) if x.shape[-1] == 2 else tf.zeros_like(real)
    return tf.complex(real, imag)


def _pairs(y: tf.Tensor, dtype: tf.DType) -> tf.Tensor:
    """A complex tensor as ONNX's (real, imaginary) trailing dim."""
    return tf.cast(tf.stack([tf.math.real(y), tf.math.imag(y)], -1), dtype)


def _one(t: tf.Tensor | None, what: str) -> int | None:
    """The single value of a scalar or one-element input, which must be known when tracing."""
    return None if t is None else static_ints(t, what)[0]


def _fit(s: tf.Tensor, n: int) -> tf.Tensor:
    """``s`` cut or zero-padded to ``n`` on its last axis."""
    size = s.shape[-1]
    if size is not None and size >= n:
        return s[..., :n]
    pad = n - size if size is not None else tf.maximum(n - tf.shape(s)[-1], 0)
    padded = tf.concat([s, tf.zeros(tf.concat([tf.shape(s)[:-1], [pad]], 0), s.dtype)], -1)
    return padded[..., :n]


def _dft(x: tf.Tensor, length: int | None, axis: int, inverse: int, onesided: int) -> tf.Tensor:
    r = x.shape.rank
    axis = axis + r if axis < 0 else axis
    perm = [d for d in range(r - 1) if d != axis] + [axis]
    back = [perm.index(d) for d in range(r - 1)]
    s = tf.transpose(_complex(x), perm)
    if inverse and onesided:  # the first n // 2 + 1 bins of a real signal's spectrum -> the real signal
        n = 2 * (s.shape[-1] - 1) if length is None else length
        y = tf.signal.irfft(s, [n])
        return tf.cast(tf.expand_dims(tf.transpose(y, back), -1), x.dtype)
    n = s.shape[-1] if length is None else length
    s = _fit(s, n)
    y = tf.signal.ifft(s) if inverse else tf.signal.fft(s)
    if onesided:
        y = y[..., : n // 2 + 1]
    return _pairs(tf.transpose(y, back), x.dtype)


@TF.register("DFT", since=20)
def dft(input, dft_length=None, axis=None, *, inverse: int = 0, onesided: int = 0):  # noqa: A002
    dim = -2 if axis is None else _one(axis, "DFT axis")
    return _dft(input, _one(dft_length, "dft_length"), dim, inverse, onesided)


@TF.register("DFT", since=17)
def dft_17(input, dft_length=None, *, axis: int = 1, inverse: int = 0, onesided: int = 0):  # noqa: A002
    return _dft(input, _one(dft_length, "dft_length"), axis, inverse, onesided)


@TF.register("STFT", since=17)
def stft(signal, frame_step, window=None, frame_length=None, *, onesided: int = 1):
    """Frames of ``frame_length`` every ``frame_step`` samples (no padding), windowed, transformed."""
    step = _one(frame_step, "STFT frame_step")
    length = _one(frame_length, "STFT frame_length")
    if length is None:
        if window is None or window.shape[0] is None:
            raise NotImplementedError("STFT needs a frame_length or a window of known size")
        length = int(window.shape[0])
    frames = tf.signal.frame(_complex(signal), length, step, pad_end=False, axis=1)  # batch x frames x length
    if window is not None:
        frames = frames * tf.cast(tf.cast(window, tf.float64), tf.complex128)
    y = tf.signal.fft(frames)
    if onesided and signal.shape[-1] == 1:
        y = y[..., : length // 2 + 1]
    return _pairs(y, signal.dtype)


def _cosine_window(size, periodic: int, coefficients: list[float], dtype: int) -> tf.Tensor:
    """sum_k (-1)^k a_k cos(2 pi k n / N'), N' = size if periodic else size - 1 (float64, then cast)."""
    n = tf.cast(tf.reshape(size, []), tf.int64)
    denominator = tf.cast(n if periodic else n - 1, tf.float64)
    index = tf.cast(tf.range(n), tf.float64)
    out = tf.zeros_like(index)
    for k, a in enumerate(coefficients):
        sign = 1.0 if k % 2 == 0 else -1.0
        out = out + sign * a * tf.cos(2.0 * math.pi * k * index / denominator)
    return tf.cast(out, tf_dtype(dtype))


@TF.register("HannWindow", since=17)
def hann_window(size, *, output_datatype: int = 1, periodic: int = 1):
    return _cosine_window(size, periodic, [0.5, 0.5], output_datatype)


@TF.register("HammingWindow", since=17)
def hamming_window(size, *, output_datatype: int = 1, periodic: int = 1):
    return _cosine_window(size, periodic, [25.0 / 46.0, 21.0 / 46.0], output_datatype)


@TF.register("BlackmanWindow", since=17)
def blackman_window(size, *, output_datatype: int = 1, periodic: int = 1):
    return _cosine_window(size, periodic, [0.42, 0.5, 0.08], output_datatype)
