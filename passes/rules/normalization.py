"""LayerNormalization fusion for the attribute-axes form (opset 17).

``Mul((x - m) / Sqrt(ReduceMean((x - m)^2, axes=[-1]) + eps), s)``, with
``m = ReduceMean(x, axes=[-1])`` -> ``LayerNormalization(x, s, axis=-1, epsilon=eps)``;
``(x - m)^2`` may be ``Pow(d, 2)`` or ``Mul(d, d)``, and ``/ Sqrt(v)`` may be
``* Reciprocal(Sqrt(v))``; ``s`` must be 1-D (it then broadcasts as the op's scale).

onnxscript's ``LayerNormFusion`` (``rules/fusion/_layer_norm.py``, used as is
for opset >= 18 together with its bias rule) matches only ReduceMean with axes
as an input, so at opset 17, where axes is an attribute, it never fires.
"""

from __future__ import annotations

from onnxscript.rewriter import MatchResult, RewriteRuleClassBase, RewriteRuleSet
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
