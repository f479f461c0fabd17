"""passes.rules.affine: per-channel scale/bias into Conv and MatMul, strict Gemm."""

from __future__ import annotations

import numpy as np
import pytest
from onnxscript.rewriter import RewritePass
from passes_testing import op_types, optimize_and_compare

import ir
from passes.rules.affine import affine_rules

HEAD = '<ir_version: 10, opset_import: ["" : 21]>\n'


def _conv_model(tail: str, bias: bool = True) -> ir.Model:
    rng = np.random.default_rng(1)
    w = ",".join(f"{v:.4f}" for v in rng.standard_normal(4 * 3 * 3 * 3))
    b = "float[4] b = {0.1,0.2,0.3,0.4},"
    return ir.from_onnx_text(
        HEAD
        + f"""g (float[batch,3,8,8] x) => (float[batch,4,8,8] y)
        <float[4,3,3,3] w = {{{w}}}, {b if bias else ""} float[4,1,1] k = {{2,-1,0.5,3}}>
        {{ c = Conv<pads=[1,1,1,1]>(x, w{", b" if bias else ""}) {tail} }}"""
    )


@pytest.mark.parametrize("tail", ["y = Mul(c, k)", "y = Mul(k, c)", "y = Add(c, k)"])
@pytest.mark.parametrize("bias", [True, False])
def test_per_channel_constant_folds_into_conv(tail, bias):
    optimized, report = optimize_and_compare(_conv_model(tail, bias))
    assert op_types(optimized) == ["Conv"]
    assert report.fused >= 1


def test_mul_and_add_chain_folds_into_conv():
    optimized, _ = optimize_and_compare(_conv_model("m = Mul(c, k) y = Add(m, k)"))
    assert op_types(optimized) == ["Conv"]


def test_leaves_spatially_varying_operand_alone():
    model = _conv_model("y = Mul(c, z)")
    model.graph.initializers["z"] = ir.Value(
        name="z", const_value=ir.tensor(np.ones((1, 1, 8, 8), np.float32))
    )
    node = model.graph.node(1)
    node.replace_input_with(1, model.graph.initializers["z"])
    assert not RewritePass(affine_rules())(model).modified


def test_scale_folds_into_matmul_weights():
    model = ir.from_onnx_text(
        HEAD
        + """g (float[batch,seq,3] x) => (float[batch,seq,2] y)
        <float[3,2] w = {1,2,3,4,5,6}, float[2] s = {0.5,-2}>
        { m = MatMul(x, w) y = Mul(m, s) }"""
    )
    optimized, _ = optimize_and_compare(model)
    assert op_types(optimized) == ["MatMul"]


def test_matmul_add_becomes_gemm_only_when_c_fits():
    text = (
        HEAD
        + """g (float[4,3] x) => (float[?,?,?] y)
        <float[3,2] w = {{1,2,3,4,5,6}}, float[{c_shape}] c = {{{c_values}}}>
        {{ m = MatMul(x, w) y = Add(m, c) }}"""
    )
    ok = ir.from_onnx_text(text.format(c_shape="2", c_values="1,2"))
    optimized, _ = optimize_and_compare(ok)
    assert op_types(optimized) == ["Gemm"]
    too_big = ir.from_onnx_text(text.format(c_shape="5,1,1", c_values="1,2,3,4,5"))
    optimized, _ = optimize_and_compare(too_big)
    assert op_types(optimized) == ["MatMul", "Add"]
