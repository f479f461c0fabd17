"""Shape arithmetic the constant folder leaves: folded where the values are known.

1. ``Gather(Shape(x), i)`` -> the constant dims when ``x``'s dims at ``i`` are
   known ints, for a scalar ``i`` as well as a 1-D one. onnxscript's folder
   handles only 1-D indices, and exporters read one dim at a time
   (``x.size(2)`` is ``Gather(Shape(x), 2)``, a scalar), so the ``Div``,
   ``Cast``, ``Pow`` and ``Unsqueeze`` computed from it stayed in the graph.
2. ``GatherElements`` of two constants -> their value. onnx's reference
   implementation, which the folder evaluates with, fails on common inputs
   (``data[1, 512]``, ``indices[1, 32]``); numpy's ``take_along_axis`` does not.
"""

from __future__ import annotations

import numpy as np
from onnxscript.rewriter import MatchResult, RewriteRuleClassBase, RewriteRuleSet

import ir
from passes.rules._util import const_array

# The largest GatherElements result folded (elements): shape tensors and masks, not weights.
MAX_FOLDED_ELEMENTS = 1 << 16


def _attr_int(node: ir.Node, name: str, default: int | None) -> int | None:
    attr = node.attributes.get(name)
    return default if attr is None else attr.as_int()


class GatherOfShape(RewriteRuleClassBase):
    """Gather(Shape(x, start, end), i, axis=0) -> Constant(dims) when those dims are known."""

    # The Shape node is not in the pattern: it usually has other users, and
    # the rewriter would refuse a match whose inner nodes it cannot remove.
    def pattern(self, op, shape, indices):
        return op.Gather(shape, indices, _allow_other_attributes=True, _outputs=["gathered"])

    def check(self, context, shape, indices, gathered) -> MatchResult:
        node = shape.producer()
        if node is None or node.op_type != "Shape" or node.domain not in ("", "ai.onnx"):
            return MatchResult().fail("not a gather from Shape")
        if _attr_int(gathered.producer(), "axis", 0) != 0:
            return MatchResult().fail("not a gather along the shape vector")
        x, index = node.inputs[0], const_array(indices)
        if x is None or x.shape is None or index is None or index.ndim > 1:
            return MatchResult().fail("input rank or indices unknown")
        dims = list(x.shape.dims)[_attr_int(node, "start", 0) : _attr_int(node, "end", None)]
        if not dims or np.any(index < -len(dims)) or np.any(index >= len(dims)):
            return MatchResult().fail("index out of range")
        picked = [dims[i] for i in index.reshape(-1).tolist()]
        if not all(isinstance(d, int) for d in picked):
            return MatchResult().fail("a gathered dim is symbolic")
        self._value = np.array(picked, dtype=np.int64).reshape(index.shape)
        return MatchResult()

    def rewrite(self, op, shape, indices, gathered):
        return op.Constant(value=ir.tensor(self._value))


class GatherElementsOfConstants(RewriteRuleClassBase):
    """GatherElements(constant data, constant indices) -> Constant."""

    def pattern(self, op, data, indices):
        return op.GatherElements(data, indices, _allow_other_attributes=True, _outputs=["out"])

    def check(self, context, data, indices, out) -> MatchResult:
        values, index = const_array(data), const_array(indices)
        if values is None or index is None:
            return MatchResult().fail("data or indices not constant")
        if index.size > MAX_FOLDED_ELEMENTS or values.ndim != index.ndim or values.ndim == 0:
            return MatchResult().fail("result too big, or ranks differ")
        axis = _attr_int(out.producer(), "axis", 0) % values.ndim
        size = values.shape[axis]
        others = [(d, n) for d, n in enumerate(index.shape) if d != axis]
        if any(n > values.shape[d] for d, n in others):
            return MatchResult().fail("indices larger than data off the gather axis")
        if np.any(index < -size) or np.any(index >= size):
            return MatchResult().fail("index out of range")
        # Off the axis, output[..., j, ...] reads data[..., j, ...]: data cut to the indices' extent.
        window = tuple(slice(None) if d == axis else slice(0, n) for d, n in enumerate(index.shape))
        self._value = np.take_along_axis(
            values[window], np.where(index < 0, index + size, index), axis
        )
        return MatchResult()

    def rewrite(self, op, data, indices, out):
        return op.Constant(value=ir.tensor(self._value))


def shape_rules() -> RewriteRuleSet:
    """Shape-arithmetic folding (run at -O1, next to the constant folder)."""
    return RewriteRuleSet([GatherOfShape.rule(), GatherElementsOfConstants.rule()])
