"""Parallel MatMuls of one input merged: ``x @ Wq, x @ Wk, x @ Wv`` -> ``Split(x @ [Wq|Wk|Wv])``.

Attention projects one activation with three (or more) weight matrices;
one MatMul with the weights concatenated along the columns computes the same
numbers in one kernel call, and a ``Split`` hands each consumer its slice:

    MatMul(x, W1) ... MatMul(x, Wk)          -> Split(MatMul(x, Concat(W1..Wk)), [n1..nk], axis=-1)
    Add(MatMul(x, Wi), bi) for every i       -> Split(Add(MatMul(x, W), Concat(b1..bk)), ...)

Only groups of three or more are merged (two MatMuls would become two nodes),
with constant 2-D weights of one element type and row count, each used by
that MatMul alone (so the originals die and no weight bytes are duplicated),
and outputs that are not graph outputs. The bias is merged when every
MatMul's only user is an ``Add`` of a constant 1-D vector of its width.
Needs opset 13 (``Split`` with sizes as an input).
"""

from __future__ import annotations

import numpy as np
import onnx_ir.passes.common as common

import ir
from passes.rules._util import const_array, has_single_use

MIN_GROUP = 3


class MergeParallelMatMulsPass(ir.passes.InPlacePass):
    """Merges MatMuls that share their left operand into one MatMul and a Split (main graph)."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        if ir.model_opset(model) < 13:
            return ir.passes.PassResult(model, False)
        modified = False
        seen: set[ir.Value] = set()
        position = {node: i for i, node in enumerate(model.graph)}
        for node in list(model.graph):
            if node.graph is None or node.op_type != "MatMul" or node.domain not in ("", "ai.onnx"):
                continue
            x = node.inputs[0]
            if x is None or x in seen:
                continue
            seen.add(x)
            group = _group(x, position)
            if len(group) >= MIN_GROUP:
                _merge(model.graph, x, group)
                modified = True
        if modified:
            common.NameFixPass()(model)  # names the values the merge created
        return ir.passes.PassResult(model, modified)


def _group(x: ir.Value, position: dict[ir.Node, int]) -> list[ir.Node]:
    """The mergeable MatMuls of the main graph reading ``x`` as their left operand, in graph order."""
    candidates = []
    for use in x.uses():
        node = use.node
        if use.idx != 0 or node.op_type != "MatMul" or node.domain not in ("", "ai.onnx"):
            continue
        if node in position and node not in candidates and _mergeable(node):
            candidates.append(node)
    if not candidates:
        return []
    first = candidates[0].inputs[1]
    key = (first.dtype, first.const_value.shape[0])
    group = [n for n in candidates if (n.inputs[1].dtype, n.inputs[1].const_value.shape[0]) == key]
    return sorted(group, key=position.__getitem__)


def _mergeable(node: ir.Node) -> bool:
    weight = node.inputs[1]
    if weight is None or const_array(weight) is None or weight.const_value.shape.rank() != 2:
        return False
    if len(weight.uses()) != 1 or weight.is_graph_output() or weight.is_graph_input():
        return False
    return not node.outputs[0].is_graph_output()


def _bias(node: ir.Node) -> tuple[ir.Node, np.ndarray] | None:
    """The ``Add`` of a constant vector of the MatMul's width that is its only user, if any."""
    out = node.outputs[0]
    if not has_single_use(out):
        return None
    add = next(iter(out.uses())).node
    if (
        add.op_type != "Add"
        or add.domain not in ("", "ai.onnx")
        or add.outputs[0].is_graph_output()
    ):
        return None
    other = add.inputs[1] if add.inputs[0] is out else add.inputs[0]
    vector = const_array(other)
    width = node.inputs[1].const_value.shape[1]
    if vector is None or vector.shape != (width,) or other.dtype != out.dtype:
        return None
    return add, vector


def _merge(graph: ir.Graph, x: ir.Value, group: list[ir.Node]) -> None:
    weights = [const_array(node.inputs[1]) for node in group]
    biases = [_bias(node) for node in group]
    with_bias = all(b is not None for b in biases)
    tails = [b[0] for b in biases] if with_bias else group  # the nodes whose outputs are replaced
    new_nodes = []

    def constant(array: np.ndarray) -> ir.Value:
        node = ir.node("Constant", [], attributes={"value": ir.tensor(array)})
        new_nodes.append(node)
        return node.outputs[0]

    product = ir.node("MatMul", [x, constant(np.concatenate(weights, axis=1))])
    new_nodes.append(product)
    merged = product.outputs[0]
    if with_bias:
        add = ir.node("Add", [merged, constant(np.concatenate([b[1] for b in biases]))])
        new_nodes.append(add)
        merged = add.outputs[0]
    sizes = constant(np.array([w.shape[1] for w in weights], dtype=np.int64))
    split = ir.node("Split", [merged, sizes], attributes={"axis": -1}, num_outputs=len(group))
    new_nodes.append(split)
    graph.insert_before(group[0], new_nodes)
    for old, new in zip((t.outputs[0] for t in tails), split.outputs, strict=True):
        new.shape, new.type = old.shape, old.type
        old.replace_all_uses_with(new)
    graph.remove([*tails, *group] if with_bias else group, safe=True)
