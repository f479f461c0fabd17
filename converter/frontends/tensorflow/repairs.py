"""Repairs of tf2onnx output, and the check that every op left is an ONNX op.

tf2onnx does not stop at a TF op it cannot translate: it logs "Tensorflow op
[...] is not supported" and copies the TF op into the ONNX graph unchanged
(with TF 2.21 Keras' exact GELU gives an ``Erfc`` node, which ONNX lacks).
After conversion every node is checked against ``onnx.defs``; the ops that a
repair below rewrites into ONNX ops are fixed, and all the rest are reported
together in one :class:`~converter.errors.UnsupportedOpsError`.

Repairs, one per TF op (keyed by the TF op name, in :data:`REPAIRS`):

    Erfc(x) -> Sub(1, Erf(x))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import onnx.defs

import ir
from converter.errors import UnsupportedOpsError

#: Rewrites of TF ops tf2onnx leaves in the graph, keyed by TF op name.
REPAIRS = ir.OpRegistry("tf2onnx repairs", validate=r"[A-Z][A-Za-z0-9]*")

_ONNX_DOMAINS = ("", "ai.onnx")


@REPAIRS.register("Erfc")
def erfc(node: ir.Node) -> list[ir.Node]:
    """Erfc(x) -> Sub(1, Erf(x)), the one in ``x``'s dtype."""
    (x,) = node.inputs
    dtype = x.dtype.numpy() if x.dtype is not None else np.float32
    one = ir.node("Constant", [], attributes={"value": ir.tensor(np.array(1, dtype=dtype))}, name=f"{node.name}/one")
    erf = ir.node("Erf", [x], name=f"{node.name}/Erf")
    sub = ir.node("Sub", [one.outputs[0], erf.outputs[0]], name=node.name)
    return [one, erf, sub]


def is_onnx_op(node: ir.Node, opset: int) -> bool:
    """Whether ``node`` is an op of the default ONNX domain with a schema at ``opset``."""
    if node.domain not in _ONNX_DOMAINS:
        return False
    try:
        onnx.defs.get_schema(node.op_type, opset, "")
    except onnx.defs.SchemaError:
        return False
    return True


def repair_and_check(
    model: ir.Model, opset: int, source_name: Callable[[str], str], logged: Sequence[tuple[str, str]] = ()
) -> int:
    """Repair what :data:`REPAIRS` can, then fail if any non-ONNX op remains.

    Args:
        model: tf2onnx's output, changed in place.
        opset: the opset tf2onnx converted to.
        source_name: maps a tf2onnx node name to the name reported to the user.
        logged: ``(op, TF node name)`` pairs tf2onnx reported as unsupported;
            those whose node it dropped are reported too.

    Returns:
        The number of nodes repaired.

    Raises:
        UnsupportedOpsError: listing every op left that ONNX does not define.
    """
    repaired = 0
    unsupported: list[tuple[str, str]] = []
    seen: set[str | None] = set()  # names of the non-ONNX nodes found in the graph
    for node in list(ir.traversal.RecursiveGraphIterator(model.graph)):
        if is_onnx_op(node, opset):
            continue
        seen.add(node.name)
        if node.domain in _ONNX_DOMAINS and node.op_type in REPAIRS:
            _replace(node, REPAIRS.lookup(node.op_type)(node))
            repaired += 1
        else:
            unsupported.append((node.op_type, source_name(node.name or node.op_type)))
    unsupported += [(op, source_name(name)) for op, name in logged if name not in seen]
    if unsupported:
        raise UnsupportedOpsError("TensorFlow", unsupported)
    return repaired


def _replace(node: ir.Node, new_nodes: list[ir.Node]) -> None:
    """Put ``new_nodes`` in place of ``node``; the last one's outputs replace its outputs."""
    ir.convenience.replace_nodes_and_values(
        node.graph, node, [node], new_nodes, list(node.outputs), list(new_nodes[-1].outputs)
    )
