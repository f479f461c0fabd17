"""Provenance: the source framework's name for each IR node.

Front ends record, for every node they make, the name the user knows it by
(``layer1.0.conv1``, ``model/dense/MatMul``), so errors and parity reports speak
the user's language. It lives in the node's ``metadata_props`` (serialized into
``NodeProto.metadata_props``), so it survives an ONNX round trip and every pass
that keeps the node. Nodes a pass creates from others copy it with
:func:`copy_source_name`.
"""

from __future__ import annotations

import onnx_ir

SOURCE_NAME_KEY = "crossgraph.source_name"
SOURCE_FRAMEWORK_KEY = "crossgraph.source_framework"


def set_source_name(node: onnx_ir.Node, name: str, framework: str | None = None) -> None:
    """Record ``name`` (and optionally ``framework``: ``"torch"``, ``"tensorflow"``) on ``node``.

    Example:
        >>> import onnx_ir as ir
        >>> n = ir.node("Relu", [])
        >>> set_source_name(n, "layer1.0.relu", "torch")
        >>> source_name(n)
        'layer1.0.relu'
    """
    node.metadata_props[SOURCE_NAME_KEY] = name
    if framework is not None:
        node.metadata_props[SOURCE_FRAMEWORK_KEY] = framework


def source_name(node: onnx_ir.Node, default: str | None = None) -> str | None:
    """The source name recorded on ``node``; else ``default`` (node.name if not given)."""
    name = node.metadata_props.get(SOURCE_NAME_KEY)
    if name:
        return name
    return default if default is not None else node.name


def source_framework(node: onnx_ir.Node) -> str | None:
    """The framework recorded with the source name, if any."""
    return node.metadata_props.get(SOURCE_FRAMEWORK_KEY)


def copy_source_name(src: onnx_ir.Node, *dst: onnx_ir.Node) -> None:
    """Give nodes made from ``src`` (by a pass or a decomposition) its provenance."""
    for key in (SOURCE_NAME_KEY, SOURCE_FRAMEWORK_KEY):
        if key in src.metadata_props:
            for d in dst:
                d.metadata_props.setdefault(key, src.metadata_props[key])
