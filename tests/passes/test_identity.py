"""passes.identity: Identity elimination that keeps each graph output its own value."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

import ir
from passes import optimize
from passes.identity import IdentityEliminationPass


def _run(model: ir.Model, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    proto = ir.serde.serialize_model(model)
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)


_SCAN = """
<ir_version: 8, opset_import: ["" : 17]>
g (float[seq, 4] x) => (float[4] final, float[seq, 4] ys) <float[4] init = {0, 0, 0, 0}> {
  final, ys = Scan <num_scan_inputs: int = 1, body: graph = body (float[4] acc, float[4] row) => (float[4] acc_out, float[4] y) {
    acc_out = Add(acc, row)
    y = Identity(acc_out)
  }> (init, x)
}
"""

_OUTPUT_TWICE = """
<ir_version: 8, opset_import: ["" : 17]>
g (float[N] x) => (float[N] a, float[N] b) {
  a = Relu(x)
  b = Identity(a)
}
"""

_CAPTURE = """
<ir_version: 8, opset_import: ["" : 17]>
g (float[N] x, bool c) => (float[N] y) {
  r = Relu(x)
  y = If(c) <then_branch: graph = t () => (float[N] t_out) { t_out = Identity(r) },
             else_branch: graph = e () => (float[N] e_out) { e_out = Neg(r) }>
}
"""


def test_scan_state_emitted_as_scan_output_keeps_both_outputs():
    model = ir.from_onnx_text(_SCAN)
    feeds = {"x": np.arange(12, dtype=np.float32).reshape(3, 4)}
    expected = _run(model, feeds)
    assert IdentityEliminationPass()(model).modified is False
    optimize(model, 2)
    ir.verify(model)
    for got, want in zip(_run(model, feeds), expected, strict=True):
        np.testing.assert_array_equal(got, want)


def test_output_copied_to_a_second_output_keeps_both_names():
    model = ir.from_onnx_text(_OUTPUT_TWICE)
    assert IdentityEliminationPass()(model).modified is False
    assert [v.name for v in model.graph.outputs] == ["a", "b"]
    x = np.array([-1.0, 2.0], np.float32)
    a, b = _run(model, {"x": x})
    np.testing.assert_array_equal(a, [0, 2])
    np.testing.assert_array_equal(b, [0, 2])


def test_branch_returning_a_captured_value_does_not_rename_it():
    model = ir.from_onnx_text(_CAPTURE)
    IdentityEliminationPass()(model)
    assert model.graph.node(0).outputs[0].name == "r"
    ir.verify(model)
    x = np.array([-1.0, 2.0], np.float32)
    np.testing.assert_array_equal(_run(model, {"x": x, "c": np.array(True)})[0], [0, 2])
    np.testing.assert_array_equal(_run(model, {"x": x, "c": np.array(False)})[0], [0, -2])


def test_plain_identity_is_still_removed():
    model = ir.from_onnx_text("""
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[N] x) => (float[N] y) { t = Identity(x)  y = Relu(t) }
    """)
    assert IdentityEliminationPass()(model).modified is True
    assert [n.op_type for n in model.graph] == ["Relu"]
