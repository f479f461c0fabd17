"""No-op removal rules the shipped onnxscript rules lack.

- ``Pad(x, pads)`` with every pad 0 -> ``x``
- ``Slice(x, starts, ends, axes, steps)`` taking everything on every listed
  axis (start 0, step 1, end >= dim or INT64_MAX) -> ``x``; onnxscript's
  ``collapse_slice_rule`` only handles a single scalar axis
- ``Tile(x, repeats)`` with every repeat 1 -> ``x``

Identity, Dropout, same-type Cast, same-shape Reshape/Expand, identity Transpose,
one-input Concat, ``x+0``, ``x*1`` are already removed by onnxscript's constant
folder and ``_no_op``/``basic_rules``, and by onnx_ir's identity elimination.
"""

from __future__ import annotations

import numpy as np
from onnxscript.rewriter import MatchResult, RewriteRuleClassBase, RewriteRuleSet

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


def noop_rules() -> RewriteRuleSet:
    """crossgraph's extra no-op rules (Pad, Slice, Tile)."""
    return RewriteRuleSet([PadZeros.rule(), SliceAll.rule(), TileOnes.rule()])
