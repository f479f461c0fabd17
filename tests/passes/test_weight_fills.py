"""Weights filled by ConstantOfShape become initializers whatever their size (passes.weight_fills)."""

from __future__ import annotations

import numpy as np
from passes_testing import op_types, optimize_and_compare

import ir
from passes.shape_inference import ShapeInferencePass
from passes.weight_fills import MaterializeWeightFillsPass

# A 65x64x8x8 fill is 1,064,960 bytes: over the folder's 1 MiB cap. The
# BatchNormalization after the Conv folds only once the weight is a constant.
CONV_FILL_BN = """
<ir_version: 10, opset_import: ["" : 21]>
g (float[1,64,8,8] x) => (float[1,65,1,1] y)
   <int64[4] shape = {65,64,8,8}, float[65] s = {%s}, float[65] b = {%s}, float[65] m = {%s},
    float[65] v = {%s}>
{
   w = ConstantOfShape <value = float[1] {0.02}> (shape)
   c = Conv(x, w)
   y = BatchNormalization(c, s, b, m, v)
}
"""

# Gemm weight filled as [1,1,8,6] and reshaped to [8,6]; a Reshape of a fill is a fill.
GEMM_RESHAPED_FILL = """
<ir_version: 10, opset_import: ["" : 21]>
g (float[2,6] x) => (float[2,8] y)
   <int64[4] shape = {1,1,8,6}, int64[2] to = {8,6}, float[8] bias = {1,2,3,4,5,6,7,8}>
{
   f = ConstantOfShape <value = float[1] {0.5}> (shape)
   w = Reshape(f, to)
   y = Gemm <transB = 1> (x, w, bias)
}
"""

# A fill that feeds an Add is not a weight: left to the folder's cap.
FILL_INTO_ADD = """
<ir_version: 10, opset_import: ["" : 21]>
g (float[2,3] x) => (float[2,3] y) <int64[2] shape = {2,3}>
{
   f = ConstantOfShape <value = float[1] {1.5}> (shape)
   y = Add(x, f)
}
"""


def _with_bn_statistics(text: str) -> ir.Model:
    """``text`` with random scale, bias, mean and (positive) variance filled in."""
    rng = np.random.default_rng(1)
    columns = [rng.uniform(low, low + 1.0, 65) for low in (0.5, -1.0, -1.0, 0.5)]
    return ir.from_onnx_text(text % tuple(",".join(f"{x:.4f}" for x in c) for c in columns))


def test_o2_folds_batchnorm_into_a_conv_whose_weight_is_a_fill_over_the_cap():
    model = _with_bn_statistics(CONV_FILL_BN)
    optimized, report = optimize_and_compare(model, 2, rtol=1e-5, atol=1e-5)
    assert op_types(optimized) == ["Conv"]
    weight = optimized.graph.node(0).inputs[1].const_value.numpy()
    assert weight.shape == (65, 64, 8, 8)
    assert report.nodes_after == 1


def test_reshaped_fill_feeding_a_gemm_becomes_one_initializer():
    model = ir.from_onnx_text(GEMM_RESHAPED_FILL)
    ShapeInferencePass()(model)  # the Reshape's output shape, as the pipeline infers it first
    result = MaterializeWeightFillsPass()(model)
    assert result.modified
    assert op_types(model) == ["Gemm"]
    weight = model.graph.node(0).inputs[1]
    assert weight.is_initializer() and weight.name == "w"
    np.testing.assert_array_equal(weight.const_value.numpy(), np.full((8, 6), 0.5, np.float32))
    ir.verify(model)
    optimize_and_compare(ir.from_onnx_text(GEMM_RESHAPED_FILL), 1, rtol=1e-5, atol=1e-5)


def test_fill_used_outside_a_weight_slot_is_left_alone():
    model = ir.from_onnx_text(FILL_INTO_ADD)
    assert not MaterializeWeightFillsPass()(model).modified
    assert op_types(model) == ["ConstantOfShape", "Add"]


def test_fill_without_a_value_is_float_zeros():
    text = GEMM_RESHAPED_FILL.replace("<value = float[1] {0.5}> ", "")
    model = ir.from_onnx_text(text)
    ShapeInferencePass()(model)
    assert MaterializeWeightFillsPass()(model).modified
    weight = model.graph.node(0).inputs[1].const_value.numpy()
    np.testing.assert_array_equal(weight, np.zeros((8, 6), np.float32))
