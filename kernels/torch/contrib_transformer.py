"""onnxruntime's transformer contrib ops: the fusions of ``onnxruntime.transformers.optimizer``
(Gelu, FastGelu, BiasGelu, QuickGelu, BiasAdd, FusedMatMul, SkipLayerNormalization,
EmbedLayerNormalization, Attention, MultiHeadAttention) and of HF optimum / onnxruntime-genai
(SimplifiedLayerNormalization in the default domain, SkipSimplifiedLayerNormalization,
RotaryEmbedding, MatMulNBits).

Masks follow onnxruntime: a masked score gets ``mask_filter_value`` (-10000) added, not -inf,
so a row whose keys are all masked still averages its values as onnxruntime's does.
"""

import math

import torch
from torch import Tensor

from kernels.torch import TORCH

C = "com.microsoft::"


def _gelu(x: Tensor) -> Tensor:
    return 0.5 * x * (1.0 + torch.erf(x * 0.7071067811865476))


def _tanh_gelu(x: Tensor) -> Tensor:
    return 0.5 * x * (1.0 + torch.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))


@TORCH.register(C + "Gelu", since=1)
def gelu(x: Tensor) -> Tensor:
    return _gelu(x)


@TORCH.register(C + "BiasGelu", since=1)
def bias_gelu(a: Tensor, b: Tensor) -> Tensor:
    return _gelu(a + b)


@TORCH.register(C + "FastGelu", since=1)
def fast_gelu(x: Tensor, bias: Tensor | None = None) -> Tensor:
    return _tanh_gelu(x if bias is None else x + bias)


@TORCH.register(C + "QuickGelu", since=1)
def quick_gelu(x: Tensor, alpha: float = 1.702) -> Tensor:
    return x * torch.sigmoid(alpha * x)


@TORCH.register(C + "BiasAdd", since=1)
def bias_add(x: Tensor, bias: Tensor, skip: Tensor) -> Tensor:
    return x + bias + skip


@TORCH.register(C + "FusedMatMul", since=1)
def fused_mat_mul(
    a: Tensor,
    b: Tensor,
    alpha: float = 1.0,
    transA: int = 0,  # noqa: N803
    transB: int = 0,  # noqa: N803
    transBatchA: int = 0,  # noqa: N803
    transBatchB: int = 0,  # noqa: N803
) -> Tensor:
    if transBatchA != 0 or transBatchB != 0:
        raise NotImplementedError("FusedMatMul with transBatchA / transBatchB")
    if transA != 0:
        a = a.transpose(-1, -2)
    if transB != 0:
        b = b.transpose(-1, -2)
    return torch.matmul(a, b) * alpha


def _layer_norm(x: Tensor, gamma: Tensor, beta: Tensor | None, epsilon: float) -> tuple[Tensor, Tensor, Tensor]:
    """LayerNorm over the last axis in float32; (y, mean, inv_std_var) with statistics kept as [..., 1]."""
    xs = x.to(torch.float32)
    mean = torch.mean(xs, -1, keepdim=True)
    centered = xs - mean
    inv_std = torch.rsqrt(torch.mean(centered * centered, -1, keepdim=True) + epsilon)
    y = (centered * inv_std).to(x.dtype) * gamma
    return (y if beta is None else y + beta), mean, inv_std


def _rms_norm(x: Tensor, gamma: Tensor, epsilon: float, dims: list[int]) -> tuple[Tensor, Tensor]:
    xs = x.to(torch.float32)
    inv_std = torch.rsqrt(torch.mean(xs * xs, dims, keepdim=True) + epsilon)
    return (xs * inv_std).to(x.dtype) * gamma, inv_std


@TORCH.register("SimplifiedLayerNormalization", since=1)
def simplified_layer_normalization(
    x: Tensor, scale: Tensor, axis: int = -1, epsilon: float = 1e-05, stash_type: int = 1
) -> tuple[Tensor, Tensor]:
    start = axis + x.dim() if axis < 0 else axis
    return _rms_norm(x, scale, epsilon, list(range(start, x.dim())))


@TORCH.register(C + "SkipLayerNormalization", since=1)
def skip_layer_normalization(
    x: Tensor,
    skip: Tensor,
    gamma: Tensor,
    beta: Tensor | None = None,
    bias: Tensor | None = None,
    epsilon: float = 1e-12,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    total = x + skip if bias is None else x + skip + bias
    y, mean, inv_std = _layer_norm(total, gamma, beta, epsilon)
    return y, mean, inv_std, total


@TORCH.register(C + "SkipSimplifiedLayerNormalization", since=1)
def skip_simplified_layer_normalization(
    x: Tensor, skip: Tensor, gamma: Tensor, bias: Tensor | None = None, epsilon: float = 1e-12
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    total = x + skip if bias is None else x + skip + bias
    y, inv_std = _rms_norm(total, gamma, epsilon, [-1])
    return y, torch.zeros_like(inv_std), inv_std, total


@TORCH.register(C + "EmbedLayerNormalization", since=1)
def embed_layer_normalization(
    input_ids: Tensor,
    segment_ids: Tensor | None,
    word_embedding: Tensor,
    position_embedding: Tensor,
    segment_embedding: Tensor | None,
    gamma: Tensor,
    beta: Tensor,
    mask: Tensor | None = None,
    position_ids: Tensor | None = None,
    epsilon: float = 1e-12,
    mask_index_type: int = 1,
) -> tuple[Tensor, Tensor, Tensor]:
    """Word + position (+ segment) embeddings, layer-normalized; mask_index is the number of
    unmasked tokens of each row (zeros without a mask)."""
    seq = input_ids.shape[1]
    if position_ids is None:
        position_ids = torch.arange(seq, device=input_ids.device).reshape(1, seq)
    total = word_embedding[input_ids.to(torch.int64)] + position_embedding[position_ids.to(torch.int64)]
    if segment_ids is not None and segment_embedding is not None:
        total = total + segment_embedding[segment_ids.to(torch.int64)]
    y, _, _ = _layer_norm(total, gamma, beta, epsilon)
    if mask is None:
        mask_index = torch.zeros([input_ids.shape[0]], dtype=torch.int32, device=input_ids.device)
    else:
        mask_index = torch.sum(mask.to(torch.int32), 1).to(torch.int32)
    return y, mask_index, total


def _heads(x: Tensor, heads: int) -> Tensor:
    """``[B, S, N*H]`` -> ``[B, N, S, H]``."""
    return x.reshape(x.shape[0], x.shape[1], heads, -1).transpose(1, 2)


def _key_mask(mask: Tensor, batch: int, q_len: int, kv_len: int, past: int) -> Tensor:
    """A boolean ``[B, 1, S, L]`` (or broadcastable) of masked keys from onnxruntime's mask forms:
    [B] valid lengths, [2B] ends then starts, [B, L] / [B, S, L] raw 0/1 masks, [B, 1, M, M]."""
    j = torch.arange(kv_len, device=mask.device)
    if mask.dim() == 1:
        ends = mask[:batch].to(torch.int64).reshape(batch, 1)
        masked = j.reshape(1, kv_len) >= ends
        if mask.shape[0] == 2 * batch:
            masked = masked | (j.reshape(1, kv_len) < mask[batch:].to(torch.int64).reshape(batch, 1))
        return masked.reshape(batch, 1, 1, kv_len)
    if mask.dim() == 2:
        return (mask == 0).reshape(batch, 1, 1, kv_len)
    if mask.dim() == 3:
        return (mask == 0).reshape(batch, 1, q_len, kv_len)
    return mask[:, :, past:past + q_len, :kv_len] == 0


def _attend(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    scale: float,
    masked: Tensor | None,
    bias: Tensor | None,
    causal: bool,
    past: int,
    mask_filter_value: float,
) -> Tensor:
    """Scaled dot-product attention of ``[B, N, S, H]`` heads; returns ``[B, S, N*Hv]``. A causal
    query ``i`` sees keys up to ``past + i`` (onnxruntime aligns it after the cache, not bottom-right)."""
    q_len, kv_len = q.shape[2], k.shape[2]
    scores = torch.matmul(q, k.transpose(-1, -2)) * scale
    if masked is not None:
        scores = scores + masked.to(scores.dtype) * mask_filter_value
    if causal:
        i = torch.arange(q_len, device=q.device).reshape(q_len, 1) + past
        future = torch.arange(kv_len, device=q.device).reshape(1, kv_len) > i
        scores = scores + future.to(scores.dtype) * mask_filter_value
    if bias is not None:
        scores = scores + bias
    out = torch.matmul(torch.softmax(scores, -1), v)
    return out.transpose(1, 2).reshape(q.shape[0], q_len, -1)


@TORCH.register(C + "Attention", since=1)
def attention(
    x: Tensor,
    weights: Tensor,
    bias: Tensor | None = None,
    mask_index: Tensor | None = None,
    past: Tensor | None = None,
    attention_bias: Tensor | None = None,
    past_sequence_length: Tensor | None = None,
    num_heads: int = 1,
    qkv_hidden_sizes: list[int] | None = None,
    scale: float = 0.0,
    mask_filter_value: float = -10000.0,
    unidirectional: int = 0,
    do_rotary: int = 0,
    past_present_share_buffer: int = 0,
    rotary_embedding_dim: int = 0,
) -> tuple[Tensor, Tensor]:
    """The BERT attention block: one projection to Q, K, V, ``num_heads`` heads, an optional
    mask, attention bias and KV cache ``past`` / ``present`` of shape ``[2, B, N, L, H]``."""
    if do_rotary != 0:
        raise NotImplementedError("Attention with do_rotary")
    qkv = torch.matmul(x, weights)
    if bias is not None:
        qkv = qkv + bias
    third = weights.shape[1] // 3
    sizes = qkv_hidden_sizes if qkv_hidden_sizes is not None else [third, third, third]
    q = _heads(qkv[:, :, :sizes[0]], num_heads)
    k = _heads(qkv[:, :, sizes[0]:sizes[0] + sizes[1]], num_heads)
    v = _heads(qkv[:, :, sizes[0] + sizes[1]:], num_heads)
    past_len = 0
    if past is not None:
        past_len = past.shape[3]
        k = torch.cat([past[0], k], 2)
        v = torch.cat([past[1], v], 2)
    factor = scale if scale != 0.0 else 1.0 / math.sqrt(float(q.shape[3]))
    masked: Tensor | None = None
    if mask_index is not None:
        masked = _key_mask(mask_index, x.shape[0], x.shape[1], k.shape[2], past_len)
    out = _attend(q, k, v, factor, masked, attention_bias, unidirectional != 0, past_len, mask_filter_value)
    return out, torch.stack([k, v])


def _project(x: Tensor, bias: Tensor | None, start: int, size: int) -> Tensor:
    return x if bias is None else x + bias[start:start + size]


@TORCH.register(C + "MultiHeadAttention", since=1)
def multi_head_attention(
    query: Tensor,
    key: Tensor | None = None,
    value: Tensor | None = None,
    bias: Tensor | None = None,
    key_padding_mask: Tensor | None = None,
    attention_bias: Tensor | None = None,
    past_key: Tensor | None = None,
    past_value: Tensor | None = None,
    past_sequence_length: Tensor | None = None,
    cache_indirection: Tensor | None = None,
    num_heads: int = 1,
    scale: float = 0.0,
    mask_filter_value: float = -10000.0,
    unidirectional: int = 0,
) -> tuple[Tensor, Tensor, Tensor]:
    """Attention of projected Q, K, V: separate ``[B, S, D]`` tensors (plus ``bias``), K and V
    already in heads (``[B, N, L, H]``), or packed QKV ``[B, S, N, 3, H]`` / KV ``[B, L, N, 2, H]``."""
    if key is None:  # packed QKV
        q = query[:, :, :, 0].transpose(1, 2)
        k = query[:, :, :, 1].transpose(1, 2)
        v = query[:, :, :, 2].transpose(1, 2)
    else:
        d = query.shape[2]
        q = _heads(_project(query, bias, 0, d), num_heads)
        if key.dim() == 5:  # packed KV
            k = key[:, :, :, 0].transpose(1, 2)
            v = key[:, :, :, 1].transpose(1, 2)
        elif key.dim() == 4:
            assert value is not None
            k, v = key, value
        else:
            assert value is not None
            k = _heads(_project(key, bias, d, key.shape[2]), num_heads)
            v = _heads(_project(value, bias, d + key.shape[2], value.shape[2]), num_heads)
    past_len = 0
    if past_key is not None and past_value is not None:
        past_len = past_key.shape[2]
        k = torch.cat([past_key, k], 2)
        v = torch.cat([past_value, v], 2)
    factor = scale if scale != 0.0 else 1.0 / math.sqrt(float(q.shape[3]))
    masked: Tensor | None = None
    if key_padding_mask is not None:
        masked = _key_mask(key_padding_mask, q.shape[0], q.shape[2], k.shape[2], past_len)
    out = _attend(q, k, v, factor, masked, attention_bias, unidirectional != 0, past_len, mask_filter_value)
    return out, k, v


@TORCH.register(C + "RotaryEmbedding", since=1)
def rotary_embedding(
    x: Tensor,
    position_ids: Tensor,
    cos_cache: Tensor,
    sin_cache: Tensor,
    interleaved: int = 0,
    is_packed_batching: int = 0,
    num_heads: int = 0,
    rotary_embedding_dim: int = 0,
    scale: float = 1.0,
) -> Tensor:
    """Rotates the first ``rotary_dim`` features of every head of ``[B, S, N*H]`` or ``[B, N, S, H]``
    input; ``position_ids`` is ``[B, S]`` or a one-element offset of ``arange(S)``."""
    rotary_dim = rotary_embedding_dim if rotary_embedding_dim > 0 else 2 * cos_cache.shape[1]
    if x.dim() == 4:
        h = x.transpose(1, 2)
    else:
        heads = num_heads if num_heads > 0 else x.shape[2] // rotary_dim
        h = x.reshape(x.shape[0], x.shape[1], heads, -1)
    seq = h.shape[1]
    if position_ids.numel() == 1:
        pos = torch.arange(seq, device=x.device).reshape(1, seq) + position_ids.to(torch.int64).reshape(())
    else:
        pos = position_ids.to(torch.int64)
    half = rotary_dim // 2
    cos = cos_cache[pos][:, :, :half].unsqueeze(2)  # [B, S, 1, half]
    sin = sin_cache[pos][:, :, :half].unsqueeze(2)
    rot = h[..., :rotary_dim]
    if interleaved != 0:
        x1, x2 = rot[..., 0::2], rot[..., 1::2]
        rotated = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1).reshape(rot.shape)
    else:
        x1, x2 = rot[..., :half], rot[..., half:]
        rotated = torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)
    out = torch.cat([rotated, h[..., rotary_dim:]], -1)
    return out.transpose(1, 2) if x.dim() == 4 else out.reshape(x.shape)


def _unpack(packed: Tensor, bits: int) -> Tensor:
    """uint8 bytes -> their ``8 // bits`` fields, lowest bits first, along a new last axis flattened in."""
    shifts = torch.arange(0, 8, bits, device=packed.device, dtype=torch.int32)
    fields = (packed.to(torch.int32).unsqueeze(-1) >> shifts) & ((1 << bits) - 1)
    return fields.reshape(list(packed.shape[:-1]) + [-1])


@TORCH.register(C + "MatMulNBits", since=1)
def mat_mul_n_bits(
    a: Tensor,
    b: Tensor,
    scales: Tensor,
    zero_points: Tensor | None = None,
    g_idx: Tensor | None = None,
    bias: Tensor | None = None,
    K: int = 0,  # noqa: N803
    N: int = 0,  # noqa: N803
    accuracy_level: int = 0,
    bits: int = 4,
    block_size: int = 32,
    weight_prepacked: int = 0,
) -> Tensor:
    """``A @ W.T`` with W ``[N, K]`` dequantized block-wise: ``(q - zero_point) * scale``, codes
    packed low bits first, zero points packed likewise (``2**(bits-1)`` when omitted) or float."""
    if g_idx is not None:
        raise NotImplementedError("MatMulNBits with g_idx")
    blocks = (K + block_size - 1) // block_size
    q = _unpack(b.reshape(N, blocks, -1), bits).to(torch.float32)  # [N, blocks, block_size]
    if zero_points is None:
        zero = torch.full([N, blocks, 1], float(1 << (bits - 1)), device=a.device)
    elif zero_points.is_floating_point():
        zero = zero_points.to(torch.float32).reshape(N, blocks, 1)
    else:
        zero = _unpack(zero_points.reshape(N, -1), bits)[:, :blocks].to(torch.float32).reshape(N, blocks, 1)
    w = ((q - zero) * scales.to(torch.float32).reshape(N, blocks, 1)).reshape(N, -1)[:, :K]
    y = torch.matmul(a.to(torch.float32), w.t()).to(a.dtype)
    return y if bias is None else y + bias
