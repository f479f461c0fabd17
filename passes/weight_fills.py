"""Weights filled in the graph by ``ConstantOfShape`` become initializers, whatever their size.

Models built with generated weights (the onnx package's ``light_*`` models)
compute each Conv/Gemm weight as ``ConstantOfShape(shape, value=v)``,
sometimes through a ``Reshape``. Constant folding leaves fills over its size
cap alone (the cap keeps ``Expand``/``Tile`` blow-ups out of the file), so
those weights stay computed: a node each, and the BatchNormalization after
such a Conv cannot fold into a weight that is not a constant.

A weight must exist at run time anyway, as big as the fill, so storing it
costs no memory at run time; it costs file size (the fill's bytes are written
out, as onnxsim and onnxslim do). This pass therefore replaces a fill whose
every use is a weight slot (:data:`WEIGHT_SLOTS`), directly or through a chain
of single-use view ops with a static output shape (Reshape, Flatten, Squeeze,
Unsqueeze; their output shapes come from shape inference, which the pipeline
runs first), by an initializer holding the filled tensor. Fills of equal
shape and value share one read-only numpy array in memory; each keeps its own
initializer, so a fold into one Conv does not touch another.

Fills anywhere else (an ``Expand`` input, a mask) are left to the folder's cap.
Only the main graph is rewritten.
"""

from __future__ import annotations

import numpy as np

import ir
from passes.rules._util import const_array, static_shape

#: The node inputs that hold a weight, by op type (default domain).
WEIGHT_SLOTS: dict[str, frozenset[int]] = {
    "Conv": frozenset({1, 2}),
    "ConvTranspose": frozenset({1, 2}),
    "Gemm": frozenset({1, 2}),
    "MatMul": frozenset({1}),
    "BatchNormalization": frozenset({1, 2, 3, 4}),
}

#: View ops a fill may pass through (the data is their input 0).
_VIEW_OPS = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze"})


class MaterializeWeightFillsPass(ir.passes.InPlacePass):
    """Replaces ``ConstantOfShape`` fills that only feed weights by initializers."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        graph = model.graph
        arrays: dict[tuple, np.ndarray] = {}
        modified = False
        for node in list(graph):
            if _is_onnx(node, "ConstantOfShape") and node.graph is graph:
                modified |= _materialize(graph, node, arrays)
        return ir.passes.PassResult(model, modified)


def _is_onnx(node: ir.Node, op_type: str) -> bool:
    return node.op_type == op_type and node.domain in ("", "ai.onnx")


def _materialize(graph: ir.Graph, node: ir.Node, arrays: dict[tuple, np.ndarray]) -> bool:
    fill = _fill_value(node)
    if fill is None:
        return False
    chain = [node]
    value = node.outputs[0]
    shape = tuple(int(d) for d in const_array(node.inputs[0]))
    while (view := _single_view_use(value)) is not None:
        chain.append(view)
        value = view.outputs[0]
        shape = static_shape(value)
    if not _only_weights(value):
        return False
    array = _filled(arrays, shape, fill)
    initializer = ir.Value(
        shape=ir.Shape(shape), type=ir.TensorType(ir.DataType.from_numpy(array.dtype))
    )
    initializer.const_value = ir.tensor(array, name=value.name)
    ir.convenience.replace_all_uses_with(value, initializer)
    graph.remove(reversed(chain), safe=True)
    initializer.name = value.name
    graph.register_initializer(initializer)
    return True


def _fill_value(node: ir.Node) -> np.ndarray | None:
    """The one-element fill of a ConstantOfShape with a constant 1-D shape, else None."""
    shape = const_array(node.inputs[0]) if node.inputs else None
    if shape is None or shape.ndim != 1 or (shape < 0).any():
        return None
    attr = node.attributes.get("value")
    if attr is None:
        return np.zeros(1, dtype=np.float32)
    array = attr.as_tensor().numpy()
    return array.reshape(-1) if array.size == 1 else None


def _single_view_use(value: ir.Value) -> ir.Node | None:
    """The view op that is ``value``'s only use (on its data input) and has a static output."""
    uses = value.uses()
    if len(uses) != 1 or value.is_graph_output():
        return None
    user, index = uses[0]
    if index != 0 or not any(_is_onnx(user, op) for op in _VIEW_OPS):
        return None
    return user if static_shape(user.outputs[0]) is not None else None


def _only_weights(value: ir.Value) -> bool:
    uses = value.uses()
    if not uses or value.is_graph_output():
        return False
    return all(
        user.domain in ("", "ai.onnx") and index in WEIGHT_SLOTS.get(user.op_type, ())
        for user, index in uses
    )


def _filled(
    arrays: dict[tuple, np.ndarray], shape: tuple[int, ...], fill: np.ndarray
) -> np.ndarray:
    key = (shape, fill.dtype.str, fill.tobytes())
    if key not in arrays:
        array = np.full(shape, fill[0], dtype=fill.dtype)
        array.flags.writeable = False
        arrays[key] = array
    return arrays[key]
