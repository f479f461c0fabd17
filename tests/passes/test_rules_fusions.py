"""passes.rules.activations and passes.rules.normalization: Gelu and LayerNormalization."""

from __future__ import annotations

import pytest
from passes_testing import op_types, optimize_and_compare

import ir

GELU_ERF = """g (float[batch,8] x) => (float[batch,8] y) {{
   c = Constant<value: tensor = float {{1.4142135}}>()
   d = Div(x, c)
   e = Erf(d)
   one = Constant<value: tensor = float {{1.0}}>()
   a = Add(e, one)
   m = Mul(x, a)
   half = Constant<value: tensor = float {{0.5}}>()
   y = Mul(m, half)
}}"""


# Keras' exact GELU as tf2onnx emits it (Erfc repaired to 1 - Erf): 0.5 * x * (1 - Erf(-x / sqrt 2))
GELU_ERFC = """g (float[batch,8] x) => (float[batch,8] y) {{
   half = Constant<value: tensor = float {{0.5}}>()
   hx = Mul(half, x)
   n = Neg(x)
   r = Constant<value: tensor = float {{0.70710677}}>()
   s = Mul(n, r)
   e = Erf(s)
   one = Constant<value: tensor = float {{1.0}}>()
   c = Sub(one, e)
   y = Mul(hx, c)
}}"""


def _at(opset: int, body: str) -> ir.Model:
    return ir.from_onnx_text(f'<ir_version: 10, opset_import: ["" : {opset}]>\n' + body)


def test_erf_gelu_fuses_at_opset_20():
    optimized, _ = optimize_and_compare(_at(20, GELU_ERF.format()))
    assert op_types(optimized) == ["Gelu"]


def test_erfc_form_of_gelu_fuses_at_opset_20():
    optimized, _ = optimize_and_compare(_at(20, GELU_ERFC.format()))
    assert op_types(optimized) == ["Gelu"]


def test_gelu_is_not_fused_before_opset_20():
    optimized, _ = optimize_and_compare(_at(19, GELU_ERF.format()))
    assert "Gelu" not in op_types(optimized)


LAYER_NORM = """g (float[batch,seq,8] x) => (float[batch,seq,8] y)
   <float[8] s = {{1,2,3,4,5,6,7,8}}, float[8] b = {{1,1,1,1,0,0,0,0}}> {{
   {mean1}
   d = Sub(x, m)
   two = Constant<value: tensor = float {{2.0}}>()
   p = Pow(d, two)
   {mean2}
   eps = Constant<value: tensor = float {{1e-5}}>()
   ve = Add(v, eps)
   sd = Sqrt(ve)
   n = Div(d, sd)
   ns = Mul(n, s)
   y = Add(ns, b)
}}"""


@pytest.mark.parametrize("opset", [17, 18])
def test_layer_norm_fuses_with_axes_as_attribute_or_input(opset):
    if opset == 17:
        mean1 = "m = ReduceMean<axes=[-1]>(x)"
        mean2 = "v = ReduceMean<axes=[-1]>(p)"
    else:
        # the shipped opset-18 rule wants keepdims spelled out
        mean1 = "ax = Constant<value: tensor = int64[1] {-1}>() m = ReduceMean<keepdims=1>(x, ax)"
        mean2 = "v = ReduceMean<keepdims=1>(p, ax)"
    model = _at(opset, LAYER_NORM.format(mean1=mean1, mean2=mean2))
    optimized, _ = optimize_and_compare(model)
    assert op_types(optimized) == ["LayerNormalization"]


def test_layer_norm_is_not_fused_before_opset_17():
    mean1, mean2 = "m = ReduceMean<axes=[-1]>(x)", "v = ReduceMean<axes=[-1]>(p)"
    optimized, _ = optimize_and_compare(_at(16, LAYER_NORM.format(mean1=mean1, mean2=mean2)))
    assert "LayerNormalization" not in op_types(optimized)
