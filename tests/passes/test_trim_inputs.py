"""Trailing empty inputs: dropped by TrimEmptyInputsPass; BatchNorm folding survives them."""

from __future__ import annotations

from onnxscript.rewriter import RewritePass
from passes_testing import op_types, optimize_and_compare

import ir
from passes.rules.normalization import batchnorm_rules
from passes.trim_inputs import TrimEmptyInputsPass

# Conv with its bias given as "" (as the TorchScript exporter writes a bias-free Conv)
CONV_BN = """
<ir_version: 10, opset_import: ["" : 21]>
g (float[1,2,5,5] x) => (float[1,3,5,5] y)
   <float[3,2,1,1] w = {1,2,3,4,5,6}, float[3] s = {1,2,3}, float[3] b = {0.5,0,-1},
    float[3] m = {0.1,0.2,0.3}, float[3] v = {1,4,9}>
{
   c = Conv(x, w, "")
   y = BatchNormalization(c, s, b, m, v)
}
"""


def test_trim_drops_only_trailing_empty_inputs():
    model = ir.from_onnx_text(CONV_BN)
    conv = model.graph.node(0)
    assert len(conv.inputs) == 3
    assert TrimEmptyInputsPass()(model).modified
    assert len(conv.inputs) == 2 and conv.inputs[1].name == "w"
    assert not TrimEmptyInputsPass()(model).modified
    ir.verify(model)


def test_batchnorm_fold_refuses_empty_bias_instead_of_crashing():
    model = ir.from_onnx_text(CONV_BN)
    assert not RewritePass(batchnorm_rules())(model).modified  # onnxscript's own rule raises here
    assert op_types(model) == ["Conv", "BatchNormalization"]


def test_o2_folds_batchnorm_into_bias_free_conv():
    optimized, _ = optimize_and_compare(ir.from_onnx_text(CONV_BN), 2, rtol=1e-5, atol=1e-5)
    assert op_types(optimized) == ["Conv"]
