"""Localization: name the first node whose output diverges.

Two comparisons, for two kinds of fault:

- :func:`localize` (a kernel or back-end fault): the IR model runs twice on the
  same inputs, in onnxruntime (the reference, with every intermediate value of
  the main graph exposed as an output) and on crossgraph's kernels
  (``kernels.executor``, on CPU or CUDA). Both run the same graph, so this can
  never find a fault that is *in* the graph.
- :func:`localize_between` (a fault in the converted graph: a wrong weight, a
  wrong op or attribute, a missing input): the source model, loaded into the
  IR, is the reference; every value of the converted model whose name the
  source also has is recomputed *in isolation*, from the source's own values of
  the nearest matched values upstream, and compared with the source's value.
  Error does not accumulate downstream: one bad node is flagged alone.

Either way the report names the first node whose output is outside tolerance
and the worst one, by the user's source names, and writes a repro (the node, or
the few nodes between matched values, as a model, and its inputs) when asked.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any

import numpy as np
import onnx

import ir


@dataclasses.dataclass
class NodeDivergence:
    """How far one node's output is from the reference."""

    node: str
    source_name: str
    op: str
    output: str
    max_abs_error: float
    max_rel_error: float
    region: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Localization:
    """The first and worst divergent nodes (``None`` when every node agrees)."""

    compared: int
    first: NodeDivergence | None
    worst: NodeDivergence | None
    runtime: str
    device: str
    repro: str | None = None
    reference: str = "onnxruntime"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def summary(self) -> str:
        if self.first is None:
            return (f"localize: all {self.compared} node outputs agree "
                    f"({self.runtime} on {self.device} vs {self.reference})")
        f, w = self.first, self.worst
        text = f"localize: first divergent node {f.source_name!r} ({f.op}, max abs error {f.max_abs_error:.3g})"
        if len(f.region) > 1:  # nodes the conversion introduced lie between it and the matched values
            text += f" (its region of {len(f.region)} nodes starts at {f.region[0]!r})"
        if w is not None and w.node != f.node:
            text += f"; worst {w.source_name!r} ({w.op}, {w.max_abs_error:.3g})"
        return text + (f"; repro in {self.repro}" if self.repro else "")


def localize(
    model: ir.Model,
    feeds: dict[str, np.ndarray],
    *,
    device: str = "cpu",
    runtime: str = "torch",
    rtol: float = 1e-4,
    atol: float = 1e-5,
    repro_dir: pathlib.Path | None = None,
) -> Localization:
    """Compare every main-graph value of ``model`` between onnxruntime and the kernels.

    Args:
        model: the IR model (not modified).
        feeds: input arrays by graph input name.
        device: where the kernels run.
        rtol, atol: tolerance for float values (integers and bools must match).
        repro_dir: if given and a node diverges, its one-node model and inputs go here.
    """
    from kernels import executor

    reference = _onnxruntime_intermediates(model, feeds)
    actual = executor.run(model, feeds, runtime=runtime, device=device, intermediates=True)
    first = worst = None
    compared = 0
    worst_score = 0.0
    for node in model.graph:
        for out in node.outputs:
            if out.name not in reference or out.name not in actual:
                continue
            e, a = np.asarray(reference[out.name]), np.asarray(actual[out.name])
            compared += 1
            d = _divergence(node, out.name, e, a, rtol, atol)
            if d is None:
                continue
            score = d.max_abs_error / (atol + rtol * float(np.max(np.abs(e), initial=0.0)))
            if first is None:
                first = d
            if score > worst_score:
                worst, worst_score = d, score
    result = Localization(compared, first, worst, runtime, device)
    if first is not None and repro_dir is not None:
        result.repro = str(_write_repro(model, first, reference, repro_dir))
    return result


def _divergence(node: ir.Node, name: str, e: np.ndarray, a: np.ndarray, rtol: float, atol: float) -> NodeDivergence | None:
    label = dict(node=node.name or name, source_name=ir.source_name(node) or name, op=node.op_type, output=name)
    if e.shape != a.shape:
        return NodeDivergence(**label, max_abs_error=float("inf"), max_rel_error=float("inf"))
    if e.size == 0 or e.dtype == object:
        return None
    from converter.parity import elementwise_errors

    ef, _, diff, rel = elementwise_errors(e, a)
    exact = e.dtype.kind in "iub"
    bad = diff > (0 if exact else atol + rtol * np.abs(np.nan_to_num(ef)))
    if not bad.any():
        return None
    return NodeDivergence(**label, max_abs_error=float(diff.max()), max_rel_error=float(rel.max()))


def _onnxruntime_intermediates(model: ir.Model, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    proto = ir.to_proto(model)
    inferred = onnx.shape_inference.infer_shapes(proto)
    typed = {vi.name: vi for vi in [*inferred.graph.value_info, *inferred.graph.output]}
    existing = {o.name for o in proto.graph.output}
    for node in proto.graph.node:
        for name in node.output:
            if name and name not in existing and name in typed and typed[name].type.HasField("tensor_type"):
                proto.graph.output.append(typed[name])
                existing.add(name)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds), strict=True))


def _write_repro(model: ir.Model, d: NodeDivergence, values: dict[str, np.ndarray], out: pathlib.Path) -> pathlib.Path:
    """A one-node ONNX model of the divergent node, and its inputs as .npz."""
    out.mkdir(parents=True, exist_ok=True)
    proto = ir.to_proto(model)
    node = next(n for n in proto.graph.node if d.output in n.output)
    inits = {t.name: t for t in proto.graph.initializer}
    inputs, arrays, initializers = [], {}, []
    for name in node.input:
        if not name:
            continue
        if name in inits:
            initializers.append(inits[name])
        elif name in values:
            arr = np.asarray(values[name])
            arrays[name] = arr
            elem = onnx.helper.np_dtype_to_tensor_dtype(arr.dtype)
            inputs.append(onnx.helper.make_tensor_value_info(name, elem, arr.shape))
    outputs = [onnx.helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in node.output if o]
    graph = onnx.helper.make_graph([node], "repro", inputs, outputs, initializers)
    repro = onnx.helper.make_model(graph, opset_imports=proto.opset_import, ir_version=proto.ir_version)
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in d.source_name)[:80] or "node"
    path = out / f"repro_{safe}.onnx"
    onnx.save(repro, path)
    np.savez(out / f"repro_{safe}_inputs.npz", **arrays)
    return path


# ---- source vs converted -------------------------------------------------------------


def localize_between(
    source_model: ir.Model,
    converted_model: ir.Model,
    feeds: dict[str, np.ndarray],
    *,
    rtol: float = 1e-4,
    atol: float = 1e-5,
    runtime: str = "onnxruntime",
    device: str = "cpu",
    repro_dir: pathlib.Path | None = None,
) -> Localization:
    """Find the node of ``converted_model`` that computes something the source does not.

    The source model (loaded into the IR) runs in onnxruntime with every value
    exposed. A value of the converted model *matches* one of the source when
    they have the same name (front ends and passes keep value names; graph
    inputs and outputs also match by position). For every matched value, in
    graph order, the converted model's nodes between it and the nearest matched
    values upstream (usually the one node that makes it) run in isolation, fed
    with the source's values, and the result is compared with the source's
    value. A corruption in the converted graph is flagged at the node it is in,
    and nowhere else.

    Args:
        source_model: the source, in the IR (``converter.load(source)``).
        converted_model: the converted model, in the IR (not modified).
        feeds: input arrays, by the source's input names (else by position).
        rtol, atol: tolerance for float values (integers and bools must match).
        runtime: where the isolated nodes run: ``"onnxruntime"`` (CPU), or
            ``"torch"`` for crossgraph's kernels on ``device``.
        device: the kernels' device when ``runtime="torch"``.
        repro_dir: if given and a node diverges, its region as a model, with its
            inputs and the source's expected output as ``.npz``, goes here.

    Returns:
        A :class:`Localization` with ``reference="source"``; ``compared`` counts
        the matched values checked. Each divergence's ``region`` lists the
        converted nodes that were run to recompute the value.

    Example:
        >>> src, dst = converter.load("model.keras"), converter.load("model.onnx")  # doctest: +SKIP
        >>> localize_between(src, dst, {"image": x}).first.node
        'node_Conv_5'
    """
    source_feeds = _match_inputs(source_model, feeds)
    known = _onnxruntime_intermediates(source_model, source_feeds)
    proto = ir.to_proto(converted_model)
    _alias_io(known, source_model, converted_model, source_feeds)
    producers = {name: n for n in proto.graph.node for name in n.output if name}
    position = {id(n): i for i, n in enumerate(proto.graph.node)}
    initializers = {t.name: t for t in proto.graph.initializer}
    first = worst = None
    first_region: tuple[list[Any], dict[str, np.ndarray]] | None = None
    compared, worst_score = 0, 0.0
    for node in converted_model.graph:
        for out in node.outputs:
            region = _region(out.name, producers, position, known, initializers)
            if region is None:
                continue
            nodes, cut = region
            arrays = {name: np.asarray(known[name]) for name in cut}
            actual = _run_region(proto, nodes, arrays, initializers, out.name, runtime, device)
            expected = np.asarray(known[out.name])
            if actual is None or actual.shape != expected.shape:
                continue  # not comparable: a value of the same name in another layout
            compared += 1
            d = _divergence(node, out.name, expected, actual, rtol, atol)
            if d is None:
                continue
            d.region = [n.name or n.output[0] for n in nodes]
            score = d.max_abs_error / (atol + rtol * float(np.max(np.abs(expected), initial=0.0)))
            if first is None:
                first, first_region = d, (nodes, arrays)
            if score > worst_score:
                worst, worst_score = d, score
    result = Localization(compared, first, worst, runtime, device if runtime != "onnxruntime" else "cpu",
                          reference="source")
    if first is not None and first_region is not None and repro_dir is not None:
        nodes, arrays = first_region
        result.repro = str(_write_region_repro(proto, nodes, arrays, initializers, first,
                                               np.asarray(known[first.output]), repro_dir))
    return result


def _input_names(model: ir.Model) -> list[str]:
    return [v.name for v in model.graph.inputs if not v.is_initializer()]


def _match_inputs(model: ir.Model, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``feeds`` keyed by ``model``'s input names: by name where they agree, else by position."""
    names = _input_names(model)
    if set(names) <= set(feeds):
        return {n: feeds[n] for n in names}
    if len(names) != len(feeds):
        raise ValueError(f"the model takes inputs {names}, the feeds are {list(feeds)}")
    return dict(zip(names, feeds.values(), strict=True))


def _alias_io(known: dict[str, np.ndarray], source: ir.Model, converted: ir.Model,
              source_feeds: dict[str, np.ndarray]) -> None:
    """Match the converted model's graph inputs and outputs to the source's by position."""
    known.update(source_feeds)
    for theirs, ours in zip(source_feeds, _input_names(converted), strict=False):
        known.setdefault(ours, source_feeds[theirs])
    for theirs, ours in zip(source.graph.outputs, converted.graph.outputs, strict=False):
        if theirs.name in known:
            known.setdefault(ours.name, known[theirs.name])


def _region(name: str, producers: dict[str, Any], position: dict[int, int], known: dict[str, Any],
            initializers: dict[str, Any]) -> tuple[list[Any], list[str]] | None:
    """The nodes computing ``name`` from matched values, and those values (the cut).

    ``None`` when ``name`` is not matched, or depends on a value that is neither
    matched nor computed in the converted graph.
    """
    if name not in known or name not in producers:
        return None
    nodes: dict[int, Any] = {}
    cut: dict[str, None] = {}
    stack = [producers[name]]
    while stack:
        node = stack.pop()
        if id(node) in nodes:
            continue
        nodes[id(node)] = node
        for used in _used_names(node):
            if not used or used in initializers:
                continue
            if used in known:
                cut[used] = None
            elif used in producers:
                stack.append(producers[used])
            else:
                return None
    ordered = sorted(nodes.values(), key=lambda n: position[id(n)])
    return ordered, list(cut)


def _used_names(node: Any) -> list[str]:
    """A NodeProto's inputs, and the outer values its subgraphs read."""
    used = list(node.input)
    for attr in node.attribute:
        for g in [attr.g] if attr.HasField("g") else list(attr.graphs):
            inner = {o for n in g.node for o in n.output} | {v.name for v in g.input} | {t.name for t in g.initializer}
            used += [u for n in g.node for u in _used_names(n) if u not in inner]
    return used


def _region_model(proto: Any, nodes: list[Any], arrays: dict[str, np.ndarray], initializers: dict[str, Any],
                  output: str) -> Any:
    """The region as an ONNX model: the cut values are its inputs, ``output`` its output."""
    inputs = [onnx.helper.make_tensor_value_info(k, onnx.helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
              for k, a in arrays.items()]
    used = {u for n in nodes for u in _used_names(n)}
    inits = [t for name, t in initializers.items() if name in used]
    graph = onnx.helper.make_graph(nodes, "region", inputs, [onnx.helper.make_empty_tensor_value_info(output)], inits)
    return onnx.helper.make_model(graph, opset_imports=proto.opset_import, ir_version=proto.ir_version,
                                  functions=proto.functions)


def _run_region(proto: Any, nodes: list[Any], arrays: dict[str, np.ndarray], initializers: dict[str, Any],
                output: str, runtime: str, device: str) -> np.ndarray | None:
    """The region's output, or ``None`` when it does not run on these inputs."""
    model = _region_model(proto, nodes, arrays, initializers, output)
    try:
        if runtime == "onnxruntime":
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.log_severity_level = 3
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
            return np.asarray(session.run([output], arrays)[0])
        from kernels import executor

        return np.asarray(executor.run(ir.from_proto(model), arrays, runtime=runtime, device=device)[output])
    except Exception:  # e.g. a same-named value of another dtype: not comparable, not a verdict
        return None


def _write_region_repro(proto: Any, nodes: list[Any], arrays: dict[str, np.ndarray], initializers: dict[str, Any],
                        d: NodeDivergence, expected: np.ndarray, out: pathlib.Path) -> pathlib.Path:
    """The divergent region as a model, its inputs as ``.npz`` and the source's value of its output."""
    out.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in d.source_name)[:80] or "node"
    path = out / f"repro_{safe}.onnx"
    onnx.save(_region_model(proto, nodes, arrays, initializers, d.output), path)
    np.savez(out / f"repro_{safe}_inputs.npz", **arrays)
    np.savez(out / f"repro_{safe}_expected.npz", **{d.output: expected})
    return path
