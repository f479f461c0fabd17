"""passes.rules.transpose: sinking through elementwise and reduction ops."""

from __future__ import annotations

import pytest
from onnxscript.rewriter import RewritePass
from passes_testing import assert_graph_equal, op_types, optimize_and_compare

import ir
from passes.rules.transpose import transpose_rules

HEAD = '<ir_version: 10, opset_import: ["" : 21]>\n'


def _model(signature: str, body: str) -> ir.Model:
    return ir.from_onnx_text(HEAD + f"g ({signature}) {{ {body} }}")


def test_unary_sinks_below_relu():
    before = _model(
        "float[2,3,4] x) => (float[4,2,3] y",
        "t = Transpose<perm=[2,0,1]>(x) y = Relu(t)",
    )
    expected = _model(
        "float[2,3,4] x) => (float[4,2,3] y",
        "r = Relu(x) y = Transpose<perm=[2,0,1]>(r)",
    )
    assert RewritePass(transpose_rules())(before).modified
    assert_graph_equal(before, expected)


def test_binary_with_two_transposes_becomes_one():
    model = _model(
        "float[2,3,4] a, float[2,3,4] b) => (float[3,4,2] y",
        "ta = Transpose<perm=[1,2,0]>(a) tb = Transpose<perm=[1,2,0]>(b) y = Add(ta, tb)",
    )
    expected = _model(
        "float[2,3,4] a, float[2,3,4] b) => (float[3,4,2] y",
        "s = Add(a, b) y = Transpose<perm=[1,2,0]>(s)",
    )
    optimized, _ = optimize_and_compare(model)
    assert_graph_equal(optimized, expected)


def test_constant_operand_is_transposed_offline():
    model = _model(
        "float[1,2,3] x) => (float[1,3,2] y",
        "c = Constant<value: tensor = float[3,1] {1,2,3}>()"
        " t = Transpose<perm=[0,2,1]>(x) m = Mul(c, t) y = Transpose<perm=[0,2,1]>(m)",
    )
    model.graph.outputs[0].shape = ir.Shape([1, 2, 3])
    optimized, _ = optimize_and_compare(model)
    assert op_types(optimized) == ["Mul"]


@pytest.mark.parametrize("keepdims", [0, 1])
@pytest.mark.parametrize("axes_as_input", [False, True])
def test_reduction_sinks_with_remapped_axes(keepdims, axes_as_input):
    opset = 18 if axes_as_input else 17
    reduce = (
        f"ax = Constant<value: tensor = int64[1] {{1}}>() r = ReduceMean<keepdims={keepdims}>(t, ax)"
        if axes_as_input
        else f"r = ReduceMean<axes=[1], keepdims={keepdims}>(t)"
    )
    model = ir.from_onnx_text(
        f'<ir_version: 10, opset_import: ["" : {opset}]>\n'
        f"g (float[2,3,4,5] x) => (float[?,?,?,?] y) {{ t = Transpose<perm=[0,2,3,1]>(x) {reduce} y = Neg(r) }}"
    )
    optimized, _ = optimize_and_compare(model)
    ops = op_types(optimized)
    assert ops[0] == "ReduceMean" and ops.count("Transpose") == 1


def test_reduce_all_axes_drops_the_transpose():
    model = _model(
        "float[2,3,4] x) => (float[1,1,1] y",
        "t = Transpose<perm=[2,0,1]>(x) y = ReduceSum<keepdims=1>(t)",
    )
    optimized, _ = optimize_and_compare(model)
    assert op_types(optimized) == ["ReduceSum"]


def test_leaves_shared_transpose_alone():
    model = _model(
        "float[2,3] x) => (float[3,2] y, float[3,2] z",
        "t = Transpose<perm=[1,0]>(x) y = Relu(t) z = Neg(t)",
    )
    assert not RewritePass(transpose_rules())(model).modified


def test_leaves_mismatched_permutations_alone():
    model = _model(
        "float[2,3,4] a, float[2,3,4] b) => (float[?,?,?] y",
        "ta = Transpose<perm=[1,2,0]>(a) tb = Transpose<perm=[2,0,1]>(b) y = Add(ta, tb)",
    )
    assert not RewritePass(transpose_rules())(model).modified
