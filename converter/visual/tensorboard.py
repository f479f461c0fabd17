"""An IR model as a TensorBoard graph: ``tensorboard --logdir LOGDIR``, then the Graphs tab.

Each IR node becomes a ``NodeDef`` named after its source name, split into
scopes at ``/`` and ``.`` (``layer1.0.conv1`` -> ``layer1/0/conv1``,
``model/dense/MatMul`` stays), so TensorBoard groups nodes by module path or
Keras layer. Graph inputs become ``Placeholder`` nodes and initializers
``Const`` nodes (shape and dtype only; weights are not written), named after
their values (``fc1.weight`` -> ``fc1/weight``).

Names must be unique and a node may not share its name with a scope, so:

1. a source name used by one node only, and not the scope of another, is the
   node's name (``model/dense/MatMul``);
2. otherwise the op type is appended (a Linear's ``fc1/MatMul`` and ``fc1/Add``),
   and repeats get ``_1``, ``_2``;
3. a node with subgraphs (If, Loop, Scan) is always ``<path>/<op>``, and each
   body is a nested scope ``<path>/<attribute>`` (``branch/If``,
   ``branch/then_branch/...``); the body's results feed the node as control
   edges, drawn dashed.

Every node carries ``T`` (the dtype of its first output), ``_output_shapes``
(TensorBoard labels edges with them; symbolic dims keep their names, e.g.
``batch``, in ``Dim.name`` with size -1), an ``outputs`` line such as
``probs: float[batch, 10]``, its ``source_name``, and its ONNX attributes.
Values with no recorded dtype or shape get them from ONNX shape inference first.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import ir
from converter.summary import dims_text
from converter.visual import tfevents

_SEPARATORS = re.compile(r"[/.]")
_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]")  # ':' and '^' mean output index and control edge
_MAX_TENSOR_VALUES = 8


@dataclasses.dataclass
class _Item:
    """One future NodeDef: a graph input, an initializer or an IR node."""

    obj: ir.Value | ir.Node
    path: tuple[str, ...]
    op: str
    subgraphs: list[ir.Graph] = dataclasses.field(default_factory=list)
    name: str = ""


def graph_def(model: ir.Model, *, infer_shapes: bool = True) -> Any:
    """The ``tensorflow.GraphDef`` proto showing ``model`` (see the module docstring).

    Args:
        model: the model to show.
        infer_shapes: fill in missing dtypes and shapes with ONNX shape
            inference, on a copy (tensors shared, ``model`` unchanged); a model
            inference cannot handle is shown as it is.

    Example:
        >>> m = ir.from_onnx_text('''<ir_version: 10, opset_import: ["" : 21]>
        ...     g (float[batch, 4] x) => (float[batch, 4] y) { y = Relu(x) }''')
        >>> ir.set_source_name(m.graph.node(0), "block.act")
        >>> [(n.name, n.op, list(n.input)) for n in graph_def(m).node]
        [('x', 'Placeholder', []), ('block/act', 'Relu', ['x'])]
    """
    if infer_shapes and _lacks_shapes(model):
        model = _with_inferred_shapes(model)
    items = list(_collect(model.graph, (), set()))
    _assign_names(items)
    producers = _producers(items)
    gd = tfevents.protos()["GraphDef"]()
    for item in items:
        gd.node.append(_node_def(item, producers))
    return gd


def write_graph(model: ir.Model, logdir: str | pathlib.Path, *, run_name: str = "model",
                infer_shapes: bool = True) -> pathlib.Path:
    """Write ``model`` as a TensorBoard graph in ``logdir/run_name``.

    Args:
        model: the model to show.
        logdir: TensorBoard's log directory (created if missing).
        run_name: the run TensorBoard lists it under; an earlier graph this
            function wrote to the same run is replaced.
        infer_shapes: see :func:`graph_def`.

    Returns:
        The event file written.

    Example:
        >>> write_graph(model, "tb", run_name="resnet")   # doctest: +SKIP
        PosixPath('tb/resnet/events.out.tfevents.1700000000.host.crossgraph')
    """
    return tfevents.write_graph_event(pathlib.Path(logdir) / run_name, graph_def(model, infer_shapes=infer_shapes))


def check_logdir(logdir: str | pathlib.Path) -> pathlib.Path:
    """Refuse a log directory that cannot be written, before any work is done.

    A missing directory is fine (it is created, as TensorBoard's own writers
    do) when its nearest existing ancestor is a writable directory.

    Raises:
        InputError: the path, or an ancestor, is a file, or not writable.
    """
    import os

    from converter.errors import InputError

    logdir = pathlib.Path(logdir)
    existing = next(p for p in (logdir, *logdir.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise InputError(f"TensorBoard log directory {logdir}: {existing} is a file, not a directory",
                         "choose another log directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"TensorBoard log directory {logdir}: {existing} is not writable",
                         "choose a log directory you can write to")
    return logdir


def write_side_by_side(source_model: ir.Model, result_model: ir.Model, logdir: str | pathlib.Path) -> dict[str, pathlib.Path]:
    """Write the model before and after conversion as runs ``source`` and ``converted``.

    TensorBoard's run selector then switches between them. Pass the source
    model as loaded, before optimization changes it in place (a copy, e.g.
    ``ir.from_proto(ir.to_proto(model))``, or write it before optimizing).

    Returns:
        ``{"source": path, "converted": path}``, the event files written.
    """
    return {
        "source": write_graph(source_model, logdir, run_name="source"),
        "converted": write_graph(result_model, logdir, run_name="converted"),
    }


def _with_inferred_shapes(model: ir.Model) -> ir.Model:
    """A copy of ``model`` (tensors shared) annotated by shape inference; ``model`` if that fails."""
    from onnx_ir.passes.common import ShapeInferencePass

    try:
        copy = model.clone()
    except Exception:  # e.g. nodes out of order: show the model as it is
        return model
    ShapeInferencePass(check_type=False, strict_mode=False)(copy)  # leaves it unchanged on failure
    return copy


def _lacks_shapes(model: ir.Model) -> bool:
    return any(
        out.type is None or out.shape is None
        for node in ir.traversal.RecursiveGraphIterator(model.graph)
        for out in node.outputs
    )


# ---- naming --------------------------------------------------------------------


def _parts(name: str | None) -> tuple[str, ...]:
    return tuple(_UNSAFE.sub("_", p) for p in _SEPARATORS.split(name or "") if p)


def _collect(graph: ir.Graph, prefix: tuple[str, ...], scopes: set[tuple[str, ...]]) -> Iterator[_Item]:
    """Items of ``graph`` and its subgraphs, in order; ``scopes`` are the control-flow scopes taken."""
    inputs = set(graph.inputs)
    for value in graph.inputs:
        yield _Item(value, prefix + (_parts(value.name) or ("input",)), "Placeholder")
    for name, value in graph.initializers.items():
        if value not in inputs:
            yield _Item(value, prefix + (_parts(name) or ("initializer",)), "Const")
    for node in graph:
        path = prefix + (_parts(ir.source_name(node)) or (node.op_type,))
        bodies = list(_subgraphs(node))
        if not bodies:
            yield _Item(node, path, node.op_type)
            continue
        path = _unique_scope(path, scopes)
        yield _Item(node, path, node.op_type, [g for _, g in bodies])
        for attr_name, body in bodies:
            yield from _collect(body, path + (attr_name,), scopes)


def _subgraphs(node: ir.Node) -> Iterator[tuple[str, ir.Graph]]:
    for attr in node.attributes.values():
        if attr.is_ref():
            continue
        if attr.type == ir.AttributeType.GRAPH:
            yield attr.name, attr.value
        elif attr.type == ir.AttributeType.GRAPHS:
            for i, g in enumerate(attr.value):
                yield f"{attr.name}_{i}", g


def _unique_scope(path: tuple[str, ...], scopes: set[tuple[str, ...]]) -> tuple[str, ...]:
    candidate, k = path, 0
    while candidate in scopes:
        k += 1
        candidate = path[:-1] + (f"{path[-1]}_{k}",)
    scopes.add(candidate)
    return candidate


def _assign_names(items: list[_Item]) -> None:
    """Give every item a unique name that is not also a scope (rules 1-3 of the module docstring)."""
    counts = Counter(item.path for item in items)
    scopes = _prefixes(item.path for item in items)
    paths = []
    for item in items:
        own_scope = counts[item.path] > 1 or item.path in scopes or item.subgraphs
        paths.append(item.path + (item.op,) if own_scope else item.path)
    scope_names = {"/".join(p) for p in _prefixes(paths)}
    taken: set[str] = set()
    for item, path in zip(items, paths, strict=True):
        base = name = "/".join(path)
        k = 0
        while name in taken or name in scope_names:
            k += 1
            name = f"{base}_{k}"
        taken.add(name)
        item.name = name


def _prefixes(paths: Any) -> set[tuple[str, ...]]:
    return {p[:i] for p in paths for i in range(1, len(p))}


# ---- NodeDefs --------------------------------------------------------------------


def _producers(items: list[_Item]) -> dict[ir.Value, str]:
    """The NodeDef input string of every value: ``name`` for output 0, else ``name:k``."""
    producers: dict[ir.Value, str] = {}
    for item in items:
        if isinstance(item.obj, ir.Value):
            producers[item.obj] = item.name
        else:
            for k, out in enumerate(item.obj.outputs):
                producers[out] = item.name if k == 0 else f"{item.name}:{k}"
    return producers


def _node_def(item: _Item, producers: dict[ir.Value, str]) -> Any:
    p = tfevents.protos()
    nd = p["NodeDef"](name=item.name, op=item.op)
    if isinstance(item.obj, ir.Value):
        value = item.obj
        nd.attr["dtype"].type = _tf_dtype(value)
        nd.attr["shape"].shape.CopyFrom(_shape_proto(value.shape))
        nd.attr["_output_shapes"].list.shape.add().CopyFrom(_shape_proto(value.shape))
        nd.attr["outputs"].s = _describe(value).encode()
        return nd
    node = item.obj
    nd.input.extend(producers[v] for v in node.inputs if v is not None and v in producers)
    results = dict.fromkeys(producers[v].split(":")[0] for g in item.subgraphs for v in g.outputs if v in producers)
    nd.input.extend(f"^{name}" for name in results)
    _describe_node(nd, node)
    return nd


def _describe_node(nd: Any, node: ir.Node) -> None:
    if node.outputs:
        nd.attr["T"].type = _tf_dtype(node.outputs[0])
    for out in node.outputs:
        nd.attr["_output_shapes"].list.shape.add().CopyFrom(_shape_proto(out.shape))
    nd.attr["outputs"].s = "; ".join(_describe(out) for out in node.outputs).encode()
    if ir.source_name(node, ""):
        nd.attr["source_name"].s = ir.source_name(node).encode()
    if node.name and node.name != ir.source_name(node, ""):
        nd.attr["onnx_name"].s = node.name.encode()
    if node.domain not in ("", "ai.onnx"):
        nd.attr["domain"].s = node.domain.encode()
    for attr in node.attributes.values():
        _set_attr(nd.attr[attr.name], attr)


def _set_attr(av: Any, attr: ir.Attr) -> None:
    """An ONNX attribute as an AttrValue: numbers and strings as such, the rest as a description."""
    t, v = attr.type, attr.value
    if attr.is_ref():
        av.s = f"@{attr.ref_attr_name}".encode()
    elif t == ir.AttributeType.INT:
        av.i = v
    elif t == ir.AttributeType.FLOAT:
        av.f = v
    elif t == ir.AttributeType.STRING:
        av.s = v.encode() if isinstance(v, str) else bytes(v)
    elif t == ir.AttributeType.INTS:
        av.list.i.extend(v)
    elif t == ir.AttributeType.FLOATS:
        av.list.f.extend(v)
    elif t == ir.AttributeType.STRINGS:
        av.list.s.extend(s.encode() if isinstance(s, str) else bytes(s) for s in v)
    elif t == ir.AttributeType.TENSOR:
        av.s = _tensor_text(v).encode()
    elif t == ir.AttributeType.GRAPH:
        av.s = f"subgraph: {sum(1 for _ in v)} nodes".encode()
    elif t == ir.AttributeType.GRAPHS:
        av.s = f"{len(v)} subgraphs".encode()
    else:
        av.s = str(v).encode()


def _tensor_text(tensor: Any) -> str:
    text = f"{tensor.dtype.name.lower()}{list(tensor.shape)}"
    if tensor.size <= _MAX_TENSOR_VALUES:
        try:
            text += f" {tensor.numpy().reshape(-1).tolist()}"
        except Exception:  # a description only; some dtypes have no numpy form
            pass
    return text


def _tf_dtype(value: ir.Value) -> int:
    if value.type is None:
        return tfevents.DT_INVALID
    if not isinstance(value.type, ir.TensorType):
        return tfevents.DT_VARIANT
    return tfevents.TF_DTYPES.get(value.type.dtype.name, tfevents.DT_INVALID)


def _shape_proto(shape: ir.Shape | None) -> Any:
    sp = tfevents.protos()["TensorShapeProto"]()
    if shape is None:
        sp.unknown_rank = True
        return sp
    for d in shape:
        if isinstance(d, int):
            sp.dim.add(size=d)
        else:
            sp.dim.add(size=-1, name=getattr(d, "value", None) or "")
    return sp


def _describe(value: ir.Value) -> str:
    """``probs: float[batch, 10]`` (dtype names as ``crossgraph inspect`` prints them)."""
    dtype = value.type.dtype.name.lower() if isinstance(value.type, ir.TensorType) else str(value.type or "unknown")
    return f"{value.name}: {dtype}{dims_text(value.shape)}"
