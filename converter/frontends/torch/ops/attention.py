"""``scaled_dot_product_attention``, kept undecomposed (see ``export.KEEP``).

softmax(Q Kᵀ · scale + mask) V, with scale = 1/sqrt(E) unless given. A boolean
mask selects (True = attend); a float mask is added; ``is_causal`` adds -inf
above the diagonal (``Trilu`` of a -inf matrix of shape (L, S)). With
``enable_gqa``, K and V heads are repeated to match Q's.
"""

from __future__ import annotations

import math

import numpy as np

import ir
from converter.frontends.torch.emit import Emitter, rank
from converter.frontends.torch.ops import ATEN


def _scale(e: Emitter, q: ir.Value, scale: float | None) -> ir.Value:
    if scale is not None:
        return e.const(float(scale), q.dtype)
    depth = q.shape[-1]
    if isinstance(depth, int):
        return e.const(1.0 / math.sqrt(depth), q.dtype)
    size = e.cast(e.shape_of(q, -1), q.dtype)
    return e.op("Reciprocal", e.op("Sqrt", e.op("Reshape", size, e.ints([]))))


def _causal_mask(e: Emitter, q: ir.Value, k: ir.Value) -> ir.Value:
    size = e.op("Concat", e.shape_of(q, -2, -1), e.shape_of(k, -2, -1), axis=0)
    ninf = e.op("ConstantOfShape", size, value=ir.tensor(np.array([-np.inf], dtype=q.dtype.numpy())))
    return e.op("Trilu", ninf, e.const(np.int64(1)), upper=1)


def _repeat_heads(e: Emitter, x: ir.Value, q: ir.Value) -> ir.Value:
    groups = e.op("Div", e.shape_of(q, -3, -2), e.shape_of(x, -3, -2))
    x5 = e.op("Unsqueeze", x, e.ints([-3]))  # (..., Hkv, 1, S, E)
    reps = e.op("Concat", e.ints([1] * (rank(x) - 2)), groups, e.ints([1, 1]), axis=0)
    tiled = e.op("Tile", x5, reps)
    shape = e.op("Concat", e.shape_of(x, 0, -3), e.shape_of(q, -3, -2), e.shape_of(x, -2), axis=0)
    return e.op("Reshape", tiled, shape)


@ATEN.register("aten::scaled_dot_product_attention")
def scaled_dot_product_attention(
    e: Emitter,
    q: ir.Value,
    k: ir.Value,
    v: ir.Value,
    attn_mask: ir.Value | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    *,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> ir.Value:
    n = rank(k)
    if enable_gqa:
        k, v = _repeat_heads(e, k, q), _repeat_heads(e, v, q)
    kt = e.op("Transpose", k, perm=[*range(n - 2), n - 1, n - 2])
    scores = e.op("Mul", e.op("MatMul", q, kt), _scale(e, q, scale))
    if is_causal:
        scores = e.op("Add", scores, _causal_mask(e, q, k))
    if attn_mask is not None:
        if attn_mask.dtype == ir.DataType.BOOL:
            ninf = e.const(-np.inf, q.dtype)
            scores = e.op("Where", attn_mask, scores, ninf)
        else:
            scores = e.op("Add", scores, e.cast(attn_mask, q.dtype))
    return e.op("MatMul", e.op("Softmax", scores, axis=-1), v)

