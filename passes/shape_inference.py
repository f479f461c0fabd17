"""Shape and type inference through ``onnx.shape_inference``, linear in graph size.

onnx_ir's ``ShapeInferencePass`` does the same job, but two parts of it grow
faster than the graph: each initializer it hides from the serialized model is
looked up in the list of graph inputs (quadratic in the number of weights),
and the inferred model is deserialized whole into a second IR just to read
its value types back. Here the weights are left out of the proto without
touching the graph's inputs, and the inferred types are read straight from
the proto's ``value_info``, by name, one graph (and subgraph) at a time.

What is merged: a dim becomes an int when inference proves it; a dim the
model already names (``batch``) keeps its name rather than taking one of
onnx's ``unk__N``; an unknown rank takes the inferred shape. Types missing
from the model are filled in. If inference raises (a strict-mode conflict,
an op without a schema), the model is left as it was, as onnx_ir's pass does.
"""

from __future__ import annotations

import logging

import onnx

import ir

logger = logging.getLogger(__name__)

# Initializers above this many bytes are sent to onnx as typed inputs without
# their data (as onnx_ir does): the C++ side needs their shapes, not values.
BIG_TENSOR_BYTES = 1000


class ShapeInferencePass(ir.passes.InPlacePass):
    """Infers the shape and element type of every value with onnx's inference (data propagation on)."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        try:
            proto = _serialize_without_weights(model)
            inferred = onnx.shape_inference.infer_shapes(
                proto, check_type=True, strict_mode=True, data_prop=True
            )
        except Exception as error:  # noqa: BLE001  (inference is best effort, as in onnx_ir)
            logger.info("shape inference failed, model left unchanged: %s", error)
            return ir.passes.PassResult(model, False)
        modified = _merge_graph(model.graph, inferred.graph)
        return ir.passes.PassResult(model, modified)


def _serialize_without_weights(model: ir.Model) -> onnx.ModelProto:
    """The model as a proto whose big main-graph initializers are typed inputs without data.

    The initializers are taken out of ``graph.initializers`` only while the
    model is serialized and put back (in their order) before returning.
    """
    initializers = model.graph.initializers
    saved = list(initializers.values())
    big = [v for v in saved if _is_big(v)]
    for value in big:
        initializers.pop(value.name)
    try:
        proto = ir.to_proto(model)
    finally:
        initializers.clear()
        for value in saved:
            initializers[value.name] = value
    for value in big:
        if not value.is_graph_input():
            info = proto.graph.input.add()
            info.name = value.name
            info.type.CopyFrom(_type_proto(value))
    return proto


def _is_big(value: ir.Value) -> bool:
    tensor = value.const_value
    return tensor is not None and tensor.nbytes > BIG_TENSOR_BYTES


def _type_proto(value: ir.Value) -> onnx.TypeProto:
    tensor = value.const_value
    dtype = value.dtype if value.dtype is not None else tensor.dtype
    shape = value.shape if value.shape is not None else tensor.shape
    type_proto = ir.serde.serialize_type(ir.TensorType(dtype))
    ir.serde.serialize_shape_into(type_proto, shape)
    return type_proto


def _merge_graph(graph: ir.Graph, proto: onnx.GraphProto) -> bool:
    """Copy the inferred types of ``proto`` onto ``graph``'s values; recurse into subgraphs."""
    inferred = {
        info.name: info.type
        for infos in (proto.input, proto.output, proto.value_info)
        for info in infos
        if info.type.HasField("tensor_type")
    }
    modified = False
    for value in graph.inputs:
        modified |= _merge_value(value, inferred)
    for node, node_proto in zip(graph, proto.node, strict=False):
        for value in node.outputs:
            modified |= _merge_value(value, inferred)
        modified |= _merge_subgraphs(node, node_proto)
    return modified


def _merge_subgraphs(node: ir.Node, node_proto: onnx.NodeProto) -> bool:
    if not any(
        a.type in (ir.AttributeType.GRAPH, ir.AttributeType.GRAPHS)
        for a in node.attributes.values()
    ):
        return False
    protos = {a.name: a for a in node_proto.attribute}
    modified = False
    for name, attr in node.attributes.items():
        if name not in protos:
            continue
        if attr.type == ir.AttributeType.GRAPH:
            modified |= _merge_graph(attr.value, protos[name].g)
        elif attr.type == ir.AttributeType.GRAPHS:
            for sub, sub_proto in zip(attr.value, protos[name].graphs, strict=False):
                modified |= _merge_graph(sub, sub_proto)
    return modified


def _merge_value(value: ir.Value, inferred: dict[str, onnx.TypeProto]) -> bool:
    type_proto = inferred.get(value.name)
    if type_proto is None:
        return False
    modified = False
    if value.type is None:
        value.type = ir.serde.deserialize_type_proto_for_type(type_proto)
        modified = True
    if type_proto.tensor_type.HasField("shape"):
        shape = _merged_shape(value.shape, ir.serde.deserialize_type_proto_for_shape(type_proto))
        if shape is not None:
            value.shape = shape
            modified = True
    return modified


def _merged_shape(current: ir.Shape | None, inferred: ir.Shape | None) -> ir.Shape | None:
    """The shape to set, or None when ``current`` is at least as precise as ``inferred``."""
    if inferred is None or current is None:
        return inferred
    if current.rank() != inferred.rank():
        return None  # strict-mode inference would have raised; keep what the model says
    dims = [_merged_dim(a, b) for a, b in zip(current.dims, inferred.dims, strict=True)]
    if dims == list(current.dims):
        return None
    return ir.Shape(dims)


def _merged_dim(current, inferred):
    if isinstance(current, int):
        return current
    if isinstance(inferred, int):
        return inferred
    if current.value is None and inferred.value is not None:
        return inferred  # an unknown dim takes onnx's name, as onnx_ir's pass would
    return current
