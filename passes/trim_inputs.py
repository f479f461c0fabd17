"""Trailing empty inputs dropped: ``Conv(x, W, "")`` -> ``Conv(x, W)``.

ONNX lets a node omit trailing optional inputs or give them as ``""``; both
mean the same. Front ends (and the TorchScript exporter for a bias-free
``Conv``) write the empty name, and rules that test ``len(node.inputs) > 2``
then read ``None`` as a bias: onnxscript's BatchNormalization folding crashes
on it. Dropping the empty tail makes both spellings one.
"""

from __future__ import annotations

import ir


class TrimEmptyInputsPass(ir.passes.InPlacePass):
    """Drops trailing ``None`` inputs of every node, subgraphs included."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        modified = False
        for node in ir.traversal.RecursiveGraphIterator(model.graph):
            modified |= _try_trim(node)
        for function in model.functions.values():
            for node in ir.traversal.RecursiveGraphIterator(function):
                modified |= _try_trim(node)
        return ir.passes.PassResult(model, modified)


def _try_trim(node: ir.Node) -> bool:
    size = len(node.inputs)
    while size and node.inputs[size - 1] is None:
        size -= 1
    if size == len(node.inputs):
        return False
    node.resize_inputs(size)
    return True
