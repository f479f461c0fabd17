"""Initializers listed as graph inputs in IR version < 4 models: constants, not inputs.

Before IR version 4 every initializer had to be listed among the graph's
inputs as well, so the listing says nothing about the value being meant to be
fed: runtimes treat such initializers as constants (onnxruntime does for IR < 4).
Passes must not: a graph input may be overridden, so the constant folder
leaves alone every node that reads one. This pass takes those initializers
out of the inputs and raises the IR version to 4, where an initializer need
not be an input; the model's real inputs, and what it computes, are unchanged.
Models of IR version 4 and later are left alone: there, an initializer that
is also an input is a default the caller may override.
"""

from __future__ import annotations

import ir

FIRST_IR_VERSION_WITHOUT_LISTING = 4


class InitializerInputsPass(ir.passes.InPlacePass):
    """Drops initializers from the graph inputs of an IR < 4 model (then IR version 4)."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        if model.ir_version >= FIRST_IR_VERSION_WITHOUT_LISTING:
            return ir.passes.PassResult(model, False)
        graph = model.graph
        real = [v for v in graph.inputs if not (v.is_initializer() and v.const_value is not None)]
        graph.inputs.clear()
        graph.inputs.extend(real)
        model.ir_version = FIRST_IR_VERSION_WITHOUT_LISTING
        return ir.passes.PassResult(model, True)
