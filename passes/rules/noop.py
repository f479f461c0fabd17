"""No-op removal rules the shipped onnxscript rules lack.

- ``Pad(x, pads)`` with every pad 0 -> ``x``
- ``Slice(x, starts, ends, axes, steps)`` taking everything on every listed
  axis (start 0, step 1, end >= dim or INT64_MAX) -> ``x``; onnxscript's
  ``collapse_slice_rule`` only handles a single scalar axis
- ``Tile(x, repeats)`` with every repeat 1 -> ``x``
- ``Reshape(x, shape)`` whose shape, with ``0`` copying a dim and one ``-1``,
  is ``x``'s own: onnxscript's folder only compares the shape literally, so
  ``Reshape(x[1, 4, 17, 32], [1, -1, 17, 32])`` stayed
- ``Dropout`` at inference (no ``training_mode``, or a constant false one;
  opset >= 7) with its mask unused -> ``x``: onnxscript removes it only from
  opset 12 on, and only in its attribute spellings
- ``x + c``, ``c + x``, ``x - c`` with ``c`` all zeros and ``x * c``, ``c * x``,
  ``x / c`` with ``c`` all ones, for a tensor ``c`` whose broadcast does not
  grow ``x`` (a zero bias, a unit scale); onnxscript's ``_no_op`` rules take
  scalars only

Identity, Dropout, same-type Cast, same-shape Expand, identity Transpose,
one-input Concat, scalar ``x+0`` and ``x*1`` are already removed by
onnxscript's constant folder and ``_no_op``/``basic_rules``, and by onnx_ir's
identity elimination.
"""

from __future__ import annotations

import numpy as np
from onnxscript.rewriter import MatchResult, RewriteRuleClassBase, RewriteRuleSet

import ir
from passes.rules._util import const_array, rank

_INT64_MAX = np.iinfo(np.int64).max


class PadZeros(RewriteRuleClassBase):
    """Pad(x, pads=0...) -> x (any mode: nothing is added)."""

    def pattern(self, op, x, pads):
        return op.Pad(x, pads, _allow_other_inputs=True, _allow_other_attributes=True)

    def check(self, context, x, pads, **_) -> MatchResult:
        values = const_array(pads)
        if values is None or values.size == 0 or np.any(values != 0):
            return MatchResult().fail("pads are not all constant zeros")
        return MatchResult()

    def rewrite(self, op, x, **_):
        return op.Identity(x)


class SliceAll(RewriteRuleClassBase):
    """Slice(x, starts=0, ends>=dims, axes, steps=1) -> x."""

    def pattern(self, op, x, starts, ends):
        return op.Slice(x, starts, ends, _allow_other_inputs=True, _outputs=["sliced"])

    def check(self, context, x, starts, ends, sliced, **_) -> MatchResult:
        node = sliced.producer()
        inputs = list(node.inputs) + [None] * (5 - len(node.inputs))
        starts_v, ends_v = const_array(starts), const_array(ends)
        if starts_v is None or ends_v is None or x.shape is None:
            return MatchResult().fail("starts/ends or input shape unknown")
        axes = const_array(inputs[3]) if inputs[3] is not None else np.arange(len(starts_v))
        steps = const_array(inputs[4]) if inputs[4] is not None else np.ones_like(starts_v)
        if axes is None or steps is None:
            return MatchResult().fail("axes/steps not constant")
        for start, end, axis, step in zip(starts_v, ends_v, axes, steps, strict=True):
            dim = x.shape[int(axis) % rank(x)]
            full_end = end == _INT64_MAX or (isinstance(dim, int) and end >= dim)
            if start != 0 or step != 1 or not full_end:
                return MatchResult().fail(f"axis {axis} is not taken whole")
        return MatchResult()

    def rewrite(self, op, x, **_):
        return op.Identity(x)


class TileOnes(RewriteRuleClassBase):
    """Tile(x, repeats=1...) -> x."""

    def pattern(self, op, x, repeats):
        return op.Tile(x, repeats)

    def check(self, context, x, repeats) -> MatchResult:
        values = const_array(repeats)
        if values is None or np.any(values != 1):
            return MatchResult().fail("repeats are not all constant ones")
        return MatchResult()

    def rewrite(self, op, x, repeats):
        return op.Identity(x)


class DropoutAtInference(RewriteRuleClassBase):
    """Dropout(x) -> x when it is not in training mode (its mask output unused)."""

    def pattern(self, op, x):
        return op.Dropout(x, _allow_other_inputs=True, _allow_other_attributes=True, _outputs=["y"])

    def check(self, context, x, y) -> MatchResult:
        node = y.producer()
        if ir.model_opset(context.model) < 7:
            return MatchResult().fail("before opset 7 Dropout's mode is an attribute")
        training = node.inputs[2] if len(node.inputs) > 2 else None
        if training is not None:
            flag = const_array(training)
            if flag is None or bool(flag.reshape(-1)[0]):
                return MatchResult().fail("training mode is on or not constant")
        if len(node.outputs) > 1 and node.outputs[1].uses():
            return MatchResult().fail("its mask is used")
        return MatchResult()

    def rewrite(self, op, x, y):
        return op.Identity(x)


class ReshapeToSameShape(RewriteRuleClassBase):
    """Reshape(x, shape) -> x when ``shape`` spells ``x``'s shape (0 copies, one -1)."""

    def pattern(self, op, x, shape):
        return op.Reshape(x, shape, _allow_other_attributes=True, _outputs=["y"])

    def check(self, context, x, shape, y) -> MatchResult:
        target = const_array(shape)
        if target is None or x.shape is None or target.ndim != 1 or len(target) != rank(x):
            return MatchResult().fail("shape not constant, or ranks differ")
        allow_zero = _allow_zero(y)
        unknown = 0
        for want, dim in zip(target.tolist(), x.shape.dims, strict=True):
            if want == dim or (want == 0 and not allow_zero):
                continue
            if want != -1 or unknown:
                return MatchResult().fail(f"dim {dim} becomes {want}")
            unknown += 1
        if unknown and 0 in x.shape.dims:
            return MatchResult().fail("-1 is ambiguous with a zero-size dim")
        return MatchResult()

    def rewrite(self, op, x, shape, y):
        return op.Identity(x)


def _allow_zero(y: ir.Value) -> bool:
    attr = y.producer().attributes.get("allowzero")
    return attr is not None and attr.as_int() == 1


class BroadcastIdentity(RewriteRuleClassBase):
    """``x op c`` (or ``c op x``) -> x for an identity tensor ``c`` that does not grow ``x``."""

    def __init__(self, op_type: str, identity: float, constant_first: bool = False) -> None:
        side = "Left" if constant_first else ""
        super().__init__(name=f"{op_type}{side}By{'Zeros' if identity == 0 else 'Ones'}")
        self._op_type, self._identity, self._constant_first = op_type, identity, constant_first

    def pattern(self, op, x, c):
        operands = (c, x) if self._constant_first else (x, c)
        return getattr(op, self._op_type)(*operands)

    def check(self, context, x, c) -> MatchResult:
        values = const_array(c)
        if values is None or values.size == 0 or np.any(values != self._identity):
            return MatchResult().fail("not a constant identity tensor")
        if x.shape is None or values.ndim > rank(x) or c.dtype != x.dtype:
            return MatchResult().fail("it may broadcast x to a bigger shape")
        dims = list(x.shape.dims)[len(x.shape.dims) - values.ndim :]
        if any(n != 1 and n != d for n, d in zip(values.shape, dims, strict=True)):
            return MatchResult().fail("it may broadcast x to a bigger shape")
        return MatchResult()

    def rewrite(self, op, x, c):
        return op.Identity(x)


def broadcast_identity_rules() -> list:
    """Add/Sub of zeros, Mul/Div by ones, constant on either side where the op commutes."""
    return [
        BroadcastIdentity.rule("Add", 0),
        BroadcastIdentity.rule("Add", 0, constant_first=True),
        BroadcastIdentity.rule("Sub", 0),
        BroadcastIdentity.rule("Mul", 1),
        BroadcastIdentity.rule("Mul", 1, constant_first=True),
        BroadcastIdentity.rule("Div", 1),
    ]


def noop_rules() -> RewriteRuleSet:
    """crossgraph's extra no-op rules (Pad, Slice, Tile, Dropout, Reshape, identity elementwise)."""
    return RewriteRuleSet(
        [
            PadZeros.rule(),
            SliceAll.rule(),
            TileOnes.rule(),
            DropoutAtInference.rule(),
            ReshapeToSameShape.rule(),
            *broadcast_identity_rules(),
        ]
    )
