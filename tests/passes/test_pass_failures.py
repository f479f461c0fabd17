"""Bad input: ops a pass does not know are left alone; a failing pass is undone and named."""

from __future__ import annotations

import numpy as np
import pytest
from onnxscript.rewriter import RewritePass, RewriteRuleClassBase, RewriteRuleSet
from passes_testing import copy_model, op_types, random_feeds, run_ort

import ir
import passes
from passes.pipeline import PassSpec

# com.microsoft::Gelu is a contrib op onnxruntime runs but no pass knows; the
# Transpose pair and the Identity around it are ours to remove.
CUSTOM_DOMAIN = """
<ir_version: 10, opset_import: ["" : 21, "com.microsoft" : 1]>
g (float[batch,4] x) => (float[batch,4] y) {
   i = Identity(x)
   t1 = Transpose<perm=[1,0]>(i)
   g1 = com.microsoft.Gelu(t1)
   t2 = Transpose<perm=[1,0]>(g1)
   y = Relu(t2)
}
"""

# acme::Frobnicate exists nowhere: no schema, no shape, no kernel.
UNKNOWN_OP = """
<ir_version: 10, opset_import: ["" : 21, "acme" : 1]>
g (float[2,3] x) => (float[3,2] y, float[?] z) {
   c = Constant<value: tensor = float[2] {1, 2}>()
   t = Transpose<perm=[1,0]>(x)
   f = acme.Frobnicate<mode: string = "odd">(t, c)
   r = Relu(f)
   y = Identity(r)
   z = acme.Frobnicate(c)
}
"""


def test_custom_domain_op_is_kept_and_outputs_match():
    model = ir.from_onnx_text(CUSTOM_DOMAIN)
    optimized = copy_model(model)
    report = passes.optimize(optimized, verify_each=True, on_error="raise")
    assert report.failures == []
    assert op_types(optimized) == ["Transpose", "Gelu", "Relu", "Transpose"]
    assert optimized.graph.node(1).domain == "com.microsoft"
    feeds = random_feeds(model)
    np.testing.assert_allclose(run_ort(optimized, feeds)[0], run_ort(model, feeds)[0], rtol=1e-5)


def test_unknown_op_is_left_alone():
    model = ir.from_onnx_text(UNKNOWN_OP)
    report = passes.optimize(model, verify_each=True, on_error="raise")
    assert report.failures == []
    frob = [n for n in model.graph if n.op_type == "Frobnicate"]
    assert len(frob) == 2 and all(n.domain == "acme" for n in frob)
    # not folded though its input is constant, attributes kept, and the Transpose
    # feeding it is not moved through it
    assert frob[0].inputs[0].producer().op_type == "Transpose"
    assert frob[0].attributes["mode"].value == "odd"
    assert frob[1].inputs[0].const_value is not None
    assert "Identity" not in op_types(model)


class _ExplodeOnCustomOp(RewriteRuleClassBase):
    """A buggy rule: matches the com.microsoft op and raises in rewrite."""

    def pattern(self, op, x):
        return op.Gelu(x, _domain="com.microsoft")

    def rewrite(self, op, x):
        raise ZeroDivisionError("bug in a rule")


def _exploding_spec() -> PassSpec:
    return PassSpec(
        "buggy-rule", "fuse", lambda m, o: RewritePass(RewriteRuleSet([_ExplodeOnCustomOp.rule()]))
    )


class _HalfDone(ir.passes.InPlacePass):
    """Removes the graph's nodes one by one and fails half way, leaving a broken graph."""

    def call(self, model):
        for node in list(model.graph)[:2]:
            node.outputs[0].replace_all_uses_with(node.inputs[0], replace_graph_outputs=True)
            model.graph.remove(node, safe=True)
        raise RuntimeError("gave up half way")


def test_failing_rule_raises_with_pass_and_node_and_restores_the_model():
    model = ir.from_onnx_text(CUSTOM_DOMAIN)
    model.graph.node(2).name = "custom_gelu"
    before = ir.to_onnx_text(model)
    specs = (*passes.LEVELS[2], _exploding_spec())
    with pytest.raises(passes.PassError, match="'buggy-rule' failed at node 'custom_gelu'") as info:
        passes.run_passes(model, specs, level=2, on_error="raise")
    assert info.value.pass_name == "buggy-rule" and info.value.node == "custom_gelu"
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert ir.to_onnx_text(model) == before  # restored, not half-optimized


def test_failing_rule_is_skipped_and_recorded():
    model = ir.from_onnx_text(CUSTOM_DOMAIN)
    model.graph.node(2).name = "custom_gelu"
    original = copy_model(model)
    specs = (*passes.LEVELS[2], _exploding_spec())
    report = passes.run_passes(model, specs, level=2, verify_each=True)
    [failure] = report.failures
    assert failure.pass_name == "buggy-rule" and failure.node == "custom_gelu"
    assert failure.error == "ZeroDivisionError: bug in a rule"
    assert "buggy-rule" not in {p.name for p in report.passes}
    assert op_types(model) == ["Transpose", "Gelu", "Relu", "Transpose"]  # the rest still ran
    feeds = random_feeds(original)
    np.testing.assert_allclose(run_ort(model, feeds)[0], run_ort(original, feeds)[0], rtol=1e-5)


def test_pass_failing_half_way_leaves_the_model_unchanged():
    model = ir.from_onnx_text(CUSTOM_DOMAIN)
    original = copy_model(model)
    before = ir.to_onnx_text(model)
    spec = PassSpec("half-done", "cleanup", lambda m, o: _HalfDone())
    with pytest.raises(passes.PassError, match="half-done.*gave up half way"):
        passes.run_passes(model, [spec], level=1, on_error="raise")
    assert ir.to_onnx_text(model) == before
    ir.verify(model)
    feeds = random_feeds(original)
    np.testing.assert_allclose(run_ort(model, feeds)[0], run_ort(original, feeds)[0])


def test_skip_keeps_functions_and_metadata():
    model = ir.from_onnx_text(CUSTOM_DOMAIN)
    model.metadata_props["origin"] = "test"
    spec = PassSpec("half-done", "cleanup", lambda m, o: _HalfDone())
    report = passes.run_passes(model, [spec], level=1)
    assert report.failures[0].pass_name == "half-done"
    assert model.metadata_props == {"origin": "test"}
    assert report.nodes_after == report.nodes_before == 5


def test_unknown_on_error_is_rejected():
    with pytest.raises(ValueError, match="on_error"):
        passes.optimize(ir.from_onnx_text(CUSTOM_DOMAIN), on_error="ignore")
