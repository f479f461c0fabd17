"""Attention (opset 23+) and RotaryEmbedding (opset 23+).

``Attention`` follows the spec's function body step by step:

1. 3-D ``Q``/``K``/``V`` ``[B, S, H*D]`` are split into heads ``[B, H, S, D]``;
2. ``past_key``/``past_value`` are prepended along the sequence axis (they are
   the ``present_*`` outputs);
3. an additive bias is built from ``attn_mask`` (boolean -> 0 / -inf, padded
   with -inf up to the key length), ``is_causal`` (bottom-right aligned, offset
   by the past length or ``nonpad_kv_seqlen - q_len``), the sliding window and
   ``nonpad_kv_seqlen``;
4. grouped-query attention repeats each key/value head ``Hq / Hkv`` times;
5. ``softmax(softcap(Q*sqrt(s) @ (K*sqrt(s))^T) + bias) @ V``, rows whose bias is
   entirely -inf giving zeros; ``qk_matmul_output`` per ``qk_matmul_output_mode``.

Sizes are taken with ``tf.shape``, so batch and sequence lengths may be dynamic.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from kernels.tf import TF
from kernels.tf._util import dim, tf_dtype


def _heads(x: tf.Tensor, num_heads: int) -> tf.Tensor:
    """[B, S, H*D] -> [B, H, S, D]."""
    b, s = tf.shape(x)[0], tf.shape(x)[1]
    return tf.transpose(tf.reshape(x, tf.stack([b, s, num_heads, -1])), [0, 2, 1, 3])


def _merge_heads(y: tf.Tensor) -> tf.Tensor:
    """[B, H, S, D] -> [B, S, H*D]."""
    y = tf.transpose(y, [0, 2, 1, 3])
    shape = tf.shape(y)
    return tf.reshape(y, tf.stack([shape[0], shape[1], shape[2] * shape[3]]))


def _bool_bias(mask: tf.Tensor, dtype: tf.DType) -> tf.Tensor:
    return tf.where(mask, tf.zeros([], dtype), tf.constant(-np.inf, dtype))


def _pad_mask(mask: tf.Tensor, kv_len, dtype: tf.DType) -> tf.Tensor:
    """Pad the mask's last axis up to the key length with -inf (False for a boolean mask)."""
    missing = kv_len - tf.shape(mask)[-1]
    paddings = tf.concat([tf.zeros([mask.shape.rank - 1, 2], tf.int32), [[0, missing]]], 0)
    fill = False if mask.dtype == tf.bool else -np.inf
    return tf.pad(mask, paddings, constant_values=tf.constant(fill, mask.dtype))


def _position_bias(q_len, kv_len, offset, causal: bool, left: int, right: int, dtype: tf.DType) -> tf.Tensor | None:
    """0 / -inf bias of the causal and sliding-window rules; ``offset`` scalar or per batch [B]."""
    if not causal and left < 0 and right < 0:
        return None
    i = tf.range(q_len)[:, None]
    j = tf.range(kv_len)[None, :]
    per_batch = offset.shape.rank == 1
    shift = tf.reshape(offset, [-1, 1, 1]) if per_batch else offset
    diff = (i + shift) - j  # query position minus key position
    allowed = tf.ones_like(diff, tf.bool)
    if causal:
        allowed &= diff >= 0
    if left >= 0:
        allowed &= diff <= left
    if right >= 0:
        allowed &= -diff <= right
    bias = _bool_bias(allowed, dtype)
    return bias[:, None] if per_batch else bias


def _bias(q, k, attn_mask, past_len, nonpad_kv_seqlen, is_causal, left, right):
    """The additive attention bias (broadcastable to [B, H, Sq, Skv]) or None."""
    q_len, kv_len = tf.shape(q)[2], tf.shape(k)[2]
    bias = None
    if attn_mask is not None:
        mask = _pad_mask(attn_mask, kv_len, q.dtype)
        bias = _bool_bias(mask, q.dtype) if mask.dtype == tf.bool else tf.cast(mask, q.dtype)
    if nonpad_kv_seqlen is not None and past_len is None:
        offset = tf.cast(nonpad_kv_seqlen, tf.int32) - q_len
    else:
        offset = tf.constant(0) if past_len is None else past_len
    positional = _position_bias(q_len, kv_len, offset, bool(is_causal), left, right, q.dtype)
    if positional is not None:
        bias = positional if bias is None else bias + positional
    if nonpad_kv_seqlen is not None:
        keep = tf.range(kv_len)[None, :] < tf.cast(nonpad_kv_seqlen, tf.int32)[:, None]
        padding = tf.reshape(_bool_bias(keep, q.dtype), tf.stack([-1, 1, 1, kv_len]))
        bias = padding if bias is None else bias + padding
    return bias


def _repeat_heads(x: tf.Tensor, reps: int) -> tf.Tensor:
    return x if reps == 1 else tf.repeat(x, reps, axis=1)


@TF.register("Attention", since=23)
def attention(q, k, v, attn_mask=None, past_key=None, past_value=None, nonpad_kv_seqlen=None, *,
              is_causal: int = 0, kv_num_heads: int | None = None, q_num_heads: int | None = None,
              qk_matmul_output_mode: int = 0, scale: float | None = None, softcap: float = 0.0,
              softmax_precision: int | None = None, left_window_size: int = -1, right_window_size: int = -1,
              num_outputs: int = 1):
    three_d = q.shape.rank == 3
    if three_d:
        q, k, v = _heads(q, q_num_heads), _heads(k, kv_num_heads), _heads(v, kv_num_heads)
    head = dim(q, 3)
    if scale is not None:
        root = np.sqrt(scale)
    elif isinstance(head, int):
        root = np.sqrt(1.0 / np.sqrt(head))
    else:
        root = tf.pow(tf.cast(head, tf.float64), -0.25)
    root = tf.cast(root, q.dtype)
    past_len = None
    if past_key is not None:
        past_len = tf.shape(past_key)[2]
        k = tf.concat([past_key, k], 2)
        v = tf.concat([past_value, v], 2)
    present_key, present_value = k, v
    bias = _bias(q, k, attn_mask, past_len, nonpad_kv_seqlen, is_causal, left_window_size, right_window_size)
    reps = dim(q, 1) // dim(k, 1) if isinstance(dim(q, 1), int) and isinstance(dim(k, 1), int) else 1
    k, v = _repeat_heads(k, reps), _repeat_heads(v, reps)
    scores = _matmul(q * root, k * root, transpose_b=True)
    if softcap and softcap > 0:
        scores = tf.tanh(scores / softcap) * softcap
    qk_out = scores
    with_bias = scores if bias is None else scores + bias
    if qk_matmul_output_mode == 2:
        qk_out = with_bias
    compute = tf_dtype(softmax_precision) if softmax_precision else with_bias.dtype
    probs = _half_softmax(tf.cast(with_bias, compute), bias)
    if qk_matmul_output_mode == 3:
        qk_out = probs
    y = _matmul(tf.cast(probs, q.dtype), v)
    if three_d:
        y = _merge_heads(y)
    return (y, present_key, present_value, tf.cast(qk_out, q.dtype))[:max(1, num_outputs)]


def _half_rounded(fn, x: tf.Tensor, *args, **kwargs) -> tf.Tensor:
    """``fn`` computed in float32 for float16 / bfloat16 inputs, rounded back once (as numpy does)."""
    if x.dtype not in (tf.float16, tf.bfloat16):
        return fn(x, *args, **kwargs)
    widened = [tf.cast(a, tf.float32) if isinstance(a, tf.Tensor) and a.dtype == x.dtype else a for a in args]
    return tf.cast(fn(tf.cast(x, tf.float32), *widened, **kwargs), x.dtype)


def _matmul(a: tf.Tensor, b: tf.Tensor, **kwargs) -> tf.Tensor:
    return _half_rounded(tf.matmul, a, b, **kwargs)


def _half_softmax(x: tf.Tensor, bias: tf.Tensor | None) -> tf.Tensor:
    """:func:`_masked_softmax`; for float16 / bfloat16 in float32 with each step rounded to the type, as
    the Softmax of Attention's function body (and onnx's reference) computes it."""
    if x.dtype not in (tf.float16, tf.bfloat16):
        return _masked_softmax(x, bias)
    half = x.dtype

    def rounded(t: tf.Tensor) -> tf.Tensor:
        return tf.cast(tf.cast(t, half), tf.float32)

    wide_bias = None if bias is None else tf.cast(bias, tf.float32)
    return tf.cast(_masked_softmax(tf.cast(x, tf.float32), wide_bias, rounded), half)


def _masked_softmax(x: tf.Tensor, bias: tf.Tensor | None, rounded=lambda t: t) -> tf.Tensor:
    """Softmax over the last axis; rows whose bias is all -inf are zeros (not NaN).

    ``rounded`` is applied to the difference, the exponentials and their sum.
    """
    row_max = tf.reduce_max(x, -1, keepdims=True)
    if bias is not None:
        row_max = tf.where(tf.math.is_inf(row_max) & (row_max < 0), tf.zeros_like(row_max), row_max)
    e = rounded(tf.exp(rounded(x - row_max)))
    total = rounded(tf.reduce_sum(e, -1, keepdims=True))
    if bias is None:
        return e / total
    p = e / tf.where(tf.equal(total, 0), tf.ones_like(total), total)
    dead = tf.reduce_all(tf.math.is_inf(bias) & (bias < 0), -1, keepdims=True)
    return tf.where(dead, tf.zeros_like(p), p)


@TF.register("RotaryEmbedding", since=23)
def rotary_embedding(x, cos_cache, sin_cache, position_ids=None, *, interleaved: int = 0,
                     num_heads: int = 0, rotary_embedding_dim: int = 0):
    """x [B, S, H*D] or [B, H, S, D]; caches [max_pos, D'/2] gathered by position_ids, or [B, S, D'/2]."""
    four_d = x.shape.rank == 4
    if four_d:
        x = tf.transpose(x, [0, 2, 1, 3])  # [B, S, H, D]
    else:
        b, s = tf.shape(x)[0], tf.shape(x)[1]
        x = tf.reshape(x, tf.stack([b, s, num_heads, -1]))
    head = dim(x, 3)
    rot = rotary_embedding_dim or head
    if position_ids is not None:
        cos_cache, sin_cache = tf.gather(cos_cache, position_ids), tf.gather(sin_cache, position_ids)
    cos, sin = cos_cache[:, :, None, : rot // 2], sin_cache[:, :, None, : rot // 2]
    x_rot, x_pass = x[..., :rot], x[..., rot:]
    if interleaved:
        a, b_ = x_rot[..., 0::2], x_rot[..., 1::2]
    else:
        a, b_ = x_rot[..., : rot // 2], x_rot[..., rot // 2:]
    ra, rb = a * cos - b_ * sin, b_ * cos + a * sin
    if interleaved:
        rotated = tf.reshape(tf.stack([ra, rb], -1), tf.shape(x_rot))
    else:
        rotated = tf.concat([ra, rb], -1)
    y = tf.concat([rotated, x_pass], -1)
    if four_d:
        return tf.transpose(y, [0, 2, 1, 3])
    shape = tf.shape(y)
    return tf.reshape(y, tf.stack([shape[0], shape[1], -1]))
