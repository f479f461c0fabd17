"""Attention (opset 23+) and RotaryEmbedding.

Attention follows the ONNX reference step by step, since the conformance cases
test its corners: 3-D inputs split into heads, the KV cache (``past_key`` /
``past_value`` appended on the sequence axis), grouped-query heads repeated
interleaved, ``scale`` applied as ``sqrt(scale)`` to both Q and K, ``softcap``
before the mask, a causal mask aligned bottom-right (offset by the cache or by
``nonpad_kv_seqlen - q_len``), a boolean or additive ``attn_mask`` padded with
"masked" up to the KV length, and rows whose every key is masked giving zeros.
"""

import math

import torch
from torch import Tensor

from kernels.torch import TORCH
from kernels.torch._util import onnx_dtype


def _split_heads(x: Tensor, heads: int) -> Tensor:
    """``[B, S, H*D]`` -> ``[B, H, S, D]``."""
    return x.reshape(x.shape[0], x.shape[1], heads, -1).transpose(1, 2)


def _window_allowed(
    q_len: int, kv_len: int, offset: Tensor, left: int, right: int, causal: bool
) -> Tensor:
    """Which (query, key) pairs may attend: ``[q, kv]`` or ``[B, 1, q, kv]`` for a per-batch offset."""
    i = torch.arange(q_len, device=offset.device).reshape(q_len, 1)
    j = torch.arange(kv_len, device=offset.device).reshape(1, kv_len)
    if offset.dim() > 0:
        diff = (i + offset.reshape(-1, 1, 1, 1)) - j
    else:
        diff = (i + offset) - j
    allowed = torch.ones_like(diff, dtype=torch.bool)
    if causal:
        allowed = allowed & (diff >= 0)
    if left >= 0:
        allowed = allowed & (diff <= left)
    if right >= 0:
        allowed = allowed & (-diff <= right)
    return allowed


def _bias(
    q: Tensor,
    kv_len: int,
    attn_mask: Tensor | None,
    offset: Tensor,
    nonpad_kv_seqlen: Tensor | None,
    is_causal: int,
    left: int,
    right: int,
) -> Tensor:
    """The additive bias (0 or -inf, plus a float mask) added to the scores."""
    q_len = q.shape[2]
    zero = torch.zeros((), dtype=q.dtype, device=q.device)
    neg_inf = torch.full((), -math.inf, dtype=q.dtype, device=q.device)
    bias = torch.zeros((q_len, kv_len), dtype=q.dtype, device=q.device)
    if attn_mask is not None:
        pad = kv_len - attn_mask.shape[-1]
        if attn_mask.dtype == torch.bool:
            mask = torch.where(attn_mask, zero, neg_inf)
        else:
            mask = attn_mask.to(q.dtype)
        if pad > 0:
            mask = torch.nn.functional.pad(mask, [0, pad], value=-math.inf)
        bias = bias + mask
    if is_causal != 0 or left >= 0 or right >= 0:
        allowed = _window_allowed(q_len, kv_len, offset, left, right, is_causal != 0)
        bias = bias + torch.where(allowed, zero, neg_inf)
    if nonpad_kv_seqlen is not None:
        keep = torch.arange(kv_len, device=q.device).reshape(1, kv_len) < nonpad_kv_seqlen.reshape(
            -1, 1
        )
        bias = bias + torch.where(keep, zero, neg_inf).reshape(-1, 1, 1, kv_len)
    return bias


@TORCH.register("Attention", since=23)
def attention(
    Q: Tensor,  # noqa: N803
    K: Tensor,  # noqa: N803
    V: Tensor,  # noqa: N803
    attn_mask: Tensor | None = None,
    past_key: Tensor | None = None,
    past_value: Tensor | None = None,
    nonpad_kv_seqlen: Tensor | None = None,
    is_causal: int = 0,
    kv_num_heads: int = 0,
    q_num_heads: int = 0,
    qk_matmul_output_mode: int = 0,
    scale: float = 0.0,
    softcap: float = 0.0,
    softmax_precision: int = 0,
    left_window_size: int = -1,
    right_window_size: int = -1,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """float16 inputs are computed in float32 and rounded once, as onnxruntime does: rounding
    every intermediate to float16 puts some outputs two float16 steps from the reference."""
    if Q.dtype != torch.float16:
        return _attention(Q, K, V, attn_mask, past_key, past_value, nonpad_kv_seqlen, is_causal, kv_num_heads,
                          q_num_heads, qk_matmul_output_mode, scale, softcap, softmax_precision, left_window_size,
                          right_window_size)
    y, key, value, qk = _attention(Q.float(), K.float(), V.float(), _to_float(attn_mask), _to_float(past_key),
                                   _to_float(past_value), nonpad_kv_seqlen, is_causal,
                                   kv_num_heads, q_num_heads, qk_matmul_output_mode, scale, softcap, softmax_precision,
                                   left_window_size, right_window_size)
    return y.half(), key.half(), value.half(), qk.half()


def _to_float(t: Tensor | None) -> Tensor | None:
    if t is None or t.dtype != torch.float16:
        return t
    return t.float()


def _attention(
    Q: Tensor,  # noqa: N803
    K: Tensor,  # noqa: N803
    V: Tensor,  # noqa: N803
    attn_mask: Tensor | None = None,
    past_key: Tensor | None = None,
    past_value: Tensor | None = None,
    nonpad_kv_seqlen: Tensor | None = None,
    is_causal: int = 0,
    kv_num_heads: int = 0,
    q_num_heads: int = 0,
    qk_matmul_output_mode: int = 0,
    scale: float = 0.0,
    softcap: float = 0.0,
    softmax_precision: int = 0,
    left_window_size: int = -1,
    right_window_size: int = -1,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    three_d = Q.dim() == 3
    if three_d:
        Q = _split_heads(Q, q_num_heads)
        K = _split_heads(K, kv_num_heads)
        V = _split_heads(V, kv_num_heads)
    factor = math.sqrt(scale if scale != 0.0 else 1.0 / math.sqrt(Q.shape[3]))
    scale_t = torch.tensor(factor, dtype=torch.float64).to(Q.dtype).to(Q.device)
    if past_key is not None:
        K = torch.cat([past_key, K], 2)
    if past_value is not None:
        V = torch.cat([past_value, V], 2)
    present_key, present_value = K, V
    q_len, kv_len = Q.shape[2], K.shape[2]
    if past_key is not None:
        offset = torch.tensor(past_key.shape[2], device=Q.device)
    elif nonpad_kv_seqlen is not None:
        offset = nonpad_kv_seqlen.to(torch.int64).reshape(-1) - q_len
    else:
        offset = torch.tensor(0, device=Q.device)
    bias = _bias(
        Q,
        kv_len,
        attn_mask,
        offset,
        nonpad_kv_seqlen,
        is_causal,
        left_window_size,
        right_window_size,
    )
    if Q.shape[1] != K.shape[1] and Q.shape[1] % K.shape[1] == 0:
        reps = Q.shape[1] // K.shape[1]
        K = torch.repeat_interleave(K, reps, 1)
        V = torch.repeat_interleave(V, reps, 1)
    scores = torch.matmul(Q * scale_t, K.transpose(2, 3) * scale_t)
    if softcap > 0.0:
        scores = torch.tanh(scores / softcap) * softcap
    qk = scores
    with_bias = scores + bias
    if qk_matmul_output_mode == 2:
        qk = with_bias
    if softmax_precision != 0:
        with_bias = with_bias.to(onnx_dtype(softmax_precision))
    probs = torch.softmax(with_bias, -1)
    all_masked = torch.isneginf(torch.amax(bias, -1, keepdim=True))
    probs = torch.where(all_masked, torch.zeros_like(probs), probs)
    if qk_matmul_output_mode == 3:
        qk = probs
    y = torch.matmul(probs.to(Q.dtype), V)
    if three_d:
        y = y.transpose(1, 2).reshape(y.shape[0], y.shape[2], -1)
    return y, present_key, present_value, qk.to(Q.dtype)


@TORCH.register("RotaryEmbedding", since=23)
def rotary_embedding(
    X: Tensor,  # noqa: N803
    cos_cache: Tensor,
    sin_cache: Tensor,
    position_ids: Tensor | None = None,
    interleaved: int = 0,
    num_heads: int = 0,
    rotary_embedding_dim: int = 0,
) -> Tensor:
    three_d = X.dim() == 3
    x = X
    if three_d:  # [B, S, H*D] -> [B, S, H, D]
        x = x.reshape(x.shape[0], x.shape[1], num_heads, -1)
    else:  # [B, H, S, D] -> [B, S, H, D]
        x = x.transpose(1, 2)
    head = x.shape[3]
    rot = rotary_embedding_dim if rotary_embedding_dim != 0 else head
    if position_ids is not None:
        cos = cos_cache[position_ids]
        sin = sin_cache[position_ids]
    else:
        cos, sin = cos_cache, sin_cache
    cos = cos[..., : rot // 2].unsqueeze(2)  # [B, S, 1, rot/2]
    sin = sin[..., : rot // 2].unsqueeze(2)
    x_rot, x_pass = x[..., :rot], x[..., rot:]
    if interleaved != 0:
        x1, x2 = x_rot[..., 0::2], x_rot[..., 1::2]
    else:
        x1, x2 = x_rot[..., : rot // 2], x_rot[..., rot // 2 :]
    real = cos * x1 - sin * x2
    imag = sin * x1 + cos * x2
    if interleaved != 0:
        rotated = torch.stack([real, imag], -1).reshape(x_rot.shape)
    else:
        rotated = torch.cat([real, imag], -1)
    out = torch.cat([rotated, x_pass], -1)
    if three_d:
        return out.reshape(X.shape)
    return out.transpose(1, 2)
