"""ONNX front end: ``.onnx`` files (with external data), ``onnx.ModelProto`` and IR models.

Loading goes through onnx_ir's serde, which is lossless (names, doc strings,
metadata props, value_info, symbolic dims, subgraphs, local functions) and keeps
external data memory-mapped instead of reading it. What this module adds is
checking: a file that is not a model, a truncated or corrupt protobuf, or
external data that is missing or too short is refused with a clear error here,
not deep inside a later stage.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import onnx

import ir
from converter.errors import InputError

_HINT_EXPORT = "check that the file is a complete ONNX model (re-export or re-download it)"


def load(source: Any, *, format: str = "onnx", inputs: Any = None, **options: Any) -> ir.Model:
    """Load an ONNX model into the IR.

    Args:
        source: a path to a ``.onnx`` file, an ``onnx.ModelProto`` or an ``ir.Model``.
        format: always ``"onnx"`` here.
        inputs: unused: an ONNX model carries its own signature.

    Returns:
        The model; external tensors stay memory-mapped from their files.

    Raises:
        InputError: the file is missing, empty, not an ONNX protobuf, or its
            external data is missing.
    """
    if isinstance(source, ir.Model):
        return source
    if isinstance(source, onnx.ModelProto):
        _check_proto(source, "<ModelProto>")
        return ir.serde.deserialize_model(source)
    path = pathlib.Path(os.fspath(source))
    if not path.is_file():
        raise InputError(f"{path}: not a file", "give the path of a .onnx model")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty", _HINT_EXPORT)
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf raises DecodeError, but also RuntimeError/ValueError
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InputError(f"{path}: not a valid ONNX protobuf ({reason})", _HINT_EXPORT) from None
    _check_proto(proto, str(path))
    try:
        model = ir.serde.deserialize_model(proto)
    except Exception as e:
        raise InputError(f"{path}: the ONNX model cannot be read ({e})", _HINT_EXPORT) from None
    ir.external_data.set_base_dir(model.graph, str(path.parent))
    _check_external_data(model, path)
    return model


def _check_proto(proto: onnx.ModelProto, where: str) -> None:
    if not proto.HasField("graph") or proto.ir_version == 0:
        raise InputError(f"{where}: parses as protobuf but is not an ONNX model (no graph or IR version)", _HINT_EXPORT)
    if not proto.opset_import:
        raise InputError(f"{where}: the ONNX model imports no opset", _HINT_EXPORT)


def _check_external_data(model: ir.Model, path: pathlib.Path) -> None:
    """Every external tensor's file exists and is long enough (without reading it)."""
    missing: dict[str, list[str]] = {}
    sizes: dict[str, int] = {}
    for graph in model.graphs():
        for value in graph.initializers.values():
            tensor = value.const_value
            if not isinstance(tensor, ir.ExternalTensor):
                continue
            file = os.path.join(tensor.base_dir, tensor.location)
            if file not in sizes:
                sizes[file] = os.path.getsize(file) if os.path.isfile(file) else -1
            end = (tensor.offset or 0) + (tensor.length or 0)
            if sizes[file] < 0 or sizes[file] < end:
                missing.setdefault(tensor.location, []).append(value.name or "?")
    if missing:
        parts = [f"{loc} ({len(names)} tensor(s), e.g. {names[0]!r})" for loc, names in missing.items()]
        raise InputError(
            f"{path}: external data missing or truncated: {'; '.join(parts)}",
            f"put the data file(s) beside the model in {path.parent}",
        )
