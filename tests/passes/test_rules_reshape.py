"""passes.rules.reshape: view-op chains collapse."""

from __future__ import annotations

from onnxscript.rewriter import RewritePass
from passes_testing import op_types, optimize_and_compare

import ir
from passes.rules.reshape import reshape_rules

HEAD = '<ir_version: 10, opset_import: ["" : 21]>\n'


def test_unsqueeze_then_reshape_becomes_one_reshape_with_symbolic_batch():
    model = ir.from_onnx_text(
        HEAD
        + """g (float[batch,3,4] x) => (float[batch,12] y) {
           a = Constant<value: tensor = int64[1] {1}>()
           u = Unsqueeze(x, a)
           s = Constant<value: tensor = int64[2] {0,12}>()
           r = Reshape(u, s)
           y = Relu(r)
        }"""
    )
    optimized, _ = optimize_and_compare(model)
    assert [t for t in op_types(optimized)] == ["Reshape", "Relu"]
    shape = optimized.graph.node(0).inputs[1].const_value.numpy().tolist()
    assert shape == [-1, 12]


def test_squeeze_of_unsqueeze_is_removed():
    model = ir.from_onnx_text(
        HEAD
        + """g (float[batch,n] x) => (float[batch,n] y) {
           a = Constant<value: tensor = int64[1] {-1}>()
           u = Unsqueeze(x, a)
           b = Constant<value: tensor = int64[1] {2}>()
           s = Squeeze(u, b)
           y = Neg(s)
        }"""
    )
    optimized, _ = optimize_and_compare(model)
    assert op_types(optimized) == ["Neg"]


def test_unsqueeze_of_squeeze_needs_unit_dims():
    text = (
        HEAD
        + """g (float[{d},3] x) => (float[?,?] y) {{
           a = Constant<value: tensor = int64[1] {{0}}>()
           s = Squeeze(x, a)
           u = Unsqueeze(s, a)
           y = Neg(u)
        }}"""
    )
    optimized, _ = optimize_and_compare(ir.from_onnx_text(text.format(d=1)))
    assert op_types(optimized) == ["Neg"]
    unknown = ir.from_onnx_text(text.format(d="n"))
    assert not RewritePass(reshape_rules())(unknown).modified


def test_leaves_chain_with_two_unknown_dims_alone():
    model = ir.from_onnx_text(
        HEAD
        + """g (float[b,n,4] x) => (float[?,?,?,?] y) {
           a = Constant<value: tensor = int64[1] {0}>()
           u = Unsqueeze(x, a)
           c = Constant<value: tensor = int64[1] {3}>()
           y = Unsqueeze(u, c)
        }"""
    )
    assert not RewritePass(reshape_rules())(model).modified
