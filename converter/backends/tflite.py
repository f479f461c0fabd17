"""TFLite back end: IR -> SavedModel back end -> TensorFlow's TFLite converter -> ``.tflite``.

Layout work happens in the SavedModel back end (NCHW models run channels-last
inside, with one transpose in and one out), so the flatbuffer has no per-layer
TRANSPOSE pairs; inputs and outputs keep the source's layout unless
``nhwc_io=True``, which puts Transpose nodes on the IR's 4-D inputs and outputs
so that the layout tracking absorbs the last two transposes as well.

Dynamic dims stay dynamic where TFLite allows (``resize_tensor_input`` / the
signature runner resizes a symbolic batch). ``specialize={"seq": 128}`` rewrites
symbols to static sizes first, for dims TFLite cannot keep dynamic; when a
conversion fails and fixing the symbols would make it pass, the error names the
dims and the ``--input`` flag that gives them sizes.

Builtin TFLite ops only by default; ``allow_tf_ops`` permits TF (Flex) ops.
Weight precision: ``quantize="fp16"``, ``"dynamic-int8"``, or ``"int8"`` (full
integer, calibrated on ``representative_data``, a ``.npz`` of input arrays whose
first axis indexes samples; inputs and outputs stay float32). A failed
conversion lists every offending IR node by its source name. The result runs
with LiteRT (``ai-edge-litert``); a ``crossgraph`` metadata entry records the
I/O layouts and specialized dims (:func:`read_metadata`).

Example:
    >>> from converter.backends import tflite
    >>> tflite.save(model, pathlib.Path("m.tflite"), nhwc_io=True, specialize={"seq": 8})
    {'quantize': 'float32', 'flex_ops': [], 'specialized': {'seq': 8}, 'nhwc_io': ['x']}
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

import ir
from converter.errors import InputError, UnsupportedOpsError

QUANTIZE_MODES = ("fp16", "dynamic-int8", "int8")
#: The name of the flatbuffer metadata entry this back end writes (JSON).
METADATA_NAME = "crossgraph"
TO_NHWC = (0, 2, 3, 1)
TO_NCHW = (0, 3, 1, 2)
#: The size each symbol gets while probing whether dynamic dims are what fails.
_PROBE_SIZE = 2


def save(
    model: ir.Model,
    path: pathlib.Path,
    *,
    format: str = "tflite",  # noqa: A002
    quantize: str | None = None,
    allow_tf_ops: bool = False,
    nhwc_io: bool = False,
    specialize: Mapping[str, int] | None = None,
    representative_data: str | os.PathLike | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Write ``model`` as a ``.tflite`` flatbuffer.

    Args:
        model: the IR model (not modified).
        path: the file to write (nothing is written on failure).
        quantize: ``None`` (float32), ``"fp16"``, ``"dynamic-int8"`` or ``"int8"``.
        allow_tf_ops: allow TF (Flex) ops where TFLite has no builtin.
        nhwc_io: 4-D inputs and outputs channels-last (NHWC) instead of the source's NCHW.
        specialize: ``{symbol: size}``: dims made static before export.
        representative_data: ``.npz`` of calibration inputs (``quantize="int8"`` only).

    Returns:
        ``{"quantize": ..., "flex_ops": [...]}``, plus ``"specialized": {symbol: size}``
        and ``"nhwc_io": [names]`` when those apply.

    Raises:
        InputError: an unknown option, quantization mode or symbol; calibration data
            that does not fit; dims TFLite cannot keep dynamic (named, with the flag).
        UnsupportedOpsError: nodes TFLite cannot express (all listed, with source names).
    """
    options.pop("opset", None)  # the API forwards --opset to every back end
    if options:
        raise InputError(f"unknown TFLite back-end option(s): {', '.join(sorted(options))}")
    _check_quantize(quantize, representative_data)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    specialized = dict(specialize or {})
    if specialized or nhwc_io:
        model = model.clone()
    if specialized:
        specialize_dims(model, specialized)
    layouts = wrap_nhwc_io(model) if nhwc_io else {}
    settings = {"quantize": quantize, "allow_tf_ops": allow_tf_ops,
                "representative": _representative(representative_data, model, layouts)}
    flat = _convert_or_diagnose(model, settings)
    if specialized or layouts:
        flat = _with_metadata(flat, {"specialized": specialized, "io_layouts": layouts})
    pathlib.Path(path).write_bytes(flat)
    info: dict[str, Any] = {"quantize": quantize or "float32", "flex_ops": flex_ops(flat)}
    if specialized:
        info["specialized"] = specialized
    if layouts:
        info["nhwc_io"] = sorted({name for side in layouts.values() for name in side})
    return info


def _check_quantize(quantize: str | None, data: Any) -> None:
    if quantize is not None and quantize not in QUANTIZE_MODES:
        raise InputError(f"unknown --quantize mode {quantize!r}", f"use one of {', '.join(QUANTIZE_MODES)}")
    if quantize == "int8" and data is None:
        raise InputError("--quantize int8 needs calibration data", "give a .npz of input arrays (representative_data)")
    if data is not None and quantize != "int8":
        raise InputError("representative data is only used by --quantize int8")


# --- IR rewrites before export ----------------------------------------------------


def specialize_dims(model: ir.Model, sizes: Mapping[str, int]) -> None:
    """Replace the symbolic dims named in ``sizes`` by those sizes, on every value of ``model``.

    Raises:
        InputError: a name that is not a symbol of the model's inputs, or a size < 1.
    """
    known = set(ir.symbols.symbolic_dims(model))
    unknown = sorted(set(sizes) - known)
    if unknown:
        raise InputError(f"cannot specialize {', '.join(unknown)}: the model's symbolic dims are "
                         f"{', '.join(sorted(known)) or 'none'}")
    bad = sorted(k for k, v in sizes.items() if int(v) < 1)
    if bad:
        raise InputError(f"sizes must be >= 1 ({', '.join(bad)})")
    for value in _all_values(model):
        if value.shape is not None and any(_symbol(d) in sizes for d in value.shape):
            value.shape = ir.Shape([int(sizes[_symbol(d)]) if _symbol(d) in sizes else d for d in value.shape])


def sizes_from_specs(model: ir.Model, specs: Any) -> dict[str, int]:
    """``{symbol: size}`` for the model's symbolic input dims that input specs give as integers.

    ``specs`` are :class:`converter.inputs.InputSpec` (or anything with ``name`` and
    ``shape``); other entries are ignored, so example tensors may be passed as well.
    """
    sizes: dict[str, int] = {}
    by_name = {v.name: v for v in model.graph.inputs}
    for spec in specs or []:
        value = by_name.get(getattr(spec, "name", None))
        shape = getattr(spec, "shape", None)
        if value is None or value.shape is None or shape is None or len(shape) != len(value.shape):
            continue
        for dim, given in zip(value.shape, shape, strict=True):
            if _symbol(dim) is not None and isinstance(given, int):
                sizes[_symbol(dim)] = given
    return sizes


def wrap_nhwc_io(model: ir.Model) -> dict[str, dict[str, list[int]]]:
    """Make the 4-D graph inputs and outputs NHWC with Transpose nodes, keeping their names.

    Returns:
        ``{"inputs": {name: perm}, "outputs": {name: perm}}``: the permutation that
        takes the source's layout to the file's (NCHW -> NHWC).
    """
    graph = model.graph
    layouts: dict[str, dict[str, list[int]]] = {"inputs": {}, "outputs": {}}
    for i, value in enumerate(list(graph.inputs)):
        if value.is_initializer() or value.shape is None or len(value.shape) != 4:
            continue
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
        layouts["inputs"][name] = list(TO_NHWC)
    for i, value in enumerate(list(graph.outputs)):
        if value.shape is None or len(value.shape) != 4:
            continue
        name = value.name
        value.name = f"{name}__nchw"
        node = ir.Node("", "Transpose", [value], attributes=[ir.AttrInt64s("perm", TO_NHWC)], name=f"{name}__to_nhwc")
        out = node.outputs[0]
        out.name, out.shape, out.type = name, _permuted(value.shape, TO_NHWC), value.type
        graph.append(node)
        graph.outputs[i] = out
        layouts["outputs"][name] = list(TO_NHWC)
    return layouts if layouts["inputs"] or layouts["outputs"] else {}


def _permuted(shape: ir.Shape, perm: tuple[int, ...]) -> ir.Shape:
    return ir.Shape([shape[p] for p in perm])


def _symbol(dim: Any) -> str | None:
    return dim.value if isinstance(dim, ir.SymbolicDim) else None


def _all_values(model: ir.Model) -> Iterator[ir.Value]:
    """Graph inputs, every node output and every subgraph input (initializers have no symbols)."""
    yield from model.graph.inputs
    for node in ir.traversal.RecursiveGraphIterator(model.graph):
        yield from node.outputs
        for attr in node.attributes.values():
            if attr.type == ir.AttributeType.GRAPH:
                yield from attr.value.inputs
            elif attr.type == ir.AttributeType.GRAPHS:
                for g in attr.value:
                    yield from g.inputs


# --- conversion ------------------------------------------------------------------


def _convert_or_diagnose(model: ir.Model, settings: dict[str, Any]) -> bytes:
    """Convert, or raise one error naming the dims or the IR nodes TFLite refused."""
    try:
        return _convert(model, settings)
    except _ConverterFailed as failure:
        message = failure.message
    _raise_if_dynamic_dims(model, settings)
    raise _node_error(model, message) from None


class _ConverterFailed(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _convert(model: ir.Model, settings: dict[str, Any]) -> bytes:
    """IR -> SavedModel (the SavedModel back end) -> ``.tflite`` bytes."""
    import tensorflow as tf

    from converter.backends import savedmodel

    with tempfile.TemporaryDirectory(prefix="crossgraph-tflite-") as tmp:
        saved = pathlib.Path(tmp) / "saved_model"
        savedmodel.save(model, saved, format="savedmodel")
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved), signature_keys=["serving_default"])
        return _run_converter(converter, settings)


def _run_converter(converter: Any, settings: dict[str, Any]) -> bytes:
    import tensorflow as tf

    ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    quantize = settings["quantize"]
    if quantize is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.representative_dataset = settings["representative"]
    if settings["allow_tf_ops"]:
        ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
    converter.target_spec.supported_ops = ops
    try:
        return converter.convert()
    except Exception as e:  # ConverterError with MLIR diagnostics, or a calibration failure
        raise _ConverterFailed(str(e)) from None


# --- calibration data for full-integer int8 --------------------------------------------


def _representative(data: Any, model: ir.Model, layouts: Mapping[str, Any]) -> Callable[[], Iterator[dict]] | None:
    """A representative-dataset generator over a ``.npz`` (one sample at a time, source layout)."""
    if data is None:
        return None
    from converter.backends.savedmodel import sanitize_names

    path = pathlib.Path(data)
    if not path.is_file():
        raise InputError(f"{path}: no such calibration file", "give a .npz of input arrays, samples on axis 0")
    feeds = [v for v in model.graph.inputs if not v.is_initializer()]
    names = sanitize_names([v.name for v in feeds])
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    missing = [v.name for v in feeds if v.name not in arrays]
    if missing:
        raise InputError(f"{path}: no arrays for input(s) {', '.join(missing)}", f"it holds {', '.join(arrays) or 'none'}")
    count = min(len(arrays[v.name]) for v in feeds)
    perms = layouts.get("inputs", {}) if layouts else {}

    def samples() -> Iterator[dict[str, np.ndarray]]:
        for i in range(count):
            sample = {}
            for v in feeds:
                x = arrays[v.name][i:i + 1]
                sample[names[v.name]] = np.transpose(x, perms[v.name]) if v.name in perms else x
            yield sample

    return samples


# --- diagnosis of a failed conversion ------------------------------------------------


def _raise_if_dynamic_dims(model: ir.Model, settings: dict[str, Any]) -> None:
    """If fixing the model's symbolic dims makes the conversion pass, raise naming them and ``--input``."""
    symbols = ir.symbols.symbolic_dims(model)
    if not symbols or not _converts_with(model, settings, dict.fromkeys(symbols, _PROBE_SIZE)):
        return
    keep_batch = [s for s in symbols if s != "batch"]
    if "batch" in symbols and keep_batch and _converts_with(model, settings, dict.fromkeys(keep_batch, _PROBE_SIZE)):
        symbols = keep_batch
    where = []
    for value in model.graph.inputs:
        axes = [f"axis {i}" for i, d in enumerate(value.shape or []) if _symbol(d) in symbols]
        if axes:
            where.append(f"{value.name} {', '.join(axes)}")
    example = " ".join(f"--input '{v.name}:{_example_shape(v, symbols)}'" for v in model.graph.inputs
                       if v.shape is not None and any(_symbol(d) in symbols for d in v.shape))
    raise InputError(
        f"TFLite cannot keep dim(s) {', '.join(symbols)} ({'; '.join(where)}) dynamic in this model",
        f"give them sizes with {example}, each <dim> a number (the file is then fixed to those sizes)",
    )


def _example_shape(value: ir.Value, symbols: list[str]) -> str:
    return "x".join(str(d) if isinstance(d, int) else (f"<{_symbol(d)}>" if _symbol(d) in symbols else str(_symbol(d) or "?"))
                    for d in value.shape)


def _converts_with(model: ir.Model, settings: dict[str, Any], sizes: dict[str, int]) -> bool:
    probe = model.clone()
    specialize_dims(probe, sizes)
    try:
        _convert(probe, {**settings, "quantize": None, "representative": None})
    except Exception:  # any failure means: not (only) the dynamic dims
        return False
    return True


_TF_OP = re.compile(r"'tf\.([A-Za-z0-9_]+)' op")
_FUSED = re.compile(r'fused\["([A-Za-z0-9_]+):"')
_NOT_FLEX = "is neither a custom op nor a flex op"


def _node_error(model: ir.Model, message: str) -> Exception:
    """One error listing every IR node behind the TF ops the converter refused, by source name.

    The diagnostics name TF ops (``'tf.Erf' op ...``, ``loc(fused["Squeeze:", ...])``),
    not IR nodes: the model is traced once more with one name scope per IR node,
    and each refused TF op type is looked up there.
    """
    refused: dict[str, str] = {}  # TF op type -> what the converter said
    flex_only = True
    for line in message.splitlines():
        if "error" not in line or "loc(" not in line:
            continue
        loc, what = _split_loc(line)
        named = _TF_OP.search(what) or _FUSED.search(loc)
        if named:
            refused.setdefault(named.group(1), what)
            flex_only &= _NOT_FLEX in what
    nodes = list(ir.traversal.RecursiveGraphIterator(model.graph))
    by_type = _scoped_op_types(model, nodes) if refused else {}
    found: list[tuple[str, str | None]] = []
    odd_dtypes = False
    for tf_op, what in refused.items():
        for i, tf_dtype in by_type.get(tf_op, []):
            node = nodes[i]
            odd = sorted({tf_dtype} - _BUILTIN_DTYPES) if tf_dtype else []
            odd_dtypes |= bool(odd)
            if odd:
                label = f"{node.op_type} on {'/'.join(odd)}"
            else:
                label = f"{node.op_type} (as TF {tf_op})" if _NOT_FLEX in what else f"{node.op_type} ({_short(what)})"
            found.append((label, ir.source_name(node) or node.name or None))
    if not found:
        first = next((ln for ln in message.splitlines() if "error" in ln.lower()), message.splitlines()[0] if message else "")
        return InputError(f"the TFLite converter failed: {_short(first)}")
    if odd_dtypes:
        hint = (f"TFLite builtins compute in {', '.join(sorted(_BUILTIN_DTYPES))}: cast in the source, "
                "or allow TF (Flex) ops with --tflite-allow-tf-ops")
    elif flex_only:
        hint = "allow TF (Flex) ops with --tflite-allow-tf-ops, or convert to another format"
    else:
        hint = "these nodes have no TFLite form here; convert to another format, or file an issue with this list"
    return UnsupportedOpsError("TensorFlow Lite builtin", found, hint=hint)


#: Element types that TFLite's builtin kernels compute in (TensorFlow's names).
_BUILTIN_DTYPES = {"float32", "float16", "int8", "uint8", "int16", "int32", "int64", "bool", "uint32", "string"}


def _split_loc(line: str) -> tuple[str, str]:
    """``(the loc(...) text, the message without it and without "error:")`` of a diagnostic line."""
    start = line.index("loc(")
    depth, end = 0, len(line)
    for i in range(start + 3, len(line)):
        depth += {"(": 1, ")": -1}.get(line[i], 0)
        if depth == 0:
            end = i + 1
            break
    rest = line[:start] + line[end:]
    what = rest.split("error:", 1)[-1].strip(" :")
    return line[start:end], what


def _short(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text[:160] + ("..." if len(text) > 160 else "")


def _scoped_op_types(model: ir.Model, nodes: list[ir.Node]) -> dict[str, list[tuple[int, str | None]]]:
    """``{TF op type: [(IR node index, the op's dtype "T")]}`` from a trace with one name scope per node."""
    import tensorflow as tf

    from kernels.tf._util import tf_dtype
    from kernels.tf.run import Walker

    index = {id(n): i for i, n in enumerate(nodes)}

    class ScopedWalker(Walker):
        def call(self, node, args, env, fn=None):  # noqa: ANN001, ANN202
            with tf.name_scope(f"cg{index.get(id(node), len(nodes))}"):
                return super().call(node, args, env, fn)

    walker = ScopedWalker(model, channels_last=True)
    feeds = [v for v in model.graph.inputs if not v.is_initializer()]
    specs = [tf.TensorSpec(None if v.shape is None else [d if isinstance(d, int) else None for d in v.shape],
                           tf_dtype(v.dtype)) for v in feeds]

    def serve(*args: Any) -> list[Any]:
        results = walker.run({v.name: a for v, a in zip(feeds, args, strict=True)})
        return [results[v.name] for v in model.graph.outputs]

    try:
        graph_def = tf.function(serve, input_signature=specs, autograph=False).get_concrete_function().graph.as_graph_def()
    except Exception:  # the diagnosis is best effort: without it, the converter's own message is shown
        return {}
    found: dict[str, list[tuple[int, str | None]]] = {}
    for node_def in [*graph_def.node, *(n for f in graph_def.library.function for n in f.node_def)]:
        match = re.match(r"cg(\d+)/", node_def.name)
        if not match or int(match.group(1)) >= len(nodes):
            continue
        dtype = tf.as_dtype(node_def.attr["T"].type).name if node_def.attr["T"].type else None
        entry = (int(match.group(1)), dtype)
        if entry not in found.get(node_def.op, []):
            found.setdefault(node_def.op, []).append(entry)
    return found


# --- reading and writing the flatbuffer ----------------------------------------------


def flex_ops(flat: bytes) -> list[str]:
    """Names of the TF (Flex) ops a ``.tflite`` flatbuffer uses (custom op codes ``Flex<Op>``)."""
    found = sorted(set(re.findall(rb"Flex([A-Z][A-Za-z0-9]+)", flat)))
    return [f.decode() for f in found]


def _schema() -> Any:
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        from tensorflow.lite.python import schema_py_generated as schema
    return schema


def _with_metadata(flat: bytes, content: dict[str, Any]) -> bytes:
    """``flat`` with a ``crossgraph`` metadata entry holding ``content`` as JSON."""
    schema = _schema()
    builder_model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(flat, 0))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(content).encode(), dtype=np.uint8)
    builder_model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(builder_model.buffers) - 1
    builder_model.metadata = [*(builder_model.metadata or []), entry]
    import flatbuffers

    builder = flatbuffers.Builder(len(flat) + 1024)
    builder.Finish(builder_model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The ``crossgraph`` metadata of a ``.tflite`` file (``{}`` when it has none).

    Keys: ``io_layouts`` (``{"inputs": {name: perm}, "outputs": {name: perm}}``, the
    permutation from the source's layout to the file's) and ``specialized``
    (``{symbol: size}``).
    """
    schema = _schema()
    flat = pathlib.Path(path).read_bytes()
    model = schema.Model.GetRootAs(flat, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name() and entry.Name().decode() == METADATA_NAME:
            data = model.Buffers(entry.Buffer()).DataAsNumpy()
            return json.loads(bytes(data).decode())
    return {}
