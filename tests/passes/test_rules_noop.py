"""passes.rules.noop and the -O1 no-op removal: before/after, leave-alone, numerics."""

from __future__ import annotations

import pytest
from onnxscript.rewriter import RewritePass
from passes_testing import op_types, optimize_and_compare

import ir
from passes.rules.noop import noop_rules

HEAD = '<ir_version: 10, opset_import: ["" : 21]>\n'


@pytest.mark.parametrize(
    "body",
    [
        "p = Constant<value: tensor = int64[6] {0,0,0,0,0,0}>() y = Pad(x, p)",
        "s = Constant<value: tensor = int64[2] {0,0}>() e = Constant<value: tensor = int64[2] {9223372036854775807,4}>()"
        " a = Constant<value: tensor = int64[2] {0,2}>() y = Slice(x, s, e, a)",
        "r = Constant<value: tensor = int64[3] {1,1,1}>() y = Tile(x, r)",
    ],
    ids=["pad-zeros", "slice-all", "tile-ones"],
)
def test_noop_rule_removes_op(body):
    model = ir.from_onnx_text(HEAD + f"g (float[2,3,4] x) => (float[2,3,4] y) {{ {body} }}")
    assert RewritePass(noop_rules())(model).modified
    assert [t for t in op_types(model) if t != "Constant"] == ["Identity"]
    assert model.graph.node(-1).inputs[0] is model.graph.inputs[0]
    ir.verify(model)


@pytest.mark.parametrize(
    "body",
    [
        "p = Constant<value: tensor = int64[6] {0,1,0,0,0,0}>() y = Pad(x, p)",
        "s = Constant<value: tensor = int64[1] {1}>() e = Constant<value: tensor = int64[1] {4}>()"
        " a = Constant<value: tensor = int64[1] {2}>() y = Slice(x, s, e, a)",
        "s = Constant<value: tensor = int64[1] {0}>() e = Constant<value: tensor = int64[1] {3}>()"
        " a = Constant<value: tensor = int64[1] {2}>() y = Slice(x, s, e, a)",
        "r = Constant<value: tensor = int64[3] {1,2,1}>() y = Tile(x, r)",
        "y = Pad(x, pads)",
    ],
    ids=["pad-one", "slice-start", "slice-short", "tile-two", "pad-dynamic"],
)
def test_noop_rule_leaves_real_work_alone(body):
    model = ir.from_onnx_text(
        HEAD + f"g (float[2,3,4] x, int64[6] pads) => (float[?,?,?] y) {{ {body} }}"
    )
    assert not RewritePass(noop_rules())(model).modified


def test_o1_removes_each_kind_of_noop_with_same_numerics():
    model = ir.from_onnx_text(
        HEAD
        + """g (float[batch,3,4] x) => (float[batch,3,4] y) {
           a = Identity(x)
           b = Dropout(a)
           c = Cast<to=1>(b)
           p = Constant<value: tensor = int64[6] {0,0,0,0,0,0}>()
           d = Pad(c, p)
           e = Transpose<perm=[0,1,2]>(d)
           f = Concat<axis=1>(e)
           sh = Shape(f)
           g = Expand(f, sh)
           st = Constant<value: tensor = int64[1] {0}>()
           en = Constant<value: tensor = int64[1] {4}>()
           ax = Constant<value: tensor = int64[1] {2}>()
           h = Slice(g, st, en, ax)
           one = Constant<value: tensor = float {1}>()
           k = Mul(h, one)
           y = Relu(k)
        }"""
    )
    optimized, report = optimize_and_compare(model, 1)
    assert op_types(optimized) == ["Relu"]
    assert report.nodes_before == 11 and report.nodes_after == 1
