"""View-op chains: Reshape / Squeeze / Unsqueeze / Flatten pairs collapse to one op.

1. ``V2(V1(x)) -> Reshape(x, s)`` for view ops ``V1, V2`` when the result's
   shape is known but for at most one symbolic dim (``s`` has ``-1`` there)
2. ``Squeeze(Unsqueeze(x, a), a) -> x``
3. ``Unsqueeze(Squeeze(x, a), a) -> x`` when ``x`` has size-1 dims at ``a``

Shipped onnxscript rules cover only same-op pairs (``ReshapeReshape``,
``UnsqueezeUnsqueeze``) and ``Reshape(Squeeze(x), [-1])`` for 1-D ``x``; mixed
chains, as front ends emit them around MatMul and Linear, are not merged there.
"""

from __future__ import annotations

import numpy as np
from onnxscript.rewriter import MatchResult, RewriteRuleClassBase, RewriteRuleSet

import ir
from passes.rules._util import attr_ints, const_array, has_single_use

VIEW_OPS = ("Reshape", "Squeeze", "Unsqueeze", "Flatten")


def _axes(node: ir.Node) -> list[int] | None:
    """Squeeze/Unsqueeze axes from the input (opset >= 13) or the attribute."""
    if len(node.inputs) > 1 and node.inputs[1] is not None:
        value = const_array(node.inputs[1])
        return None if value is None else [int(a) for a in value.reshape(-1)]
    return attr_ints(node, "axes")


class ViewChain(RewriteRuleClassBase):
    """V2(V1(x)) -> Reshape(x, known output shape)."""

    def __init__(self, first: str, second: str):
        super().__init__(name=f"{first}{second}ToReshape")
        self._first, self._second = first, second

    def pattern(self, op, x):
        inner = getattr(op, self._first)(
            x, _allow_other_inputs=True, _allow_other_attributes=True, _outputs=["inner"]
        )
        return getattr(op, self._second)(
            inner, _allow_other_inputs=True, _allow_other_attributes=True, _outputs=["y"]
        )

    def check(self, context, x, inner, y) -> MatchResult:
        if not has_single_use(inner):
            return MatchResult().fail("intermediate view has other uses")
        if y.shape is None:
            return MatchResult().fail("result shape unknown")
        dims = [d if isinstance(d, int) else -1 for d in y.shape.dims]
        if dims.count(-1) > 1 or 0 in dims:
            return MatchResult().fail("more than one unknown dim, or a zero-size dim")
        self._dims = dims
        return MatchResult()

    def rewrite(self, op, x, inner, y):
        shape = op.Constant(value=ir.tensor(np.array(self._dims, dtype=np.int64)))
        return op.Reshape(x, shape)


class SqueezeOfUnsqueeze(RewriteRuleClassBase):
    """Squeeze(Unsqueeze(x, a), a) -> x."""

    def pattern(self, op, x):
        u = op.Unsqueeze(x, _allow_other_inputs=True, _allow_other_attributes=True, _outputs=["u"])
        return op.Squeeze(u, _allow_other_inputs=True, _allow_other_attributes=True, _outputs=["s"])

    def check(self, context, x, u, s) -> MatchResult:
        a_in, a_out = _axes(u.producer()), _axes(s.producer())
        if a_in is None or a_out is None:
            return MatchResult().fail("axes not constant")
        r = len(a_in) + (x.shape.rank() if x.shape is not None else -len(a_in) - 1)
        if r < 0 or sorted(a % r for a in a_in) != sorted(a % r for a in a_out):
            return MatchResult().fail("axes differ or rank unknown")
        return MatchResult()

    def rewrite(self, op, x, u, s):
        return op.Identity(x)


class UnsqueezeOfSqueeze(RewriteRuleClassBase):
    """Unsqueeze(Squeeze(x, a), a) -> x when x is 1 along a."""

    def pattern(self, op, x):
        s = op.Squeeze(x, _allow_other_inputs=True, _allow_other_attributes=True, _outputs=["s"])
        return op.Unsqueeze(
            s, _allow_other_inputs=True, _allow_other_attributes=True, _outputs=["u"]
        )

    def check(self, context, x, s, u) -> MatchResult:
        a_in, a_out = _axes(s.producer()), _axes(u.producer())
        if a_in is None or a_out is None or x.shape is None:
            return MatchResult().fail("axes not constant or input rank unknown")
        r = x.shape.rank()
        axes_in = sorted(a % r for a in a_in)
        if axes_in != sorted(a % r for a in a_out):
            return MatchResult().fail("axes differ")
        if any(x.shape[a] != 1 for a in axes_in):
            return MatchResult().fail("squeezed dims are not known to be 1")
        return MatchResult()

    def rewrite(self, op, x, s, u):
        return op.Identity(x)


def reshape_rules() -> RewriteRuleSet:
    """View-chain rules; the inverse pairs first, as they need no shape information."""
    rules = [SqueezeOfUnsqueeze.rule(), UnsqueezeOfSqueeze.rule()]
    rules += [ViewChain.rule(a, b) for a in VIEW_OPS for b in VIEW_OPS]
    return RewriteRuleSet(rules)
