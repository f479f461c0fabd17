"""Per-channel scale and bias folded into Conv and MatMul weights; a safer MatMul+Add -> Gemm.

1. ``Mul(Conv(x, W, B), s) -> Conv(x, W * s_c, B * s_c)``, ``s`` constant, scalar
   or per output channel (broadcasting to ``[1, C, 1, ...]``)
2. ``Add(Conv(x, W, B), b) -> Conv(x, W, B + b_c)``, ``b`` likewise
3. ``Mul(MatMul(x, W), s) -> MatMul(x, W * s)``, ``W`` a 2-D constant, ``s``
   scalar or per output column (broadcasting to ``[..., 1, N]``)
4. ``Add(MatMul(a, b), c) -> Gemm(a, b, c)`` for 2-D ``a``, ``b`` only when ``c``
   broadcasts *into* ``[M, N]`` (the shipped rule checks only the ranks of
   ``a`` and ``b``, so a bigger ``c`` would change the output shape)

onnxscript ships scalar-only Conv affine rules (``conv_affine_fusion_rule``) and
BatchNormalization folding, which crossgraph uses as they are; TensorFlow
front ends emit per-channel ``BiasAdd``/``Mul`` after Conv, which they miss.
All rules need the Conv/MatMul output to have no other use.
"""

from __future__ import annotations

import numpy as np
from onnxscript.rewriter import MatchResult, RewriteRuleClassBase, RewriteRuleSet
from onnxscript.rewriter.rules.common._matmul_add_to_gemm import MatMulAddToGemm

import ir
from passes.rules._util import const_array, has_single_use


def _per_channel(value: np.ndarray, rank: int, axis: int, channels: int) -> np.ndarray | None:
    """``value`` as a 1-D array over ``axis`` of a rank-``rank`` result, or None if it varies elsewhere."""
    if value.ndim > rank:
        return None
    full = value.reshape((1,) * (rank - value.ndim) + value.shape)
    if any(n != 1 for i, n in enumerate(full.shape) if i != axis % rank):
        return None
    if full.shape[axis % rank] not in (1, channels):
        return None
    return np.broadcast_to(full.reshape(-1), (channels,))


class _ConvAffine(RewriteRuleClassBase):
    """Shared check: constant weights (and bias), a per-channel constant operand."""

    def check(self, context, x, w, conv, c, **_) -> MatchResult:
        node = conv.producer()
        weights, operand = const_array(w), const_array(c)
        bias = const_array(node.inputs[2]) if len(node.inputs) > 2 else np.zeros(1)
        if not has_single_use(conv) or weights is None or operand is None or bias is None:
            return MatchResult().fail("Conv output shared, or weights/bias/operand not constant")
        channel = _per_channel(operand, weights.ndim, 1, weights.shape[0])
        if channel is None or operand.dtype != weights.dtype:
            return MatchResult().fail("operand is not per output channel")
        self._weights, self._channel = weights, channel.astype(weights.dtype)
        self._bias = np.broadcast_to(bias, (weights.shape[0],)).astype(weights.dtype)
        return MatchResult()

    def _conv(self, op, x, conv, weights, bias):
        node = conv.producer()
        return op.Conv(
            x,
            op.Constant(value=ir.tensor(np.ascontiguousarray(weights))),
            op.Constant(value=ir.tensor(np.ascontiguousarray(bias))),
            **node.attributes,
        )


class ConvMul(_ConvAffine):
    """Mul(Conv(x, W, B), s) -> Conv(x, W*s, B*s)."""

    def pattern(self, op, x, w, c):
        conv = op.Conv(
            x, w, _allow_other_inputs=True, _allow_other_attributes=True, _outputs=["conv"]
        )
        return op.Mul(conv, c)

    def rewrite(self, op, x, w, conv, c):
        shape = (-1,) + (1,) * (self._weights.ndim - 1)
        weights = self._weights * self._channel.reshape(shape)
        return self._conv(op, x, conv, weights, self._bias * self._channel)


class ConvAdd(_ConvAffine):
    """Add(Conv(x, W, B), b) -> Conv(x, W, B+b)."""

    def pattern(self, op, x, w, c):
        conv = op.Conv(
            x, w, _allow_other_inputs=True, _allow_other_attributes=True, _outputs=["conv"]
        )
        return op.Add(conv, c)

    def rewrite(self, op, x, w, conv, c):
        return self._conv(op, x, conv, self._weights, self._bias + self._channel)


class MatMulMul(RewriteRuleClassBase):
    """Mul(MatMul(x, W), s) -> MatMul(x, W*s) for a 2-D constant W."""

    def pattern(self, op, x, w, s):
        return op.Mul(op.MatMul(x, w, _outputs=["mm"]), s)

    def check(self, context, x, w, s, mm) -> MatchResult:
        weights, scale = const_array(w), const_array(s)
        if not has_single_use(mm) or weights is None or scale is None or weights.ndim != 2:
            return MatchResult().fail("MatMul shared, or W/s not constant, or W not 2-D")
        if x.shape is None or x.shape.rank() < 1:
            return MatchResult().fail("rank of x unknown")
        rank = max(x.shape.rank(), 2)
        column = _per_channel(scale, rank, -1, weights.shape[1])
        if column is None or scale.dtype != weights.dtype:
            return MatchResult().fail("scale is not per output column")
        self._weights = np.ascontiguousarray(weights * column.astype(weights.dtype))
        return MatchResult()

    def rewrite(self, op, x, w, s, mm):
        return op.MatMul(x, op.Constant(value=ir.tensor(self._weights)))


class StrictMatMulAddToGemm(MatMulAddToGemm):
    """The shipped MatMul+Add -> Gemm, refused when ``c`` would broadcast the result."""

    def check(self, context, input_a, input_b, input_c, **kwargs) -> MatchResult:
        result = super().check(context, input_a, input_b, input_c=input_c, **kwargs)
        if not result:
            return result
        if input_c.shape is None or input_c.shape.rank() > 2:
            return MatchResult().fail("c has unknown shape or rank > 2")
        out = (input_a.shape[0], input_b.shape[1])
        for dim, target in zip(reversed(input_c.shape.dims), reversed(out), strict=False):
            if dim != 1 and dim != target:
                return MatchResult().fail("c does not broadcast into [M, N]")
        return MatchResult()


def affine_rules() -> RewriteRuleSet:
    """Scale/bias folding into Conv and MatMul, and the strict MatMul+Add -> Gemm (commuted)."""
    rules = [ConvMul.rule(), ConvAdd.rule(), MatMulMul.rule(), StrictMatMulAddToGemm.rule()]
    return RewriteRuleSet(rules, commute=True)
