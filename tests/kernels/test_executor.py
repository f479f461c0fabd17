"""The executor: intermediates, control flow with outer-scope captures, symbolic
dims, missing-kernel errors, devices. Expected values come from onnxruntime."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

import ir
from kernels.executor import MissingKernelsError, run

torch = pytest.importorskip("torch")

MLP = """
<ir_version: 10, opset_import: ["" : 21]>
mlp (float[batch, 4] x) => (float[batch, 2] y) <float[4, 3] w1 = {0.1, -0.2, 0.3, 0.4, 0.5, -0.6, 0.7, 0.8, 0.9, -1.0, 1.1, 1.2}, float[3, 2] w2 = {1.0, -1.0, 0.5, 0.25, -0.5, 2.0}> {
    h = MatMul(x, w1)
    r = Relu(h)
    y = MatMul(r, w2)
}
"""

# If whose branches use `x` and `k` from the outer scope; Loop summing `x` k times.
CONTROL = """
<ir_version: 10, opset_import: ["" : 21]>
ctrl (float[N] x, bool c, int64 k) => (float[N] y, float[N] z) {
    y = If(c) <
        then_branch = g1 () => (float[N] t) { t = Add(x, x) },
        else_branch = g2 () => (float[N] e) { e = Neg(x) }
    >
    zero = Mul(x, x)
    acc0 = Sub(zero, zero)
    z = Loop(k, c, acc0) <
        body = b (int64 i, bool cin, float[N] acc) => (bool cout, float[N] next) {
            cout = Identity(cin)
            next = Add(acc, x)
        }
    >
}
"""


def _ort(text: str, feed: dict) -> list[np.ndarray]:
    proto = ir.serde.serialize_model(ir.from_onnx_text(text))
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feed)


def test_intermediates_hold_every_node_output_matching_onnxruntime():
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    values = run(ir.from_onnx_text(MLP), {"x": x}, intermediates=True)
    assert {"x", "h", "r", "y"} <= set(values)
    np.testing.assert_allclose(values["r"], np.maximum(values["h"], 0))
    np.testing.assert_allclose(values["y"], _ort(MLP, {"x": x})[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("batch", [1, 7])
def test_symbolic_batch_runs_at_any_size(batch):
    x = np.random.default_rng(batch).standard_normal((batch, 4)).astype(np.float32)
    out = run(ir.from_onnx_text(MLP), {"x": x})
    assert out["y"].shape == (batch, 2)
    np.testing.assert_allclose(out["y"], _ort(MLP, {"x": x})[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cond", [True, False])
def test_if_and_loop_see_outer_scope_values(cond):
    feed = {"x": np.array([1.0, -2.0, 3.0], np.float32), "c": np.array(cond), "k": np.array(3, np.int64)}
    got = run(ir.from_onnx_text(CONTROL), feed)
    want = _ort(CONTROL, feed)
    np.testing.assert_allclose(got["y"], want[0])
    np.testing.assert_allclose(got["z"], want[1])


def test_missing_kernels_are_listed_all_at_once():
    model = ir.from_onnx_text("""
        <ir_version: 10, opset_import: ["" : 21]>
        g (float[N] x) => (float[N] y) {
            a = StringNormalizer(x)
            b = Relu(a)
            y = Multinomial(b)
        }
    """)
    with pytest.raises(MissingKernelsError) as info:
        run(model, {"x": np.zeros(3, np.float32)})
    assert {op for op, _ in info.value.missing} == {"StringNormalizer", "Multinomial"}
    assert "StringNormalizer" in str(info.value) and "Multinomial" in str(info.value)
    assert isinstance(info.value, NotImplementedError)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        run(ir.from_onnx_text(MLP), {"x": np.zeros((1, 4), np.float32)}, device="cuda")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    x = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    model = ir.from_onnx_text(MLP)
    np.testing.assert_allclose(run(model, {"x": x}, device="cuda")["y"], run(model, {"x": x})["y"], rtol=1e-4, atol=1e-5)
    feed = {"x": np.array([1.0, -2.0, 3.0], np.float32), "c": np.array(True), "k": np.array(2, np.int64)}
    ctrl = ir.from_onnx_text(CONTROL)
    np.testing.assert_allclose(run(ctrl, feed, device="cuda")["z"], run(ctrl, feed)["z"])


# ConstantOfShape of an empty shape is a scalar (Llama's attention-mask code builds one from Shape->Slice).
SCALAR_FILL = """
<ir_version: 10, opset_import: ["" : 21]>
fill (float[N] x) => (float[N] y) {
    zero = Constant<value = int64[1] {0}>()
    shape = Shape(x)
    none = Slice(shape, zero, zero)
    s = ConstantOfShape(none) <value = float[1] {2.5}>
    y = Mul(x, s)
}
"""


def test_constant_of_an_empty_shape_is_a_scalar():
    x = np.arange(3, dtype=np.float32)
    model = ir.from_onnx_text(SCALAR_FILL)
    values = run(model, {"x": x}, intermediates=True)
    assert values["s"].shape == ()
    np.testing.assert_allclose(values["y"], _ort(SCALAR_FILL, {"x": x})[0])
