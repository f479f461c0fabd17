"""Transpose sinking: move Transpose below elementwise and reduction ops so pairs meet.

With ``T_p`` a Transpose with permutation ``p`` (``p^-1`` its inverse):

1. ``U(T_p(x)) -> T_p(U(x))`` for a unary elementwise ``U`` (Relu, Exp, Cast, Clip, ...)
2. ``B(T_p(a), T_p(b)) -> T_p(B(a, b))`` for a binary elementwise ``B``, equal ranks
3. ``B(T_p(a), c) -> T_p(B(a, T_{p^-1}(c)))`` and mirrored, ``c`` a constant
   (the constant is transposed now, so the graph gains no node)
4. ``R(T_p(x), axes) -> T_q(R(x, p[axes]))`` for a reduction ``R``; ``q = p``
   with keepdims, else ``p`` restricted to the kept axes; no Transpose when
   ``q`` is the identity

Every rule needs the Transpose to have a single use (else it would be duplicated)
and never adds nodes; once two Transposes meet, onnxscript's shipped
``TransposeTranspose`` rule merges them and ``TransposeIdentity`` drops the
identity. The shipped rules only handle such adjacent pairs: nothing there moves
a Transpose through other ops.
"""

from __future__ import annotations

import numpy as np
from onnxscript.rewriter import MatchResult, RewriteRuleClassBase, RewriteRuleSet

import ir
from passes.rules._util import attr_ints, const_array, has_single_use, rank

UNARY = (
    "Abs", "Acos", "Asin", "Atan", "Cast", "Ceil", "Celu", "Clip", "Cos", "Cosh", "Elu",
    "Erf", "Exp", "Floor", "Gelu", "HardSigmoid", "HardSwish", "IsInf", "IsNaN",
    "LeakyRelu", "Log", "Mish", "Neg", "Not", "Reciprocal", "Relu", "Round", "Selu",
    "Sigmoid", "Sign", "Sin", "Sinh", "Softplus", "Softsign", "Sqrt", "Tan", "Tanh",
    "ThresholdedRelu",
)  # fmt: skip
BINARY = (
    "Add", "And", "Div", "Equal", "Greater", "GreaterOrEqual", "Less", "LessOrEqual",
    "Max", "Min", "Mod", "Mul", "Or", "Pow", "Sub", "Xor",
)  # fmt: skip
REDUCE = (
    "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean",
    "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare",
)  # fmt: skip


def _perm(transposed: ir.Value) -> list[int] | None:
    """The permutation of the Transpose producing ``transposed`` (default: reversed axes)."""
    node = transposed.producer()
    perm = attr_ints(node, "perm")
    if perm is None:
        r = rank(node.inputs[0])
        return None if r is None else list(reversed(range(r)))
    return perm


def _same_op(op, node: ir.Node, *inputs):
    """A copy of ``node`` (same op, attributes) on new inputs."""
    return getattr(op, node.op_type)(*inputs, _domain=node.domain, **node.attributes)


class UnaryTranspose(RewriteRuleClassBase):
    """U(Transpose(x, p), ...) -> Transpose(U(x, ...), p); extra inputs (Clip bounds) are scalars."""

    def __init__(self, op_type: str):
        super().__init__(name=f"TransposeThrough{op_type}")
        self._op_type = op_type

    def pattern(self, op, x):
        t = op.Transpose(x, _allow_other_attributes=True, _outputs=["t"])
        return getattr(op, self._op_type)(
            t, _allow_other_inputs=True, _allow_other_attributes=True, _outputs=["y"]
        )

    def check(self, context, x, t, y) -> MatchResult:
        if not has_single_use(t) or _perm(t) is None:
            return MatchResult().fail("Transpose has other uses or an unknown perm")
        extra = y.producer().inputs[1:]
        if any(v is not None and (rank(v) is None or rank(v) > 0) for v in extra):
            return MatchResult().fail("extra inputs are not scalars")
        return MatchResult()

    def rewrite(self, op, x, t, y):
        node = y.producer()
        inner = _same_op(op, node, x, *node.inputs[1:])
        return op.Transpose(inner, perm=_perm(t))


class BinaryTranspose(RewriteRuleClassBase):
    """B(Transpose(a, p), Transpose(b, p)) -> Transpose(B(a, b), p), equal ranks."""

    def __init__(self, op_type: str):
        super().__init__(name=f"TransposeThrough{op_type}")
        self._op_type = op_type

    def pattern(self, op, a, b):
        ta = op.Transpose(a, _allow_other_attributes=True, _outputs=["ta"])
        tb = op.Transpose(b, _allow_other_attributes=True, _outputs=["tb"])
        return getattr(op, self._op_type)(ta, tb, _allow_other_attributes=True, _outputs=["y"])

    def check(self, context, a, b, ta, tb, y) -> MatchResult:
        if ta is tb:
            ok = len(ta.uses()) == 2 and not ta.is_graph_output()
        else:
            ok = has_single_use(ta) and has_single_use(tb)
        if not ok:
            return MatchResult().fail("a Transpose has other uses")
        pa, pb = _perm(ta), _perm(tb)
        if pa is None or pa != pb:
            return MatchResult().fail("permutations differ")
        return MatchResult()

    def rewrite(self, op, a, b, ta, tb, y):
        return op.Transpose(_same_op(op, y.producer(), a, b), perm=_perm(ta))


class BinaryTransposeConstant(RewriteRuleClassBase):
    """B(Transpose(a, p), c) -> Transpose(B(a, c'), p) with c' = c transposed by p^-1."""

    def __init__(self, op_type: str, transposed_first: bool):
        side = "Left" if transposed_first else "Right"
        super().__init__(name=f"TransposeThrough{op_type}Constant{side}")
        self._op_type = op_type
        self._first = transposed_first

    def pattern(self, op, a, c):
        t = op.Transpose(a, _allow_other_attributes=True, _outputs=["t"])
        args = (t, c) if self._first else (c, t)
        return getattr(op, self._op_type)(*args, _allow_other_attributes=True, _outputs=["y"])

    def check(self, context, a, c, t, y) -> MatchResult:
        value, perm = const_array(c), _perm(t)
        if not has_single_use(t) or perm is None:
            return MatchResult().fail("Transpose has other uses or an unknown perm")
        if value is None or value.ndim > len(perm):
            return MatchResult().fail("other operand is not a constant of lower or equal rank")
        full = value.reshape((1,) * (len(perm) - value.ndim) + value.shape)
        self._constant = np.ascontiguousarray(np.transpose(full, np.argsort(perm)))
        return MatchResult()

    def rewrite(self, op, a, c, t, y):
        c_new = op.Constant(value=ir.tensor(self._constant))
        args = (a, c_new) if self._first else (c_new, a)
        return op.Transpose(_same_op(op, y.producer(), *args), perm=_perm(t))


class ReduceTranspose(RewriteRuleClassBase):
    """R(Transpose(x, p), axes) -> Transpose(R(x, p[axes]), q)."""

    def __init__(self, op_type: str):
        super().__init__(name=f"TransposeThrough{op_type}")
        self._op_type = op_type

    def pattern(self, op, x):
        t = op.Transpose(x, _allow_other_attributes=True, _outputs=["t"])
        return getattr(op, self._op_type)(
            t, _allow_other_inputs=True, _allow_other_attributes=True, _outputs=["y"]
        )

    def check(self, context, x, t, y) -> MatchResult:
        node, perm = y.producer(), _perm(t)
        if not has_single_use(t) or perm is None:
            return MatchResult().fail("Transpose has other uses or an unknown perm")
        axes = self._axes(node)
        if axes is None:
            return MatchResult().fail("axes are not constant")
        if not axes:
            if node.attributes.get_int("noop_with_empty_axes", 0):
                return MatchResult().fail("empty axes mean no reduction")
            axes = list(range(len(perm)))
        axes = sorted(a % len(perm) for a in axes)
        self._new_axes = sorted(perm[a] for a in axes)
        if node.attributes.get_int("keepdims", 1):
            self._out_perm = perm
        else:
            kept = [perm[i] for i in range(len(perm)) if i not in axes]
            self._out_perm = [sorted(kept).index(v) for v in kept]
        return MatchResult()

    @staticmethod
    def _axes(node: ir.Node) -> list[int] | None:
        if len(node.inputs) > 1 and node.inputs[1] is not None:
            value = const_array(node.inputs[1])
            return None if value is None else [int(a) for a in value.reshape(-1)]
        return attr_ints(node, "axes") or []

    def rewrite(self, op, x, t, y):
        node = y.producer()
        attrs = {k: v for k, v in node.attributes.items() if k != "axes"}
        if len(node.inputs) > 1 and node.inputs[1] is not None:
            axes = op.Constant(value=ir.tensor(np.array(self._new_axes, dtype=np.int64)))
            reduced = getattr(op, node.op_type)(x, axes, _domain=node.domain, **attrs)
        elif "axes" not in node.attributes:  # no axes: it reduces all of them, still does
            reduced = getattr(op, node.op_type)(x, _domain=node.domain, **attrs)
        else:
            reduced = getattr(op, node.op_type)(
                x, _domain=node.domain, axes=self._new_axes, **attrs
            )
        if self._out_perm == sorted(self._out_perm) or len(self._new_axes) == len(_perm(t)):
            return reduced  # an identity permutation, or only size-1 dims left
        return op.Transpose(reduced, perm=self._out_perm)


def transpose_rules() -> RewriteRuleSet:
    """Transpose sinking rules (pairs then cancel via the shipped TransposeTranspose)."""
    rules = [UnaryTranspose.rule(name) for name in UNARY]
    rules += [BinaryTranspose.rule(name) for name in BINARY]
    rules += [BinaryTransposeConstant.rule(name, first) for name in BINARY for first in (1, 0)]
    rules += [ReduceTranspose.rule(name) for name in REDUCE]
    return RewriteRuleSet(rules)
