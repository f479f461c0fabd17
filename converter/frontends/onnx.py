"""ONNX front end: ``.onnx`` files (with external data), ``onnx.ModelProto`` and IR models.

Loading goes through onnx_ir's serde, which is lossless (names, doc strings,
metadata props, value_info, symbolic dims, subgraphs, local functions) and keeps
external data memory-mapped instead of reading it. What this module adds is
checking: a file that is not a model, a truncated or corrupt protobuf, or
external data that is missing or too short is refused with a clear error here,
not deep inside a later stage. What ONNX allows, or onnxruntime accepts, in more
than one form is brought to one on loading, so that kernels, passes and back ends
see one form only:

- calls of the model's local functions (onnxscript models, ``onnx.helper.make_function``)
  are inlined;
- the default domain spelled ``ai.onnx`` becomes ``""``;
- sparse initializers become dense ones (onnx_ir keeps dense initializers only);
- nodes out of topological order (onnxruntime sorts them) are sorted; a cycle is refused.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import onnx
import onnx_ir.passes.common as ir_common

import ir
from converter.errors import InputError, UnsupportedOpsError

_HINT_EXPORT = "check that the file is a complete ONNX model (re-export or re-download it)"


def load(source: Any, *, format: str = "onnx", inputs: Any = None, **options: Any) -> ir.Model:
    """Load an ONNX model into the IR.

    Args:
        source: a path to a ``.onnx`` file, an ``onnx.ModelProto`` or an ``ir.Model``.
        format: always ``"onnx"`` here.
        inputs: optional input specs (``NAME:SHAPE``): they fill in dims the file leaves
            unknown or names them (the model's own element types are kept); a fixed
            dim or rank they contradict is refused.

    Returns:
        The model; external tensors stay memory-mapped from their files.

    Raises:
        InputError: the file is missing, empty, not an ONNX protobuf, or its
            external data is missing.
    """
    if isinstance(source, ir.Model):
        return source
    model = _load(source)
    if inputs is not None:
        _apply_specs(model, inputs)
    return model


def _load(source: Any) -> ir.Model:
    if isinstance(source, onnx.ModelProto):
        _check_proto(source, "<ModelProto>")
        model = ir.serde.deserialize_model(_normalized(source))
        _check_tensor_sizes(model, "<ModelProto>")
        _check_structure(model, "<ModelProto>")
        _inline_functions(model, "<ModelProto>")
        return model
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
        model = ir.serde.deserialize_model(_normalized(proto))
    except Exception as e:
        raise InputError(f"{path}: the ONNX model cannot be read ({e})", _HINT_EXPORT) from None
    ir.external_data.set_base_dir(model.graph, str(path.parent))
    _check_external_data(model, path)
    _check_tensor_sizes(model, str(path))
    _check_structure(model, str(path))
    _inline_functions(model, str(path))
    return model


def _apply_specs(model: ir.Model, inputs: Any) -> None:
    """Give graph inputs the shapes of the matching specs.

    Example arrays (parity data) are not specs: their sizes must not freeze dynamic dims.
    """
    from converter.inputs import InputSpec, normalize_inputs, set_model_symbol_bounds, symbol_bounds

    specs = normalize_inputs(inputs)
    if not isinstance(specs, list):
        return
    specs = [s for s in specs if isinstance(s, InputSpec)]
    by_name = {v.name: v for v in model.graph.inputs}
    for spec in specs:
        value = by_name.get(spec.name)
        if value is None:
            raise InputError(f"--input {spec.name!r}: the model has no such input", f"its inputs: {', '.join(by_name)}")
        if spec.shape is not None:
            value.shape = _merged_shape(value, spec.shape)
    bounds = symbol_bounds(specs)
    if bounds:
        set_model_symbol_bounds(model, bounds)


def _merged_shape(value: ir.Value, dims: tuple[Any, ...]) -> ir.Shape:
    """The spec's dims where it gives them (``None`` keeps the model's); fixed dims must agree."""
    old = value.shape
    if old is not None and len(old) != len(dims):
        raise InputError(f"--input {value.name!r}: rank {len(dims)}, but the model's input has rank {len(old)} ({old})")
    merged = []
    for axis, dim in enumerate(dims):
        known = old[axis] if old is not None else None
        if isinstance(known, int) and dim is not None and dim != known:
            raise InputError(f"--input {value.name!r}: dim {axis} is {dim}, but the model fixes it to {known}")
        merged.append(known if dim is None else dim)
    return ir.Shape(merged)


def _check_proto(proto: onnx.ModelProto, where: str) -> None:
    if not proto.HasField("graph") or proto.ir_version == 0:
        raise InputError(f"{where}: parses as protobuf but is not an ONNX model (no graph or IR version)", _HINT_EXPORT)
    if not proto.opset_import:
        raise InputError(f"{where}: the ONNX model imports no opset", _HINT_EXPORT)
    _check_map_types(proto)


#: ai.onnx.ml ops whose inputs or outputs are maps (or sequences of maps).
_MAP_OPS = ("ZipMap", "DictVectorizer", "CastMap")


def _check_map_types(proto: onnx.ModelProto) -> None:
    """Refuse map-typed ops up front: the IR holds tensors, sequences and optionals only.

    scikit-learn classifiers exported by skl2onnx end in ZipMap unless told otherwise,
    so the hint gives the export option that yields plain tensors.
    """
    found = [(f"ai.onnx.ml::{n.op_type}", n.name) for n in proto.graph.node
             if n.domain == "ai.onnx.ml" and n.op_type in _MAP_OPS]
    if found:
        raise UnsupportedOpsError(
            "ONNX", found,
            hint="these ops take or return maps, which crossgraph cannot represent; for a scikit-learn "
                 "classifier re-export with skl2onnx's option zipmap=False (label and probability tensors)",
        )


def _normalized(proto: onnx.ModelProto) -> onnx.ModelProto:
    """``proto`` with ``ai.onnx`` spelled ``""`` and sparse initializers dense (a copy when changed)."""
    graphs = list(_graphs(proto))
    aliased = any(n.domain == "ai.onnx" for g in graphs for n in g.node) or any(
        o.domain == "ai.onnx" for o in proto.opset_import)
    if not aliased and not any(g.sparse_initializer for g in graphs):
        return proto
    proto = onnx.ModelProto.FromString(proto.SerializeToString())
    for graph in _graphs(proto):
        for node in graph.node:
            if node.domain == "ai.onnx":
                node.domain = ""
        for sparse in graph.sparse_initializer:
            graph.initializer.append(_dense(sparse))
        graph.ClearField("sparse_initializer")
    for function in proto.functions:
        for node in function.node:
            if node.domain == "ai.onnx":
                node.domain = ""
    for imports in [proto.opset_import, *(f.opset_import for f in proto.functions)]:
        _merge_default_domain(imports)
    return proto


def _graphs(proto: onnx.ModelProto) -> Any:
    """The main graph and every subgraph (If/Loop/Scan bodies), nested ones too, and functions' subgraphs."""
    stack = [proto.graph] + [a.g for f in proto.functions for n in f.node for a in n.attribute if a.HasField("g")]
    while stack:
        graph = stack.pop()
        yield graph
        for node in graph.node:
            stack.extend(a.g for a in node.attribute if a.type == onnx.AttributeProto.GRAPH)
            stack.extend(a.graphs for a in node.attribute if a.type == onnx.AttributeProto.GRAPHS)


def _merge_default_domain(imports: Any) -> None:
    """An ``ai.onnx`` import becomes the ``""`` import (the newer version when both appear)."""
    versions = [o.version for o in imports if o.domain in ("", "ai.onnx")]
    if not any(o.domain == "ai.onnx" for o in imports):
        return
    kept = [o for o in imports if o.domain not in ("", "ai.onnx")]
    del imports[:]
    imports.extend([onnx.helper.make_opsetid("", max(versions)), *kept])


def _dense(sparse: onnx.SparseTensorProto) -> onnx.TensorProto:
    """A sparse initializer as a dense tensor of the same name (indices linear or per coordinate)."""
    import numpy as np
    from onnx import numpy_helper

    values = numpy_helper.to_array(sparse.values)
    indices = numpy_helper.to_array(sparse.indices).astype(np.int64)
    dense = np.zeros(tuple(sparse.dims), dtype=values.dtype)
    if indices.ndim == 2:  # one row of coordinates per value
        indices = np.ravel_multi_index(tuple(indices.T), dense.shape) if indices.size else indices.reshape(-1)
    dense.reshape(-1)[indices] = values
    return numpy_helper.from_array(dense, sparse.values.name)


def _check_structure(model: ir.Model, where: str) -> None:
    """Refuse graphs that are cyclic or use undefined values (later stages would loop or crash);
    nodes merely out of order are sorted (a model in order keeps its order)."""
    try:
        ir.verify(model, schemas=False)
        return
    except ir.VerificationError:
        pass
    try:
        ir_common.TopologicalSortPass()(model)
    except Exception:  # noqa: BLE001, S110 - a cycle: the verifier below names it
        pass
    try:
        ir.verify(model, schemas=False)
    except ir.VerificationError as e:
        first = e.problems[0].message
        more = f" (and {len(e.problems) - 1} more problem(s))" if len(e.problems) > 1 else ""
        raise InputError(f"{where}: malformed graph: {first}{more}", _HINT_EXPORT) from None


def _inline_functions(model: ir.Model, where: str) -> None:
    """Replace every call of a local function by the function's body (nested calls too)."""
    if not model.functions:
        return
    try:
        ir_common.InlinePass()(model)
    except ValueError as e:  # e.g. a function importing another version of the default opset
        raise InputError(f"{where}: the model's local functions cannot be inlined: {e}",
                         "export the model with its functions inlined (or one opset version throughout)") from None


def _check_tensor_sizes(model: ir.Model, where: str) -> None:
    """Every inline tensor holds as many bytes as its shape and dtype declare."""
    for graph in model.graphs():
        for value in graph.initializers.values():
            tensor = value.const_value
            if tensor is None or isinstance(tensor, ir.ExternalTensor):
                continue
            raw = getattr(tensor, "raw", None)
            if not isinstance(raw, onnx.TensorProto) or not raw.HasField("raw_data"):
                continue
            try:
                expected = _declared_bytes(tensor)
            except (ValueError, OverflowError):
                expected = -1
            if expected >= 0 and expected != len(raw.raw_data):
                raise InputError(
                    f"{where}: tensor {value.name!r} declares shape {list(tensor.shape)} "
                    f"({expected} bytes of {tensor.dtype.name}) but holds {len(raw.raw_data)} bytes",
                    _HINT_EXPORT,
                )


def _declared_bytes(tensor: ir.TensorProtocol) -> int:
    """Bytes the shape and dtype declare; -1 when unknown (strings, symbolic dims)."""
    if tensor.dtype == ir.DataType.STRING:
        return -1
    count = 1
    for d in tensor.shape:
        if not isinstance(d, int) or d < 0:
            return -1
        count *= d
    bits = tensor.dtype.bitwidth
    return (count * bits + 7) // 8


def _check_external_data(model: ir.Model, path: pathlib.Path) -> None:
    """Every external tensor's file lies in the model's folder, exists and is long enough (not read)."""
    missing: dict[str, list[str]] = {}
    sizes: dict[str, int] = {}
    root = os.path.realpath(path.parent)
    for graph in model.graphs():
        for value in graph.initializers.values():
            tensor = value.const_value
            if not isinstance(tensor, ir.ExternalTensor):
                continue
            file = os.path.join(tensor.base_dir, tensor.location)
            real = os.path.realpath(file)
            if os.path.isabs(tensor.location) or os.path.commonpath([root, real]) != root:
                raise InputError(
                    f"{path}: tensor {value.name!r} points at external data outside the model's folder "
                    f"({tensor.location!r})",
                    "external data must live beside the model; the file is malformed or hostile",
                )
            declared = _declared_bytes(tensor)
            if tensor.length is not None and declared >= 0 and tensor.length < declared:
                raise InputError(
                    f"{path}: tensor {value.name!r} declares {declared} bytes but its external data entry has {tensor.length}",
                    _HINT_EXPORT,
                )
            if tensor.length is None and declared >= 0:
                tensor_end = (tensor.offset or 0) + declared
                if os.path.isfile(file) and os.path.getsize(file) < tensor_end:
                    missing.setdefault(tensor.location, []).append(value.name or "?")
                    continue
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
