"""GELU decompositions fused into the ONNX ``Gelu`` op (opset 20 and later).

1. ``x * (Erf(x / sqrt(2)) + 1) * 0.5 -> Gelu(x)`` in the three groupings front
   ends emit (``(x*A)*0.5``, ``x*(A*0.5)``, ``(x*0.5)*A``), with ``x / sqrt(2)``
   also written ``x * (1/sqrt(2))``; operand order is free (the set is commuted)
2. ``x * (1 - Erf(-x / sqrt(2))) * 0.5 -> Gelu(x)``: the erfc form (``Erfc(-z) = 1 + Erf(z)``)
   that Keras' exact GELU reaches the IR in (tf2onnx's ``Erfc``, repaired as ``1 - Erf``)
3. ``0.5 * x * (1 + Tanh(sqrt(2/pi) * (x + 0.044715 * x^3))) -> Gelu(x, approximate="tanh")``

onnxscript's GELU rules (``ort_fusions/gelu.py``, ``erfgelu.py``) produce the
onnxruntime contrib ops ``com.microsoft::Gelu``/``FastGelu``, not the standard op,
and only one grouping each.
"""

from __future__ import annotations

import math

from onnxscript.rewriter import MatchResult, RewriteRuleClassBase, RewriteRuleSet

import ir

_SQRT2 = math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_TYPES = frozenset(
    {ir.DataType.FLOAT, ir.DataType.FLOAT16, ir.DataType.BFLOAT16, ir.DataType.DOUBLE}
)


def _check_float(x: ir.Value) -> MatchResult:
    if x.dtype not in _GELU_TYPES:
        return MatchResult().fail("x is not a floating-point tensor of known type")
    return MatchResult()


class GeluErfFusion(RewriteRuleClassBase):
    """The exact (erf) GELU in one of three Mul groupings."""

    def __init__(self, grouping: int, divide: bool):
        super().__init__(name=f"GeluErfFusion{grouping}{'Div' if divide else 'Mul'}")
        self._grouping, self._divide = grouping, divide

    def pattern(self, op, x):
        scaled = op.Div(x, _SQRT2) if self._divide else op.Mul(x, 1.0 / _SQRT2)
        a = op.Add(op.Erf(scaled), 1.0)
        if self._grouping == 0:
            return op.Mul(op.Mul(x, a), 0.5)
        if self._grouping == 1:
            return op.Mul(x, op.Mul(a, 0.5))
        return op.Mul(op.Mul(x, 0.5), a)

    def check(self, context, x) -> MatchResult:
        return _check_float(x)

    def rewrite(self, op, x):
        return op.Gelu(x)


class GeluErfcFusion(GeluErfFusion):
    """The exact GELU written with erfc: ``0.5 * x * (1 - Erf(-x / sqrt(2)))``."""

    def __init__(self, grouping: int, divide: bool):
        super().__init__(grouping, divide)
        self.name = f"GeluErfcFusion{grouping}{'Div' if divide else 'Mul'}"

    def pattern(self, op, x):
        negated = op.Neg(x)
        scaled = op.Div(negated, _SQRT2) if self._divide else op.Mul(negated, 1.0 / _SQRT2)
        a = op.Sub(1.0, op.Erf(scaled))
        if self._grouping == 0:
            return op.Mul(op.Mul(x, a), 0.5)
        if self._grouping == 1:
            return op.Mul(x, op.Mul(a, 0.5))
        return op.Mul(op.Mul(x, 0.5), a)


class GeluTanhFusion(RewriteRuleClassBase):
    """The tanh-approximated GELU."""

    def pattern(self, op, x):
        inner = op.Mul(op.Add(x, op.Mul(op.Pow(x, 3.0), 0.044715)), _SQRT_2_OVER_PI)
        return op.Mul(op.Mul(x, 0.5), op.Add(op.Tanh(inner), 1.0))

    def check(self, context, x) -> MatchResult:
        return _check_float(x)

    def rewrite(self, op, x):
        return op.Gelu(x, approximate="tanh")


def gelu_rules() -> RewriteRuleSet:
    """GELU fusions, commuted over operand order; only for models at opset >= 20."""
    rules = [cls.rule(g, d) for cls in (GeluErfFusion, GeluErfcFusion) for g in range(3) for d in (True, False)]
    rules.append(GeluTanhFusion.rule())
    return RewriteRuleSet(rules, commute=True)
