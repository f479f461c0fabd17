"""ir.verify catches each kind of broken graph, and accepts valid ones."""

from __future__ import annotations

import onnx
import pytest

import ir

HEADER = '<ir_version: 10, opset_import: ["" : 21]>'


def _model(body: str) -> ir.Model:
    return ir.from_onnx_text(HEADER + "\n" + body)


def test_accepts_valid_graph_with_subgraph_capture():
    model = _model("""
        g (float[N] x, bool c) => (float[N] y) {
            t = Relu(x)
            y = If(c) <then_branch = then_g () => (float[N] a) { a = Add(t, x) },
                       else_branch = else_g () => (float[N] b) { b = Neg(t) }>
        }
    """)
    ir.verify(model)


def test_use_before_definition_is_reported_with_context():
    model = _model("g (float[N] x) => (float[N] y) { t = Relu(x)\n y = Add(t, x) }")
    relu, add = list(model.graph)
    model.graph.remove(relu)
    model.graph.append(relu)  # now Add uses t before Relu defines it
    with pytest.raises(ir.VerificationError) as e:
        ir.verify(model)
    assert "used before the node that defines it" in str(e.value)
    assert ">>" in str(e.value)  # the context marks the bad node


def test_cycle_is_reported():
    model = _model("g (float[N] x) => (float[N] y) { a = Relu(x)\n b = Neg(a)\n y = Add(a, b) }")
    a, b, _ = list(model.graph)
    a.replace_input_with(0, b.outputs[0])  # a = Relu(b), b = Neg(a)
    with pytest.raises(ir.VerificationError, match="cycle"):
        ir.verify(model)


def test_wrong_arity_is_reported():
    model = _model("g (float[N] x) => (float[N] y) { y = Relu(x, x) }")
    with pytest.raises(ir.VerificationError, match="2 inputs, Relu-14 takes 1"):
        ir.verify(model)


def test_unknown_attribute_is_reported():
    model = _model("g (float[N] x) => (float[N] y) { y = Relu<alpha = 0.1>(x) }")
    with pytest.raises(ir.VerificationError, match="unknown attribute 'alpha'"):
        ir.verify(model)


def test_attribute_of_wrong_type_is_reported():
    model = _model("g (float[N] x) => (float[N] y) { y = LeakyRelu<alpha = 1>(x) }")
    with pytest.raises(ir.VerificationError, match="attribute 'alpha' is INT"):
        ir.verify(model)


def test_missing_required_attribute_is_reported():
    model = _model("g (float[N] x) => (float[N] y) { y = Cast(x) }")
    with pytest.raises(ir.VerificationError, match="required attribute 'to'"):
        ir.verify(model)


def test_type_constraint_violation_is_reported():
    model = _model("g (int64[N] x) => (int64[N] y) { y = Sin(x) }")
    with pytest.raises(ir.VerificationError, match=r"tensor\(int64\), T allows"):
        ir.verify(model)


def test_mismatched_type_variable_is_reported():
    model = _model("g (float[N] x, double[N] z) => (float[N] y) { y = Add(x, z) }")
    with pytest.raises(ir.VerificationError, match="but input 0 is tensor"):
        ir.verify(model)


def test_capture_of_value_not_in_scope_is_reported():
    model = _model("""
        g (float[N] x, bool c) => (float[N] y) {
            y = If(c) <then_branch = then_g () => (float[N] a) { t = Relu(x)\n a = Neg(t) },
                       else_branch = else_g () => (float[N] b) { b = Neg(x) }>
        }
    """)
    if_node = list(model.graph)[0]
    then_graph = if_node.attributes["then_branch"].value
    else_graph = if_node.attributes["else_branch"].value
    stray = list(then_graph)[0].outputs[0]  # defined only inside the then branch
    list(else_graph)[0].replace_input_with(0, stray)
    with pytest.raises(ir.VerificationError, match="not defined in this graph or an enclosing scope"):
        ir.verify(model)


def test_unknown_op_is_reported():
    model = _model("g (float[N] x) => (float[N] y) { y = NoSuchOp(x) }")
    with pytest.raises(ir.VerificationError, match="no operator 'NoSuchOp'"):
        ir.verify(model)


def test_every_problem_is_listed():
    model = _model("g (float[N] x) => (float[N] y) { a = Relu<alpha = 0.1>(x)\n y = Cast(a) }")
    with pytest.raises(ir.VerificationError) as e:
        ir.verify(model)
    assert len(e.value.problems) == 2


def test_accepts_the_onnx_conformance_models(node_testcases):
    # Outside truth: every node test model that onnx's own checker accepts must verify.
    checked = 0
    for case in node_testcases.values():
        try:
            onnx.checker.check_model(case.model, full_check=True)
        except Exception:
            continue
        ir.verify(ir.serde.deserialize_model(case.model))
        checked += 1
    assert checked > 1500
