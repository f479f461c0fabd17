"""Test helpers for the pass tests: onnxruntime runs, random feeds, graph comparison."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

import ir
import passes

_NP = {
    ir.DataType.FLOAT: np.float32,
    ir.DataType.DOUBLE: np.float64,
    ir.DataType.INT64: np.int64,
    ir.DataType.INT32: np.int32,
    ir.DataType.BOOL: np.bool_,
}


def copy_model(model: ir.Model) -> ir.Model:
    """A deep copy through the protobuf round trip."""
    return ir.serde.deserialize_model(ir.serde.serialize_model(model))


def random_feeds(model: ir.Model, dim: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded random inputs; every symbolic dim is ``dim``."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for value in model.graph.inputs:
        shape = [d if isinstance(d, int) else dim for d in value.shape.dims]
        dtype = _NP[value.dtype]
        if dtype is np.bool_:
            feeds[value.name] = np.asarray(rng.random(shape) > 0.5)
        elif np.issubdtype(dtype, np.integer):
            feeds[value.name] = rng.integers(0, 5, shape).astype(dtype)  # valid ids, trip counts
        else:
            feeds[value.name] = rng.standard_normal(shape).astype(dtype)
    return feeds


def run_ort(model: ir.Model, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Run ``model`` in onnxruntime (graph optimizations off, so it checks our graph)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    proto = ir.serde.serialize_model(model)
    session = ort.InferenceSession(
        proto.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return session.run(None, feeds)


def optimize_and_compare(
    model: ir.Model, level: int = 2, rtol: float = 1e-4, atol: float = 1e-5, dim: int = 3
) -> tuple[ir.Model, passes.PassReport]:
    """Optimize a copy of ``model`` with verification after each pass; assert equal outputs."""
    optimized = copy_model(model)
    report = passes.optimize(optimized, level, verify_each=True, on_error="raise")
    ir.verify(optimized)
    feeds = random_feeds(model, dim=dim)
    expected, actual = run_ort(model, feeds), run_ort(optimized, feeds)
    assert len(expected) == len(actual)
    for e, a in zip(expected, actual, strict=True):
        assert e.shape == a.shape
        np.testing.assert_allclose(a, e, rtol=rtol, atol=atol)
    return optimized, report


def op_types(model: ir.Model) -> list[str]:
    """Op types of the main graph, in order."""
    return [node.op_type for node in model.graph]


def canonical(model: ir.Model) -> list[str]:
    """The main graph as lines with intermediate values renamed in order of definition.

    Graph inputs and outputs keep their names; constants (initializers and
    Constant nodes) print as their values, so two graphs built differently compare equal.
    """
    names: dict[ir.Value, str] = {}
    for value in model.graph.inputs:
        names[value] = value.name
    for value in model.graph.outputs:
        names[value] = value.name

    def show(value: ir.Value | None) -> str:
        if value is None:
            return "_"
        if value.const_value is not None and value not in names:
            return f"const{value.const_value.numpy().round(5).tolist()}"
        return names.setdefault(value, f"v{len(names)}")

    lines = []
    for node in model.graph:
        if node.op_type == "Constant":
            continue
        attrs = ",".join(f"{k}={a.value!r}" for k, a in sorted(node.attributes.items()))
        outs = ",".join(show(v) for v in node.outputs)
        lines.append(f"{outs}={node.op_type}<{attrs}>({','.join(show(v) for v in node.inputs)})")
    return lines


def assert_graph_equal(actual: ir.Model, expected: ir.Model) -> None:
    """The main graphs are equal up to the names of intermediate values."""
    assert canonical(actual) == canonical(expected)
