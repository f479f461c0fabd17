"""onnxruntime's transformer contrib ops: the fusions of ``onnxruntime.transformers.optimizer``
(Gelu, FastGelu, BiasGelu, QuickGelu, BiasAdd, FusedMatMul, SkipLayerNormalization,
EmbedLayerNormalization, Attention, MultiHeadAttention) and of HF optimum / onnxruntime-genai
(SimplifiedLayerNormalization in the default domain, SkipSimplifiedLayerNormalization,
RotaryEmbedding, MatMulNBits).

Masks follow onnxruntime: a masked score gets ``mask_filter_value`` (-10000) added, not -inf.
Batch and sequence lengths come from ``tf.shape``, so they may be dynamic while tracing.
"""

from __future__ import annotations

import math

import tensorflow as tf

from kernels.tf import TF
from kernels.tf._util import rank

C = "com.microsoft::"


def _gelu(x):
    return 0.5 * x * (1.0 + tf.math.erf(x * 0.7071067811865476))


def _tanh_gelu(x):
    return 0.5 * x * (1.0 + tf.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))


@TF.register(C + "Gelu", since=1)
def gelu(x):
    return _gelu(x)


@TF.register(C + "BiasGelu", since=1)
def bias_gelu(a, b):
    return _gelu(a + b)


@TF.register(C + "FastGelu", since=1)
def fast_gelu(x, bias=None):
    return _tanh_gelu(x if bias is None else x + bias)


@TF.register(C + "QuickGelu", since=1)
def quick_gelu(x, *, alpha: float = 1.702):
    return x * tf.sigmoid(alpha * x)


@TF.register(C + "BiasAdd", since=1)
def bias_add(x, bias, skip):
    return x + bias + skip


@TF.register(C + "FusedMatMul", since=1)
def fused_matmul(a, b, *, alpha: float = 1.0, transA: int = 0, transB: int = 0,  # noqa: N803
                 transBatchA: int = 0, transBatchB: int = 0):  # noqa: N803
    if transBatchA or transBatchB:
        raise NotImplementedError("FusedMatMul with transBatchA / transBatchB")
    return tf.matmul(a, b, transpose_a=bool(transA), transpose_b=bool(transB)) * alpha


def _layer_norm(x, gamma, beta, epsilon: float):
    """LayerNorm over the last axis in float32; (y, mean, inv_std_var) with statistics kept as [..., 1]."""
    xs = tf.cast(x, tf.float32)
    mean = tf.reduce_mean(xs, -1, keepdims=True)
    centered = xs - mean
    inv_std = tf.math.rsqrt(tf.reduce_mean(tf.square(centered), -1, keepdims=True) + epsilon)
    y = tf.cast(centered * inv_std, x.dtype) * gamma
    return (y if beta is None else y + beta), mean, inv_std


def _rms_norm(x, gamma, epsilon: float, axes: list[int]):
    xs = tf.cast(x, tf.float32)
    inv_std = tf.math.rsqrt(tf.reduce_mean(tf.square(xs), axes, keepdims=True) + epsilon)
    return tf.cast(xs * inv_std, x.dtype) * gamma, inv_std


@TF.register("SimplifiedLayerNormalization", since=1)
def simplified_layer_normalization(x, scale, *, axis: int = -1, epsilon: float = 1e-5, stash_type: int = 1):
    r = rank(x)
    return _rms_norm(x, scale, epsilon, list(range(axis % r, r)))


@TF.register(C + "SkipLayerNormalization", since=1)
def skip_layer_normalization(x, skip, gamma, beta=None, bias=None, *, epsilon: float = 1e-12):
    total = x + skip if bias is None else x + skip + bias
    y, mean, inv_std = _layer_norm(total, gamma, beta, epsilon)
    return y, mean, inv_std, total


@TF.register(C + "SkipSimplifiedLayerNormalization", since=1)
def skip_simplified_layer_normalization(x, skip, gamma, bias=None, *, epsilon: float = 1e-12):
    total = x + skip if bias is None else x + skip + bias
    y, inv_std = _rms_norm(total, gamma, epsilon, [-1])
    return y, tf.zeros_like(inv_std), inv_std, total


@TF.register(C + "EmbedLayerNormalization", since=1)
def embed_layer_normalization(input_ids, segment_ids, word_embedding, position_embedding, segment_embedding,
                              gamma, beta, mask=None, position_ids=None, *, epsilon: float = 1e-12,
                              mask_index_type: int = 1):
    """Word + position (+ segment) embeddings, layer-normalized; mask_index is the number of
    unmasked tokens of each row (zeros without a mask)."""
    if position_ids is None:
        position_ids = tf.range(tf.shape(input_ids)[1])[tf.newaxis]
    total = tf.gather(word_embedding, input_ids) + tf.gather(position_embedding, position_ids)
    if segment_ids is not None and segment_embedding is not None:
        total = total + tf.gather(segment_embedding, segment_ids)
    y, _, _ = _layer_norm(total, gamma, beta, epsilon)
    if mask is None:
        mask_index = tf.zeros(tf.shape(input_ids)[:1], tf.int32)
    else:
        mask_index = tf.reduce_sum(tf.cast(mask, tf.int32), 1)
    return y, mask_index, total


def _heads(x, heads: int):
    """``[B, S, N*H]`` -> ``[B, N, S, H]``."""
    shape = tf.shape(x)
    return tf.transpose(tf.reshape(x, tf.stack([shape[0], shape[1], heads, -1])), [0, 2, 1, 3])


def _key_mask(mask, batch, q_len, kv_len, past):
    """A boolean ``[B, 1, S, L]`` (or broadcastable) of masked keys from onnxruntime's mask forms:
    [B] valid lengths, [2B] ends then starts, [B, L] / [B, S, L] raw 0/1 masks, [B, 1, M, M]."""
    r = rank(mask)
    j = tf.range(kv_len)[tf.newaxis]
    if r == 1:
        m = tf.cast(mask, tf.int32)
        masked = j >= m[:batch, tf.newaxis]
        masked = tf.cond(tf.shape(m)[0] == 2 * batch,
                         lambda: masked | (j < m[-batch:, tf.newaxis]), lambda: masked)
        return masked[:, tf.newaxis, tf.newaxis, :]
    if r == 2:
        return tf.equal(mask, 0)[:, tf.newaxis, tf.newaxis, :]
    if r == 3:
        return tf.equal(mask, 0)[:, tf.newaxis]
    return tf.equal(mask[:, :, past:past + q_len, :kv_len], 0)


def _attend(q, k, v, scale: float, masked, bias, causal: bool, past, mask_filter_value: float):
    """Scaled dot-product attention of ``[B, N, S, H]`` heads; returns ``[B, S, N*Hv]``. A causal
    query ``i`` sees keys up to ``past + i`` (onnxruntime aligns it after the cache, not bottom-right)."""
    scores = tf.matmul(q, k, transpose_b=True) * scale
    if masked is not None:
        scores = scores + tf.cast(masked, scores.dtype) * mask_filter_value
    if causal:
        q_len, kv_len = tf.shape(q)[2], tf.shape(k)[2]
        i = tf.range(q_len)[:, tf.newaxis] + past
        future = tf.range(kv_len)[tf.newaxis] > i
        scores = scores + tf.cast(future, scores.dtype) * mask_filter_value
    if bias is not None:
        scores = scores + bias
    out = tf.transpose(tf.matmul(tf.nn.softmax(scores, -1), v), [0, 2, 1, 3])
    shape = tf.shape(out)
    return tf.reshape(out, tf.stack([shape[0], shape[1], shape[2] * shape[3]]))


def _head_scale(scale: float, head_size) -> float:
    return scale if scale else 1.0 / math.sqrt(float(head_size))


@TF.register(C + "Attention", since=1)
def attention(x, weights, bias=None, mask_index=None, past=None, attention_bias=None, past_sequence_length=None,
              *, num_heads: int, qkv_hidden_sizes=None, scale: float = 0.0, mask_filter_value: float = -10000.0,
              unidirectional: int = 0, do_rotary: int = 0, past_present_share_buffer: int = 0,
              rotary_embedding_dim: int = 0, num_outputs: int = 2):
    """The BERT attention block: one projection to Q, K, V, ``num_heads`` heads, an optional
    mask, attention bias and KV cache ``past`` / ``present`` of shape ``[2, B, N, L, H]``."""
    if do_rotary:
        raise NotImplementedError("Attention with do_rotary")
    qkv = tf.matmul(x, weights)
    if bias is not None:
        qkv = qkv + bias
    third = weights.shape[1] // 3
    sq, sk, _ = qkv_hidden_sizes or [third, third, third]
    q, k, v = _heads(qkv[:, :, :sq], num_heads), _heads(qkv[:, :, sq:sq + sk], num_heads), \
        _heads(qkv[:, :, sq + sk:], num_heads)
    past_len = 0
    if past is not None:
        past_len = tf.shape(past)[3]
        k, v = tf.concat([past[0], k], 2), tf.concat([past[1], v], 2)
    masked = None
    if mask_index is not None:
        masked = _key_mask(mask_index, tf.shape(x)[0], tf.shape(x)[1], tf.shape(k)[2], past_len)
    out = _attend(q, k, v, _head_scale(scale, sq // num_heads), masked, attention_bias, bool(unidirectional),
                  past_len, mask_filter_value)
    return (out, tf.stack([k, v]))[:max(1, num_outputs)]


def _split_packed(x, index: int):
    """Part ``index`` of a packed ``[B, S, N, P, H]`` tensor, as heads ``[B, N, S, H]``."""
    return tf.transpose(x[:, :, :, index], [0, 2, 1, 3])


@TF.register(C + "MultiHeadAttention", since=1)
def multi_head_attention(query, key=None, value=None, bias=None, key_padding_mask=None, attention_bias=None,
                         past_key=None, past_value=None, past_sequence_length=None, cache_indirection=None, *,
                         num_heads: int, scale: float = 0.0, mask_filter_value: float = -10000.0,
                         unidirectional: int = 0, num_outputs: int = 1):
    """Attention of projected Q, K, V: separate ``[B, S, D]`` tensors (plus ``bias``), K and V
    already in heads (``[B, N, L, H]``), or packed QKV ``[B, S, N, 3, H]`` / KV ``[B, L, N, 2, H]``."""
    if key is None:
        q, k, v = (_split_packed(query, i) for i in range(3))
    else:
        d = query.shape[2]
        q = _heads(query if bias is None else query + bias[:d], num_heads)
        if rank(key) == 5:
            k, v = _split_packed(key, 0), _split_packed(key, 1)
        elif rank(key) == 4:
            k, v = key, value
        else:
            dk, dv = key.shape[2], value.shape[2]
            k = _heads(key if bias is None else key + bias[d:d + dk], num_heads)
            v = _heads(value if bias is None else value + bias[d + dk:d + dk + dv], num_heads)
    past_len = 0
    if past_key is not None and past_value is not None:
        past_len = tf.shape(past_key)[2]
        k, v = tf.concat([past_key, k], 2), tf.concat([past_value, v], 2)
    masked = None
    if key_padding_mask is not None:
        masked = _key_mask(key_padding_mask, tf.shape(q)[0], tf.shape(q)[2], tf.shape(k)[2], past_len)
    out = _attend(q, k, v, _head_scale(scale, q.shape[3]), masked, attention_bias, bool(unidirectional),
                  past_len, mask_filter_value)
    return (out, k, v)[:max(1, num_outputs)]


@TF.register(C + "RotaryEmbedding", since=1)
def rotary_embedding(x, position_ids, cos_cache, sin_cache, *, interleaved: int = 0, is_packed_batching: int = 0,
                     num_heads: int = 0, rotary_embedding_dim: int = 0, scale: float = 1.0):
    """Rotates the first ``rotary_dim`` features of every head of ``[B, S, N*H]`` or ``[B, N, S, H]``
    input; ``position_ids`` is ``[B, S]`` or a one-element offset of ``arange(S)``."""
    rotary_dim = rotary_embedding_dim or 2 * cos_cache.shape[1]
    four_d = rank(x) == 4
    if four_d:
        h = tf.transpose(x, [0, 2, 1, 3])
    else:
        heads = num_heads or x.shape[2] // rotary_dim
        shape = tf.shape(x)
        h = tf.reshape(x, tf.stack([shape[0], shape[1], heads, -1]))
    seq = tf.shape(h)[1]
    pos = tf.cast(position_ids, tf.int32)
    if position_ids.shape.num_elements() == 1:
        pos = tf.range(seq)[tf.newaxis] + tf.reshape(pos, [])
    half = rotary_dim // 2
    cos = tf.gather(cos_cache, pos)[:, :, tf.newaxis, :half]  # [B, S, 1, half]
    sin = tf.gather(sin_cache, pos)[:, :, tf.newaxis, :half]
    rot = h[..., :rotary_dim]
    if interleaved:
        x1, x2 = rot[..., 0::2], rot[..., 1::2]
        rotated = tf.reshape(tf.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1), tf.shape(rot))
    else:
        x1, x2 = rot[..., :half], rot[..., half:]
        rotated = tf.concat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)
    out = tf.concat([rotated, h[..., rotary_dim:]], -1)
    return tf.transpose(out, [0, 2, 1, 3]) if four_d else tf.reshape(out, tf.shape(x))


def _unpack(packed, bits: int):
    """uint8 bytes -> their ``8 // bits`` fields, lowest bits first, flattened into the last axis."""
    fields = [tf.bitwise.bitwise_and(tf.bitwise.right_shift(tf.cast(packed, tf.int32), s), (1 << bits) - 1)
              for s in range(0, 8, bits)]
    stacked = tf.stack(fields, -1)
    shape = tf.shape(packed)
    return tf.reshape(stacked, tf.concat([shape[:-1], [-1]], 0))


@TF.register(C + "MatMulNBits", since=1)
def matmul_nbits(a, b, scales, zero_points=None, g_idx=None, bias=None, *, K: int, N: int,  # noqa: N803
                 block_size: int, bits: int = 4, accuracy_level: int = 0, weight_prepacked: int = 0):
    """``A @ W.T`` with W ``[N, K]`` dequantized block-wise: ``(q - zero_point) * scale``, codes
    packed low bits first, zero points packed likewise (``2**(bits-1)`` when omitted) or float."""
    if g_idx is not None:
        raise NotImplementedError("MatMulNBits with g_idx")
    blocks = (K + block_size - 1) // block_size
    q = tf.cast(_unpack(tf.reshape(b, [N, blocks, -1]), bits), tf.float32)
    if zero_points is None:
        zero = tf.fill([N, blocks, 1], float(1 << (bits - 1)))
    elif zero_points.dtype.is_floating:
        zero = tf.reshape(tf.cast(zero_points, tf.float32), [N, blocks, 1])
    else:
        zero = tf.reshape(tf.cast(_unpack(tf.reshape(zero_points, [N, -1]), bits)[:, :blocks], tf.float32),
                          [N, blocks, 1])
    w = tf.reshape((q - zero) * tf.reshape(tf.cast(scales, tf.float32), [N, blocks, 1]), [N, -1])[:, :K]
    y = tf.cast(tf.matmul(tf.cast(a, tf.float32), w, transpose_b=True), a.dtype)
    return y if bias is None else y + bias
