"""Frozen TensorFlow GraphDefs (``.pb``): a TF1-style graph of constants and ops.

Inputs and outputs are the user's (``inputs`` specs, ``outputs`` names) or, when
that is unambiguous, found in the graph: every ``Placeholder`` is an input, and
every node whose output nobody consumes is an output. The graph is wrapped as a
pruned function (``tf.compat.v1.wrap_function``) and takes the same road as
every other source.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any

import ir
from converter.errors import InputError
from converter.frontends.tensorflow import convert, signature

#: Ops that end a graph without being a model output.
_NOT_OUTPUTS = {"NoOp", "Assert", "SaveV2", "RestoreV2", "Placeholder", "Const", "VarHandleOp", "AssignVariableOp"}


def load(path: str | pathlib.Path, *, inputs: Any = None, outputs: list[str] | None = None) -> ir.Model:
    """Load the frozen GraphDef at ``path`` and convert it.

    Raises:
        InputError: the file is not a GraphDef, a named input or output is not in
            it, or the outputs cannot be found unambiguously.
    """
    import tensorflow as tf

    path = pathlib.Path(path)
    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(path.read_bytes())
    except (OSError, ValueError) as e:  # DecodeError is a ValueError
        raise InputError(f"cannot read a GraphDef from {path}: {e}") from e
    return from_graph_def(graph_def, inputs=inputs, outputs=outputs, description=str(path))


def from_graph_def(
    graph_def: Any, *, inputs: Any = None, outputs: list[str] | None = None, description: str = "GraphDef"
) -> ir.Model:
    """Convert a frozen ``GraphDef`` (see the module docstring for inputs and outputs)."""
    import tensorflow as tf

    nodes = {n.name: n for n in graph_def.node}
    inputs = _strip_tensor_suffix(inputs)
    source = _source_inputs(nodes, inputs)
    output_tensors = [_tensor_name(o) for o in outputs] if outputs else _unconsumed(graph_def)
    for tensor in output_tensors:
        if tensor.split(":")[0] not in nodes:
            raise InputError(f"{description} has no node {tensor.split(':')[0]!r}")
    if not output_tensors:
        raise InputError(f"{description}: no outputs found", "name them with outputs=[...]")
    sig, symbols = signature.build(source, inputs)

    def imported():
        tf.compat.v1.import_graph_def(graph_def, name="")

    try:
        wrapped = tf.compat.v1.wrap_function(imported, [])
        graph = wrapped.graph
        pruned = wrapped.prune(
            [graph.as_graph_element(f"{s.name}:0") for s in sig], [graph.as_graph_element(t) for t in output_tensors]
        )
    except (ValueError, TypeError, KeyError, tf.errors.OpError) as e:  # a malformed or inconsistent graph
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(f"{description}: TensorFlow cannot import the graph ({reason})",
                         "check that the file is a complete frozen GraphDef") from None
    out_names = [t[:-2] if t.endswith(":0") else t for t in output_tensors]

    def call(*values):
        return convert.as_output_dict(pruned(*values), out_names)

    traced = convert.Traced(
        tf.function(call, input_signature=sig), sig, symbols, description=description, output_order=out_names
    )
    return convert.to_ir(traced)


def _strip_tensor_suffix(inputs: Any) -> Any:
    """Specs may name a placeholder's tensor (``image:0``): the input is the node."""
    from converter.inputs import InputSpec, normalize_inputs

    specs = normalize_inputs(inputs)
    if not specs or isinstance(specs, dict):
        return specs
    return [dataclasses.replace(s, name=s.name.split(":")[0]) if isinstance(s, InputSpec) else s for s in specs]


def _tensor_name(name: str) -> str:
    return name if ":" in name else f"{name}:0"


def _source_inputs(nodes: dict[str, Any], inputs: Any) -> list[signature.SourceInput]:
    from converter.inputs import normalize_inputs

    specs = normalize_inputs(inputs) or []
    if specs:
        names = [s.name for s in specs]
        missing = [n for n in names if n not in nodes]
        if missing:
            raise InputError(f"the graph has no node {', '.join(map(repr, missing))}")
    else:
        names = [n for n, node in nodes.items() if node.op == "Placeholder"]
        if not names:
            raise InputError("the graph has no Placeholder", "name its inputs with --input NAME:SHAPE[:DTYPE]")
    return [_placeholder(nodes[n]) for n in names]


def _placeholder(node: Any) -> signature.SourceInput:
    import tensorflow as tf

    dtype = tf.as_dtype(node.attr["dtype"].type) if "dtype" in node.attr else None
    shape = None
    if "shape" in node.attr and not node.attr["shape"].shape.unknown_rank:
        shape = [d.size if d.size >= 0 else None for d in node.attr["shape"].shape.dim]
    return signature.SourceInput(node.name, shape, dtype)


def _unconsumed(graph_def: Any) -> list[str]:
    """``node:0`` for every node whose outputs no other node reads (control inputs excluded)."""
    consumed = {inp.lstrip("^").split(":")[0] for n in graph_def.node for inp in n.input}
    return [f"{n.name}:0" for n in graph_def.node if n.name not in consumed and n.op not in _NOT_OUTPUTS]
