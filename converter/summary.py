"""A model's summary for ``crossgraph inspect``: signature, op histogram, parameters."""

from __future__ import annotations

from collections import Counter
from typing import Any

import ir


def dims_text(shape: ir.Shape | None) -> str:
    """``[batch, 3, 224, 224]``; ``?`` for an unnamed dynamic dim; ``unknown`` for unknown rank."""
    if shape is None:
        return "unknown"
    parts = []
    for d in shape:
        if isinstance(d, int):
            parts.append(str(d))
        else:
            parts.append(d.value if getattr(d, "value", None) else "?")
    return "[" + ", ".join(parts) + "]"


def _type_text(value: ir.Value) -> str:
    t = value.type
    if t is None:
        return "unknown"
    if isinstance(t, ir.TensorType):
        return t.dtype.name.lower()
    return str(t)


def summarize(model: ir.Model) -> dict[str, Any]:
    """A JSON-serializable summary of ``model``."""
    graph = model.graph
    initializers = set(graph.initializers)
    ops: Counter[str] = Counter()
    subgraphs = 0
    for node in ir.traversal.RecursiveGraphIterator(graph):
        ops[node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}::{node.op_type}"] += 1
        subgraphs += sum(
            1 if a.type == ir.AttributeType.GRAPH else len(a.value)
            for a in node.attributes.values()
            if not a.is_ref() and a.type in (ir.AttributeType.GRAPH, ir.AttributeType.GRAPHS)
        )
    params = 0
    nbytes = 0
    external = 0
    for g in model.graphs():
        for value in g.initializers.values():
            tensor = value.const_value
            if tensor is None:
                continue
            params += tensor.size
            nbytes += tensor.nbytes
            external += isinstance(tensor, ir.ExternalTensor)
    return {
        "name": graph.name,
        "producer": " ".join(x for x in (model.producer_name, model.producer_version) if x),
        "ir_version": model.ir_version,
        "opset_imports": dict(model.opset_imports),
        "inputs": [
            {"name": v.name, "dtype": _type_text(v), "shape": dims_text(v.shape)}
            for v in graph.inputs if v.name not in initializers
        ],
        "outputs": [{"name": v.name, "dtype": _type_text(v), "shape": dims_text(v.shape)} for v in graph.outputs],
        "symbols": ir.symbolic_dims(model),
        "nodes": sum(ops.values()),
        "subgraphs": subgraphs,
        "functions": [f"{f.domain}::{f.name}" for f in model.functions.values()],
        "op_histogram": dict(ops.most_common()),
        "parameters": params,
        "parameter_bytes": nbytes,
        "external_tensors": external,
    }


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"
