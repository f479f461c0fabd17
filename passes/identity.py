"""Identity elimination that keeps every graph output its own named value.

``y = Identity(x)`` -> uses of ``y`` read ``x`` (and ``x`` takes the name ``y`` when
``y`` is a graph output): onnx_ir's ``IdentityEliminationPass``, with two more cases
where the node must stay, which that pass does not guard:

4. ``x`` is already an output of the same graph: eliminating would list one value
   twice among the outputs under one name, and one output name would be lost (a
   Scan body emitting its state as a scan output, ``return y, y.clone()``);
5. ``x`` is defined in an enclosing graph (a subgraph returning a captured value):
   renaming it would rename a value of the outer graph.
"""

from __future__ import annotations

import onnx_ir.passes.common as common

import ir


def _owner(value: ir.Value) -> ir.Graph | ir.Function | None:
    producer = value.producer()
    return producer.graph if producer is not None else value.graph


class IdentityEliminationPass(common.IdentityEliminationPass):
    """Removes Identity nodes as onnx_ir's pass does, except cases 4 and 5 of the module docstring."""

    def _try_eliminate_identity_node(self, node: ir.Node) -> bool:
        if node.op_type == "Identity" and node.domain == "" and len(node.inputs) == 1 and len(node.outputs) == 1:
            source, output = node.inputs[0], node.outputs[0]
            if source is not None and output.is_graph_output():
                graph = node.graph
                if graph is not None and (source in graph.outputs or _owner(source) is not graph):
                    return False
        return super()._try_eliminate_identity_node(node)
