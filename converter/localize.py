"""Localization: name the first node whose output diverges.

The IR model runs twice on the same inputs: in onnxruntime (the reference, with
every intermediate value of the main graph exposed as an output) and on
crossgraph's kernels (``kernels.executor``, on CPU or CUDA). Values are compared
node by node in graph order; the report names the first node whose output is
outside tolerance and the worst one, by the user's source names, and writes a
repro (the single-node model and its inputs) when asked.
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


@dataclasses.dataclass
class Localization:
    """The first and worst divergent nodes (``None`` when every node agrees)."""

    compared: int
    first: NodeDivergence | None
    worst: NodeDivergence | None
    runtime: str
    device: str
    repro: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def summary(self) -> str:
        if self.first is None:
            return f"localize: all {self.compared} node outputs agree ({self.runtime} on {self.device} vs onnxruntime)"
        f, w = self.first, self.worst
        text = f"localize: first divergent node {f.source_name!r} ({f.op}, max abs error {f.max_abs_error:.3g})"
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
    ef, af = e.astype(np.float64), a.astype(np.float64)
    same_nan = np.isnan(ef) & np.isnan(af)
    diff = np.where(same_nan, 0.0, np.abs(ef - af))
    diff = np.where(np.isnan(diff), np.inf, diff)
    exact = e.dtype.kind in "iub"
    bad = diff > (0 if exact else atol + rtol * np.abs(np.nan_to_num(ef)))
    if not bad.any():
        return None
    rel = diff / np.maximum(np.abs(ef), np.finfo(np.float64).tiny)
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
