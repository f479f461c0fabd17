"""The pass manager: levels, fixed point, report, verify-each, subgraphs, symbols, provenance."""

from __future__ import annotations

import json

import numpy as np
import pytest
from passes_testing import copy_model, op_types, optimize_and_compare, random_feeds, run_ort

import ir
import passes
from passes.pipeline import PassSpec

FOLDABLE = """
<ir_version: 10, opset_import: ["" : 21]>
g (float[batch,4] x) => (float[batch,4] y)
   <float[4] w = {1,2,3,4}, float[4] unused = {9,9,9,9}>
{
   two = Constant<value: tensor = float[4] {2,2,2,2}>()
   w2 = Mul(w, two)
   t = Identity(x)
   d = Dropout(t)
   a = Add(d, w2)
   p = Transpose<perm=[1,0]>(a)
   q = Transpose<perm=[1,0]>(p)
   r = Relu(q)
   s = Relu(q)
   y = Add(r, s)
}
"""


def test_levels_order_node_counts_and_preserve_numerics():
    model = ir.from_onnx_text(FOLDABLE)
    counts = {}
    for level in (0, 1, 2):
        optimized, report = optimize_and_compare(model, level)
        counts[level] = passes.count_nodes(optimized)
        assert report.nodes_after == counts[level]
    assert counts[0] == 9  # Constant nodes are not counted
    assert counts[2] < counts[1] < counts[0]


def test_o1_removes_folds_and_drops_unused_initializer():
    model = ir.from_onnx_text(FOLDABLE)
    report = passes.optimize(model, 1)
    assert "unused" not in model.graph.initializers
    assert "Identity" not in op_types(model) and "Dropout" not in op_types(model)
    assert "Mul" not in op_types(model)  # w * 2 folded into one initializer
    assert report.folded >= 1 and report.removed >= 1
    assert report.nodes_after == report.nodes_before - report.folded - report.fused - report.removed


def test_o2_cancels_transposes_and_merges_common_subexpressions():
    model = ir.from_onnx_text(FOLDABLE)
    passes.optimize(model, 2)
    assert op_types(model) == ["Add", "Relu", "Add"]


def test_o0_changes_nothing():
    model = ir.from_onnx_text(FOLDABLE)
    before = ir.to_onnx_text(model)
    report = passes.optimize(model, 0)
    assert ir.to_onnx_text(model) == before
    assert report.nodes_before == report.nodes_after == 9 and report.passes == []


def test_report_summary_and_json():
    model = ir.from_onnx_text(FOLDABLE)
    report = passes.optimize(model)
    assert report.summary().startswith("-O2: 9 -> 3 nodes (-6: ")
    data = json.loads(json.dumps(report.to_dict()))
    assert data["nodes_before"] == 9 and data["nodes_after"] == 3
    assert {p["name"] for p in data["passes"]} >= {"fold-constants", "cse", "fuse-patterns"}
    assert data["bytes_before"] > data["bytes_after"]  # the unused initializer is gone
    assert all(len(row) == 7 for row in report.table_rows())


def test_unknown_level_is_rejected():
    with pytest.raises(ValueError, match="unknown optimization level 3"):
        passes.optimize(ir.from_onnx_text(FOLDABLE), 3)


class _BreakGraph(ir.passes.InPlacePass):
    """Gives a Relu an attribute its schema does not have."""

    def call(self, model):
        node = next(n for n in model.graph if n.op_type == "Relu")
        node.attributes["bogus"] = ir.AttrInt64("bogus", 1)
        return ir.passes.PassResult(model, True)


def test_verify_each_names_the_failing_pass_and_restores_the_model():
    specs = (*passes.LEVELS[1], PassSpec("breaker", "cleanup", lambda m, o: _BreakGraph()))
    model = ir.from_onnx_text(FOLDABLE)
    before = ir.to_onnx_text(model)
    with pytest.raises(passes.PassVerificationError, match="(?s)breaker.*bogus") as info:
        passes.run_passes(model, specs, level=1, verify_each=True, on_error="raise")
    assert info.value.pass_name == "breaker"
    assert ir.to_onnx_text(model) == before


def test_verify_each_skips_a_breaking_pass_and_runs_the_rest():
    specs = (*passes.LEVELS[1], PassSpec("breaker", "cleanup", lambda m, o: _BreakGraph()))
    model = ir.from_onnx_text(FOLDABLE)
    report = passes.run_passes(model, specs, level=1, verify_each=True)
    ir.verify(model)
    assert [f.pass_name for f in report.failures] == ["breaker"]
    assert "bogus" in report.failures[0].error
    assert "Identity" not in op_types(model)  # the other passes still ran
    assert "skipped pass 'breaker' failed" in report.summary()


class _AlwaysModified(ir.passes.InPlacePass):
    def call(self, model):
        return ir.passes.PassResult(model, True)


def test_fixed_point_loop_is_bounded():
    spec = PassSpec("liar", "cleanup", lambda m, o: _AlwaysModified())
    report = passes.run_passes(ir.from_onnx_text(FOLDABLE), [spec], level=1, max_iterations=4)
    assert report.iterations == 4 and report.passes[0].runs == 4


def test_keeps_symbolic_dim_names():
    model = ir.from_onnx_text(FOLDABLE)
    passes.optimize(model)
    assert str(model.graph.inputs[0].shape[0]) == "batch"
    assert str(model.graph.outputs[0].shape[0]) == "batch"
    assert all(
        str(v.shape[0]) == "batch" for n in model.graph for v in n.outputs if v.shape is not None
    )


SUBGRAPH = """
<ir_version: 10, opset_import: ["" : 21]>
g (bool cond, float[2,3] x) => (float[3,2] y) {
   t = Transpose<perm=[1,0]>(x)
   y = If(cond) <
      then_branch = then_g () => (float[3,2] a) {
         i = Identity(t)
         u = Transpose<perm=[1,0]>(i)
         r = Relu(u)
         a = Transpose<perm=[1,0]>(r)
      },
      else_branch = else_g () => (float[3,2] b) {
         b = Neg(t)
      }
   >
}
"""


@pytest.mark.parametrize("cond", [True, False])
def test_optimizes_if_bodies_and_keeps_outer_captures(cond):
    model = ir.from_onnx_text(SUBGRAPH)
    optimized = copy_model(model)
    passes.optimize(optimized, verify_each=True, on_error="raise")
    if_node = next(n for n in optimized.graph if n.op_type == "If")
    body = if_node.attributes["then_branch"].value
    # T(Relu(T(t))) with t captured from outside is Relu(t): still the outer capture
    assert [n.op_type for n in body] == ["Relu"]
    assert body[0].inputs[0].producer().graph is optimized.graph
    feeds = random_feeds(model)
    feeds["cond"] = np.array(cond)
    np.testing.assert_allclose(run_ort(optimized, feeds)[0], run_ort(model, feeds)[0])


def test_fused_node_keeps_source_name():
    model = ir.from_onnx_text(
        """<ir_version: 10, opset_import: ["" : 21]>
        g (float[2,3] x) => (float[3,2] y) {
           t = Transpose<perm=[1,0]>(x)
           y = Relu(t)
        }"""
    )
    for node in model.graph:
        ir.set_source_name(node, f"layer.{node.op_type.lower()}", "torch")
    passes.optimize(model)
    assert op_types(model) == ["Relu", "Transpose"]
    assert {ir.source_name(n) for n in model.graph} <= {"layer.relu", "layer.transpose"}
    assert all(ir.source_name(n, "") for n in model.graph)
