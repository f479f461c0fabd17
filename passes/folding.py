"""Constant folding: onnxscript's folder, with two changes.

1. ``ConstantOfShape`` with a constant shape is folded under the same size
   cap as every other op. onnxscript never folds it, to keep big fills out of
   the file; but exporters compute shapes with it (``Where(Equal(shape, -1),
   ConstantOfShape(...), shape)`` in front of an ``Expand``), and models
   built with generated weights fill them with it: the whole computation
   folds once it does (and BatchNormalization folds into the weights).
2. ``GatherElements`` is left to :mod:`passes.rules.shapes`, which folds it with
   numpy: onnx's reference implementation, which this folder evaluates with,
   fails on common inputs and logs a warning each time.
3. Per-node shape inference is skipped for a node whose outputs already have
   an element type and a fully static shape: inference cannot refine them,
   and it is the folder's main cost (it serializes every node to run onnx's
   C++ inference). Nodes with any symbolic or unknown output dim are still
   inferred, every round, so a dim that becomes known is propagated.
"""

from __future__ import annotations

import functools
import math

from onnxscript.optimizer import _constant_folding

import ir
from passes.rules._util import const_array


class FoldConstantsPass(_constant_folding.FoldConstantsPass):
    """onnxscript's ``FoldConstantsPass`` (shape inference on), with the changes above.

    Args:
        size_limit: the most elements an input or a result of a folded op may have.
    """

    def __init__(self, *, size_limit: int) -> None:
        super().__init__(
            shape_inference=True,
            input_size_limit=size_limit,
            output_size_limit=size_limit,
            should_fold=functools.partial(_should_fold, size_limit=size_limit),
        )

    def _do_inference(self, node: ir.Node) -> None:
        if all(_is_fully_known(output) for output in node.outputs):
            return
        super()._do_inference(node)


def _is_fully_known(value: ir.Value) -> bool:
    if value.type is None or value.shape is None:
        return False
    return all(isinstance(d, int) for d in value.shape.dims)


def _should_fold(node: ir.Node, size_limit: int) -> bool | None:
    """True for a ConstantOfShape of a constant shape under the limit, False for
    GatherElements, None (onnxscript decides) otherwise."""
    if node.domain not in ("", "ai.onnx"):
        return None
    if node.op_type == "GatherElements":
        return False
    if node.op_type != "ConstantOfShape":
        return None
    shape = const_array(node.inputs[0]) if node.inputs else None
    if shape is None or shape.ndim != 1 or (shape < 0).any():
        return None
    return True if math.prod(int(d) for d in shape) <= size_limit else None
