"""Names in converted TensorFlow models: symbolic dims and provenance.

tf2onnx names dynamic dims ``unk__12`` and nodes after TF ops with its own
suffixes (``model/dense/MatMul__17``, ``Transpose__42``). crossgraph instead:

- names every dynamic dim of an input after the user's symbol, else ``batch`` for
  axis 0, else ``<input>_<axis>`` (:func:`ir.default_symbol`); output dims that
  follow an input symbol get its name (:func:`name_dims`);
- records on every node the TF op name it came from, or for Keras models the
  path of Keras layers (``mha/query``), with :func:`ir.set_source_name`
  (:func:`record_provenance`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping

import ir
from ir.provenance import SOURCE_NAME_KEY

FRAMEWORK = "tensorflow"

#: tf2onnx appends ``__<n>`` to the names of the nodes it adds or rewrites.
_TF2ONNX_SUFFIX = re.compile(r"(__\d+)+$")
#: Call wrappers TF adds when a function is inlined into its caller's graph.
_CALL_PREFIX = re.compile(r"^((Stateful)?PartitionedCall(_\d+)?/)+")
#: Keras 3 uniquifies name scopes per trace: layer ``dense`` becomes scope ``dense_1``.
_SCOPE_COUNTER = re.compile(r"_\d+$")

#: Function bodies inlined from a call keep the function's name: ``__inference_cond_true_29_104_``.
_FUNCTION_PREFIX = re.compile(r"^(__inference_.*?_\d+(_frozen)?_\d+_|cond___)")
#: tf2onnx's helper nodes with no TF op behind them: ``Transpose__42``, ``Const__5``.
_MADE_UP = re.compile(r"^[A-Za-z_]+__\d+$")
#: Sizes symbols are bound to when probing shapes: primes no real dim is likely to equal.
PRIMES = (1009, 1013, 1019, 1021, 1031, 1033, 1039, 1049, 1051, 1061, 1063, 1069, 1087, 1091, 1093, 1097)

#: Maps a cleaned TF op name to the name recorded as provenance.
SourceNamer = Callable[[str], str]


def clean_tf_name(name: str) -> str:
    """The TF op name behind a tf2onnx node or tensor name.

    >>> clean_tf_name("StatefulPartitionedCall/cnn_1/conv_1/convolution__12:0")
    'cnn_1/conv_1/convolution'
    """
    name = name.split(":")[0]
    name = _FUNCTION_PREFIX.sub("", _CALL_PREFIX.sub("", name))
    return _TF2ONNX_SUFFIX.sub("", name)


def keras_namer(model_name: str, layer_names: Iterable[str]) -> SourceNamer:
    """A :data:`SourceNamer` giving the path of Keras layers in a TF op name.

    Scope components that name a layer (exactly, or with Keras' ``_<n>`` trace
    counter) are kept, the model's own scope is dropped: ``transformer_1/mha_1/
    query_1/einsum/Einsum`` becomes ``mha/query``. A name with no layer keeps its
    TF op name, less the model's scope (``keras.ops`` calls between layers).
    """
    layers = set(layer_names) - {model_name}

    def name_of(tf_name: str) -> str:
        path = []
        for part in tf_name.split("/"):
            base = part if part in layers else _SCOPE_COUNTER.sub("", part)
            if base in layers and (not path or path[-1] != base):
                path.append(base)
        if path:
            return "/".join(path)
        first, _, rest = tf_name.partition("/")
        return rest if rest and _SCOPE_COUNTER.sub("", first) == model_name else tf_name

    return name_of


def record_provenance(model: ir.Model, namer: SourceNamer | None = None) -> None:
    """Record a source name on every node of ``model``, subgraphs included.

    Nodes tf2onnx made up without a TF op behind them (``Const__5``,
    ``Transpose__42``) take the name of the node consuming their output, else
    of the node producing their first input.
    """
    namer = namer or (lambda name: name)
    nodes = list(ir.traversal.RecursiveGraphIterator(model.graph))
    for node in nodes:
        tf_name = clean_tf_name(node.name or "")
        if tf_name and not _MADE_UP.match(_CALL_PREFIX.sub("", node.name or "")):
            ir.set_source_name(node, namer(tf_name), FRAMEWORK)
    for node in nodes:
        if not _has_name(node):
            ir.set_source_name(node, _borrowed_name(node) or clean_tf_name(node.name or node.op_type), FRAMEWORK)


def _has_name(node: ir.Node) -> bool:
    return SOURCE_NAME_KEY in node.metadata_props


def _borrowed_name(node: ir.Node) -> str | None:
    for out in node.outputs:
        for use in out.uses():
            if _has_name(use.node):
                return ir.source_name(use.node)
    for inp in node.inputs:
        if inp is not None and inp.producer() is not None and _has_name(inp.producer()):
            return ir.source_name(inp.producer())
    return None


def input_symbols(
    names: Iterable[str], shapes: Iterable[Iterable[int | None]], user: Mapping[str, Iterable] | None = None
) -> dict[str, dict[int, str]]:
    """``{input: {axis: symbol}}`` for every dynamic dim of the inputs.

    Args:
        names: input names, in order.
        shapes: their TF shapes (``None`` for a dynamic dim).
        user: shapes given by the user per input name; a string entry names that
            dim's symbol.
    """
    user = user or {}
    symbols: dict[str, dict[int, str]] = {}
    for name, shape in zip(names, shapes, strict=True):
        given = list(user.get(name) or [])
        for axis, dim in enumerate(shape):
            if dim is not None:
                continue
            own = given[axis] if axis < len(given) and isinstance(given[axis], str) else None
            symbols.setdefault(name, {})[axis] = own or ir.default_symbol(name, axis)
    return symbols


def name_dims(
    model: ir.Model, symbols: Mapping[str, Mapping[int, str]], probed: Mapping[str, Mapping[int, str]] | None = None
) -> None:
    """Give the graph's inputs their symbols and carry them to the outputs.

    Output dims take a symbol where ``probed`` (from tracing the source at
    concrete sizes) or ONNX shape inference ties them to an input symbol; a
    dynamic output dim tied to nothing is named ``<output>_<axis>``.
    """
    for value in model.graph.inputs:
        if value.shape is None:
            continue
        dims = list(value.shape)
        for axis, symbol in symbols.get(value.name, {}).items():
            if axis < len(dims) and not isinstance(dims[axis], int):
                dims[axis] = ir.SymbolicDim(symbol)
        value.shape = ir.Shape(dims)
    inferred = _inferred_output_dims(model, symbols)
    probed = probed or {}
    for value in model.graph.outputs:
        if value.shape is None:
            continue
        dims = list(value.shape)
        for axis, dim in enumerate(dims):
            if isinstance(dim, int):
                continue
            symbol = probed.get(value.name, {}).get(axis) or inferred.get(value.name, {}).get(axis)
            dims[axis] = ir.SymbolicDim(symbol or f"{value.name}_{axis}")
        value.shape = ir.Shape(dims)


def _inferred_output_dims(model: ir.Model, symbols: Mapping[str, Mapping[int, str]]) -> dict[str, dict[int, str]]:
    """Output dims that follow an input symbol, by ONNX shape inference at concrete sizes.

    Every symbol is bound to its own large prime; an output dim inferred equal to
    one of them is that symbol.
    """
    import onnx

    names = sorted({s for axes in symbols.values() for s in axes.values()})
    sizes = dict(zip(names, PRIMES, strict=False))  # more symbols than primes: the rest stay unnamed
    proto = ir.to_proto(model)
    del proto.graph.value_info[:]
    for inp in proto.graph.input:
        for axis, dim in enumerate(inp.type.tensor_type.shape.dim):
            symbol = symbols.get(inp.name, {}).get(axis)
            if symbol in sizes:
                dim.dim_value = sizes[symbol]
    for out in proto.graph.output:
        out.type.tensor_type.ClearField("shape")
    try:
        proto = onnx.shape_inference.infer_shapes(proto, data_prop=True)
    except Exception:  # inference is a best effort; names stay generic
        return {}
    by_size = {size: symbol for symbol, size in sizes.items()}
    found: dict[str, dict[int, str]] = {}
    for out in proto.graph.output:
        for axis, dim in enumerate(out.type.tensor_type.shape.dim):
            if dim.HasField("dim_value") and dim.dim_value in by_size:
                found.setdefault(out.name, {})[axis] = by_size[dim.dim_value]
    return found
