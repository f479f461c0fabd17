"""LayerNormalization fusion for the attribute-axes form (opset 17).

``Mul((x - m) / Sqrt(ReduceMean((x - m)^2, axes=[-1]) + eps), s)``, with
``m = ReduceMean(x, axes=[-1])`` -> ``LayerNormalization(x, s, axis=-1, epsilon=eps)``;
``(x - m)^2`` may be ``Pow(d, 2)`` or ``Mul(d, d)``, and ``/ Sqrt(v)`` may be
``* Reciprocal(Sqrt(v))``; ``s`` must be 1-D (it then broadcasts as the op's scale).

BatchNormalization folding into Conv/ConvTranspose/Gemm is onnxscript's, behind
a guard: its check reads an empty optional input (``Conv(x, W, "")``) as a bias
and raises; the guard refuses such matches (``TrimEmptyInputsPass`` removes the
empty inputs first in the pipeline, so the fold still happens there).

onnxscript's ``LayerNormFusion`` (``rules/fusion/_layer_norm.py``, used as is
for opset >= 18 together with its bias rule) matches only ReduceMean with axes
as an input, so at opset 17, where axes is an attribute, it never fires.
"""

from __future__ import annotations

from onnxscript.rewriter import MatchResult, RewriteRuleClassBase, RewriteRuleSet
from onnxscript.rewriter.rules.common import _fuse_batchnorm
from onnxscript.rewriter.rules.fusion import _layer_norm

import ir
from passes.rules._util import const_array, rank

_TYPES = frozenset({ir.DataType.FLOAT, ir.DataType.DOUBLE})


class LayerNormAttrAxesFusion(RewriteRuleClassBase):
    """ReduceMean(axes=[-1]) decomposition -> LayerNormalization."""

    def __init__(self, square_by_pow: bool, divide: bool):
        name = f"LayerNormAttrAxes{'Pow' if square_by_pow else 'Mul'}{'Div' if divide else 'Recip'}"
        super().__init__(name=name)
        self._pow, self._div = square_by_pow, divide

    def pattern(self, op, x, eps, scale):
        d = op.Sub(x, op.ReduceMean(x, axes=[-1], _allow_other_attributes=True, _outputs=["mean"]))
        squared = op.Pow(d, 2.0) if self._pow else op.Mul(d, d)
        std = op.Sqrt(
            op.Add(
                op.ReduceMean(squared, axes=[-1], _allow_other_attributes=True, _outputs=["var"]),
                eps,
            )
        )
        normalized = op.Div(d, std) if self._div else op.Mul(d, op.Reciprocal(std))
        return op.Mul(normalized, scale)

    def check(self, context, x, eps, scale, mean, var) -> MatchResult:
        if any(v.producer().attributes.get_int("keepdims", 1) != 1 for v in (mean, var)):
            return MatchResult().fail("a ReduceMean drops the axis (keepdims=0)")
        value = const_array(eps)
        if x.dtype not in _TYPES or value is None or value.size != 1:
            return MatchResult().fail("x is not float/double, or epsilon not a constant scalar")
        if rank(scale) != 1 or scale.dtype != x.dtype:
            return MatchResult().fail("scale is not 1-D of x's type")
        self._eps, self._stash = float(value.reshape(-1)[0]), x.dtype
        return MatchResult()

    def rewrite(self, op, x, eps, scale, **_):
        return op.LayerNormalization(
            x, scale, axis=-1, epsilon=self._eps, stash_type=int(self._stash)
        )


class _EmptyInputGuard:
    """Refuses a BatchNormalization fold when an optional input of either node is empty, or the
    BatchNormalization is ``spatial=0`` (opsets 6-8: not one scale per output channel)."""

    def check(self, context, x, inbound_out, batchnorm_out) -> MatchResult:
        nodes = (inbound_out.producer(), batchnorm_out.producer())
        if any(v is None for node in nodes for v in node.inputs[1:]):
            return MatchResult().fail("an optional input is given empty")
        spatial = nodes[1].attributes.get("spatial")
        if spatial is not None and spatial.as_int() == 0:
            return MatchResult().fail("spatial=0 (before opset 9): parameters per channel and position")
        return super().check(context, x, inbound_out, batchnorm_out)


class BatchNormIntoConv(_EmptyInputGuard, _fuse_batchnorm.FuseBatchNormIntoConv):
    """BatchNormalization(Conv(x, W, B)) -> Conv(x, W', B'), as onnxscript's, guarded."""


class BatchNormIntoConvTranspose(_EmptyInputGuard, _fuse_batchnorm.FuseBatchNormIntoConvTranspose):
    """BatchNormalization(ConvTranspose(x, W, B)) -> ConvTranspose(x, W', B'), guarded."""


class BatchNormIntoGemm(_EmptyInputGuard, _fuse_batchnorm.FuseBatchNormIntoGemm):
    """BatchNormalization(Gemm(a, b, c)) -> Gemm(a, b', c'), guarded."""


def batchnorm_rules() -> RewriteRuleSet:
    """BatchNormalization folding into the op before it."""
    return RewriteRuleSet(
        [
            BatchNormIntoConv().rule(),
            BatchNormIntoConvTranspose().rule(),
            BatchNormIntoGemm().rule(),
        ]
    )


def layer_norm_rules(opset: int) -> RewriteRuleSet | None:
    """LayerNormalization fusions for ``opset`` (none below 17, where the op does not exist)."""
    if opset < 17:
        return None
    if opset == 17:
        rules = [LayerNormAttrAxesFusion.rule(p, d) for p in (True, False) for d in (True, False)]
    else:
        rules = list(_layer_norm.layer_normalization_rules[:1])
    rules.append(_layer_norm.layer_normalization_rules[1])  # LayerNorm + Add -> bias input
    return RewriteRuleSet(rules)
