"""Channels-last graph inputs and outputs for ``nhwc_io``: Transpose nodes at the IR's edges.

The SavedModel back end's layout tracking then absorbs them: a 4-D NCHW model
whose inputs and outputs are wrapped this way has no TRANSPOSE left in its
``.tflite`` file.
"""

from __future__ import annotations

import ir

TO_NHWC = (0, 2, 3, 1)
TO_NCHW = (0, 3, 1, 2)


def wrap_nhwc_io(model: ir.Model) -> dict[str, dict[str, list[int]]]:
    """Make the 4-D graph inputs and outputs NHWC with Transpose nodes, keeping their names.

    Args:
        model: modified in place (clone it first to keep the original).

    Returns:
        ``{"inputs": {name: perm}, "outputs": {name: perm}}``: the permutation that
        takes the source's layout to the file's (NCHW -> NHWC); ``{}`` when the
        model has no 4-D input or output.
    """
    layouts: dict[str, dict[str, list[int]]] = {"inputs": {}, "outputs": {}}
    for i, value in enumerate(list(model.graph.inputs)):
        if not value.is_initializer() and value.shape is not None and len(value.shape) == 4:
            layouts["inputs"][_wrap_input(model.graph, i, value)] = list(TO_NHWC)
    for i, value in enumerate(list(model.graph.outputs)):
        if value.shape is not None and len(value.shape) == 4:
            layouts["outputs"][_wrap_output(model.graph, i, value)] = list(TO_NHWC)
    return layouts if layouts["inputs"] or layouts["outputs"] else {}


def _wrap_input(graph: ir.Graph, i: int, value: ir.Value) -> str:
    """Graph input ``i`` becomes an NHWC value of the same name, transposed to ``value`` (renamed)."""
    name = value.name
    value.name = f"{name}__nchw"
    outer = ir.Value(name=name, shape=_permuted(value.shape, TO_NHWC), type=value.type)
    node = ir.Node("", "Transpose", [outer], attributes=[ir.AttrInt64s("perm", TO_NCHW)], name=f"{name}__to_nchw")
    value.replace_all_uses_with(node.outputs[0])
    node.outputs[0].name, node.outputs[0].shape, node.outputs[0].type = value.name, value.shape, value.type
    graph.inputs[i] = outer
    if len(graph):
        graph.insert_before(graph[0], node)
    else:
        graph.append(node)
    return name


def _wrap_output(graph: ir.Graph, i: int, value: ir.Value) -> str:
    """Graph output ``i`` becomes an NHWC Transpose of ``value`` (renamed), under the old name."""
    name = value.name
    value.name = f"{name}__nchw"
    node = ir.Node("", "Transpose", [value], attributes=[ir.AttrInt64s("perm", TO_NHWC)], name=f"{name}__to_nhwc")
    out = node.outputs[0]
    out.name, out.shape, out.type = name, _permuted(value.shape, TO_NHWC), value.type
    graph.append(node)
    graph.outputs[i] = out
    return name


def _permuted(shape: ir.Shape, perm: tuple[int, ...]) -> ir.Shape:
    return ir.Shape([shape[p] for p in perm])
