"""Patch ops: Col2Im (18), MaxUnpool (11), DeformConv (19).

- Col2Im sums every column entry into the image pixel it came from: the pixel of
  block offset ``k`` in patch ``l`` along dim ``d`` is ``l*stride + k*dilation -
  pad_begin`` (in tensors: image and block shapes may be run-time values), and
  one ``unsorted_segment_sum`` adds them up (entries that land in the padding go to
  a spare segment that is dropped).
- MaxUnpool writes each value at its MaxPool index, a flat index into the whole
  ``[N, C, *spatial]`` output, into zeros; a larger ``output_shape`` pads zeros
  after (onnx's reference; onnxruntime disagrees).
- DeformConv (2-D) samples the input bilinearly at each kernel tap moved by its
  learned offset (a corner outside the image counts 0, as in torchvision and
  onnx's reference), scales by the optional mask, and contracts the samples
  with the grouped weights in one einsum.
"""

from __future__ import annotations

import itertools

import numpy as np
import tensorflow as tf

from kernels.tf import TF
from kernels.tf._util import dim, rank


def _col2im_segments(image: tf.Tensor, block: tf.Tensor, strides: list[int], dilations: list[int],
                     pads: list[int]) -> tf.Tensor:
    """Flat image position of each (block offset, patch) entry [K, L]; ``prod(image)`` where it is padding.

    ``image`` and ``block`` are int64 vectors (run-time values through a SavedModel signature).
    """
    n = len(strides)
    strides64, dilations64 = tf.constant(strides, tf.int64), tf.constant(dilations, tf.int64)
    begin, end = tf.constant(pads[:n], tf.int64), tf.constant(pads[n:], tf.int64)
    grid = (image + begin + end - dilations64 * (block - 1) - 1) // strides64 + 1
    offsets = tf.unravel_index(tf.range(tf.reduce_prod(block)), block)  # [n, K]
    patches = tf.unravel_index(tf.range(tf.reduce_prod(grid)), grid)  # [n, L]
    pos = (patches[:, tf.newaxis, :] * strides64[:, None, None] + offsets[:, :, tf.newaxis] * dilations64[:, None, None]
           - begin[:, None, None])  # [n, K, L]
    inside = tf.reduce_all((pos >= 0) & (pos < image[:, None, None]), 0)
    place = tf.math.cumprod(image, reverse=True, exclusive=True)
    flat = tf.reduce_sum(pos * place[:, None, None], 0)
    return tf.where(inside, flat, tf.reduce_prod(image))


@TF.register("Col2Im", since=18)
def col2im(x, image_shape, block_shape, *, dilations=None, pads=None, strides=None):
    image, block = tf.cast(tf.reshape(image_shape, [-1]), tf.int64), tf.cast(tf.reshape(block_shape, [-1]), tf.int64)
    n = image_shape.shape[0]
    if n is None:
        raise ValueError("Col2Im needs the length of image_shape while tracing")
    dilations, strides = list(dilations or [1] * n), list(strides or [1] * n)
    pads = list(pads or [0] * 2 * n)
    segments = _col2im_segments(image, block, strides, dilations, pads)
    size = tf.reduce_prod(image)
    batch, channels = tf.shape(x, out_type=tf.int64)[0], tf.shape(x, out_type=tf.int64)[1] // tf.reduce_prod(block)
    cols = tf.reshape(x, tf.stack([batch * channels, -1]))  # [N*C, K*L]
    summed = tf.math.unsorted_segment_sum(tf.transpose(cols), tf.reshape(segments, [-1]), size + 1)[:size]
    return tf.reshape(tf.transpose(summed), tf.concat([tf.stack([batch, channels]), image], 0))


@TF.register("MaxUnpool", since=11)
def max_unpool(x, indices, output_shape=None, *, kernel_shape, pads=None, strides=None):
    n = rank(x) - 2
    strides, pads = list(strides or [1] * n), list(pads or [0] * 2 * n)
    spatial = [(dim(x, 2 + d) - 1) * strides[d] + kernel_shape[d] - pads[d] - pads[n + d] for d in range(n)]
    shape = tf.cast(tf.stack([dim(x, 0), dim(x, 1), *spatial]), tf.int64)
    flat = tf.scatter_nd(tf.reshape(tf.cast(indices, tf.int64), [-1, 1]), tf.reshape(x, [-1]),
                         tf.reduce_prod(shape)[tf.newaxis])
    y = tf.reshape(flat, shape)
    if output_shape is None:
        return y
    extra = tf.cast(output_shape, tf.int64) - shape  # as onnx's reference: zeros after the inferred shape
    return tf.pad(y, tf.stack([tf.zeros_like(extra), extra], 1))


def _bilinear(x: tf.Tensor, ys: tf.Tensor, xs: tf.Tensor) -> tf.Tensor:
    """``x`` [N, G, Cg, H, W] sampled at (ys, xs) [N, G, P]: [N, G, Cg, P], 0 for corners outside."""
    h, w = dim(x, 3), dim(x, 4)
    flat = tf.reshape(x, tf.stack([dim(x, 0), dim(x, 1), dim(x, 2), h * w]))
    y0, x0 = tf.floor(ys), tf.floor(xs)
    out = 0.0
    for dy, dx in itertools.product((0, 1), (0, 1)):
        yc, xc = y0 + dy, x0 + dx
        weight = (1 - tf.abs(ys - yc)) * (1 - tf.abs(xs - xc))
        inside = (yc >= 0) & (yc < tf.cast(h, ys.dtype)) & (xc >= 0) & (xc < tf.cast(w, xs.dtype))
        index = tf.cast(tf.clip_by_value(yc, 0, tf.cast(h - 1, ys.dtype)) * tf.cast(w, ys.dtype)
                        + tf.clip_by_value(xc, 0, tf.cast(w - 1, xs.dtype)), tf.int32)
        values = tf.gather(flat, index, axis=3, batch_dims=2)
        out += values * tf.where(inside, weight, tf.zeros_like(weight))[:, :, tf.newaxis]
    return out


@TF.register("DeformConv", since=19)
def deform_conv(x, w, offset, b=None, mask=None, *, dilations=None, group: int = 1, kernel_shape=None,
                offset_group: int = 1, pads=None, strides=None):
    if rank(x) != 4:
        raise NotImplementedError("DeformConv is implemented for 2-D inputs only")
    kh, kw = [int(k) for k in (kernel_shape or w.shape[2:])]
    sh, sw = [int(s) for s in (strides or [1, 1])]
    dh, dw = [int(d) for d in (dilations or [1, 1])]
    pads = [int(p) for p in (pads or [0, 0, 0, 0])]
    n, c, oh, ow = dim(x, 0), x.shape[1], dim(offset, 2), dim(offset, 3)
    k, g = kh * kw, offset_group
    # Sampling positions [N, G, K, oH, oW]: the tap's place plus its offset (channels g*2K + 2k + {y, x}).
    off = tf.reshape(offset, tf.stack([n, g, k, 2, oh, ow]))
    taps_y = np.repeat(np.arange(kh) * dh, kw).reshape(1, 1, k, 1, 1).astype(np.float32)
    taps_x = np.tile(np.arange(kw) * dw, kh).reshape(1, 1, k, 1, 1).astype(np.float32)
    rows = tf.reshape(tf.cast(tf.range(oh) * sh - pads[0], x.dtype), [1, 1, 1, -1, 1])
    cols = tf.reshape(tf.cast(tf.range(ow) * sw - pads[1], x.dtype), [1, 1, 1, 1, -1])
    ys = rows + tf.cast(taps_y, x.dtype) + off[:, :, :, 0]
    xs = cols + tf.cast(taps_x, x.dtype) + off[:, :, :, 1]
    flat = tf.stack([n, g, -1])
    grouped = tf.reshape(x, tf.stack([n, g, c // g, dim(x, 2), dim(x, 3)]))
    samples = _bilinear(grouped, tf.reshape(ys, flat), tf.reshape(xs, flat))  # [N, G, C/G, K*oH*oW]
    if mask is not None:
        samples *= tf.reshape(mask, flat)[:, :, tf.newaxis]
    # Contract with the weights, group by group: [N, group, C/group * K, P] x [group, M/group, C/group * K].
    samples = tf.reshape(samples, tf.stack([n, group, (c // group) * k, oh * ow]))
    m = w.shape[0]
    weights = tf.reshape(w, [group, m // group, (c // group) * k])
    y = tf.reshape(tf.einsum("gmj,ngjp->ngmp", weights, samples), tf.stack([n, m, oh, ow]))
    return y if b is None else y + tf.reshape(b, [1, -1, 1, 1])
