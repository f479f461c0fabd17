"""TF kernels for older opsets and for patterns found by ``bench/sweep_onnx.py``, against onnxruntime.

Each case is a one- or few-node ONNX model at the opset named, run by ``kernels.tf.run``
(eagerly) or traced with every dim unknown (as in a SavedModel signature), and compared
with onnxruntime on the same model.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper  # noqa: E402

import ir  # noqa: E402
from kernels.tf import run as tf_run  # noqa: E402

F, I64 = TensorProto.FLOAT, TensorProto.INT64


def _model(nodes, inputs, outputs, opset: int, initializers=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=7)


def _compare(proto, feeds: dict[str, np.ndarray], atol: float = 1e-6) -> None:
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = session.run(None, feeds)
    got = tf_run.run(ir.from_proto(proto), feeds)
    for out, want in zip(proto.graph.output, expected, strict=True):
        np.testing.assert_allclose(np.asarray(got[out.name]), want, atol=atol, rtol=1e-6)


def test_sum_6() -> None:
    rng = np.random.default_rng(0)
    feeds = {n: rng.standard_normal((2, 3)).astype(np.float32) for n in "abc"}
    proto = _model([helper.make_node("Sum", ["a", "b", "c"], ["y"])],
                   [helper.make_tensor_value_info(n, F, [2, 3]) for n in "abc"],
                   [helper.make_tensor_value_info("y", F, None)], 6)
    _compare(proto, feeds)


@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_upsample_7_with_scales_as_an_attribute(mode: str) -> None:
    x = np.random.default_rng(1).standard_normal((1, 2, 3, 4)).astype(np.float32)
    proto = _model([helper.make_node("Upsample", ["x"], ["y"], mode=mode, scales=[1.0, 1.0, 2.0, 3.0])],
                   [helper.make_tensor_value_info("x", F, [1, 2, 3, 4])],
                   [helper.make_tensor_value_info("y", F, None)], 7)
    _compare(proto, {"x": x}, atol=1e-5)


@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_resize_10_with_scales_as_an_input(mode: str) -> None:
    x = np.random.default_rng(2).standard_normal((1, 2, 4, 5)).astype(np.float32)
    scales = helper.make_tensor("s", F, [4], [1.0, 1.0, 2.0, 1.5])
    proto = _model([helper.make_node("Resize", ["x", "s"], ["y"], mode=mode)],
                   [helper.make_tensor_value_info("x", F, [1, 2, 4, 5])],
                   [helper.make_tensor_value_info("y", F, None)], 10, [scales])
    _compare(proto, {"x": x}, atol=1e-5)


def test_top_k_10_takes_k_as_an_input_and_1_as_an_attribute() -> None:
    x = np.random.default_rng(3).permutation(24).astype(np.float32).reshape(2, 3, 4)
    outputs = [helper.make_tensor_value_info("v", F, None), helper.make_tensor_value_info("i", I64, None)]
    inputs = [helper.make_tensor_value_info("x", F, [2, 3, 4])]
    k = helper.make_tensor("k", I64, [1], [2])
    _compare(_model([helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=1)], inputs, outputs, 10, [k]), {"x": x})
    _compare(_model([helper.make_node("TopK", ["x"], ["v", "i"], axis=-1, k=3)], inputs, outputs, 1), {"x": x})


def _sizes_reshape_model() -> object:
    """torch.onnx (dynamo)'s attention reshape: the target shape is a Concat of Slices of a
    Shape, one starting at INT64_MIN: x[b, s, 64] -> y[b, s, 4, 16]."""
    big, small = 2**63 - 1, -(2**63)
    consts = [helper.make_tensor("lo", I64, [1], [small]), helper.make_tensor("m2", I64, [1], [-1]),
              helper.make_tensor("end", I64, [1], [big]), helper.make_tensor("heads", I64, [2], [4, 16])]
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Slice", ["s", "lo", "m2"], ["lead"]),  # [b, s]
             helper.make_node("Concat", ["lead", "heads"], ["target"], axis=0),
             helper.make_node("Reshape", ["x", "target"], ["y"]),
             helper.make_node("Slice", ["s", "m2", "end"], ["last"])]  # [64]
    return _model(nodes, [helper.make_tensor_value_info("x", F, ["b", "s", 64])],
                  [helper.make_tensor_value_info("y", F, None), helper.make_tensor_value_info("last", I64, None)],
                  18, consts)


def test_reshape_to_slices_of_a_shape_from_int64_min_traces_with_unknown_dims() -> None:
    proto = _sizes_reshape_model()
    x = np.random.default_rng(4).standard_normal((2, 5, 64)).astype(np.float32)
    walker = tf_run.Walker(ir.from_proto(proto))
    traced = tf.function(lambda t: walker.run({"x": t}), input_signature=[tf.TensorSpec([None, None, 64])])
    got = traced(x)  # tracing failed: "Subshape start out of bounds: -4611686018427387904"
    expected = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.testing.assert_array_equal(got["y"].numpy(), expected[0])
    np.testing.assert_array_equal(got["last"].numpy(), expected[1])


@pytest.mark.parametrize(("starts", "ends", "steps"), [
    ([-(2**63)], [2**63 - 1], [1]), ([-9], [2], [1]), ([2**63 - 1], [-(2**63)], [-1]), ([9], [-9], [-2]),
    ([-1], [-6], [-1]),
])
def test_slice_bounds_beyond_a_known_size(starts, ends, steps) -> None:
    x = np.arange(5, dtype=np.float32)
    consts = [helper.make_tensor(n, I64, [1], v) for n, v in (("a", starts), ("b", ends), ("c", steps))]
    consts.append(helper.make_tensor("ax", I64, [1], [0]))
    proto = _model([helper.make_node("Slice", ["x", "a", "b", "ax", "c"], ["y"])],
                   [helper.make_tensor_value_info("x", F, [5])], [helper.make_tensor_value_info("y", F, None)],
                   13, consts)
    _compare(proto, {"x": x})


def test_erf_traced_for_tflite_uses_builtins_within_3e7() -> None:
    from kernels.tf import TF
    from kernels.tf._util import tflite_builtins

    erf = TF.lookup("Erf", 13)
    x = np.concatenate([np.linspace(-6, 6, 20001), [0.0, -0.0, 1e-8, -1e-30]]).astype(np.float32)
    with tflite_builtins():
        graph = tf.function(erf, input_signature=[tf.TensorSpec([None])]).get_concrete_function().graph
        got = graph.outputs[0]
        approx = tf.function(erf, input_signature=[tf.TensorSpec([None])])(x).numpy()
    assert "Erf" not in {op.type for op in got.graph.get_operations()}
    want = np.array([math.erf(float(v)) for v in x])
    assert np.max(np.abs(approx - want)) < 3e-7
    small = np.abs(x) < 1
    assert np.max(np.abs(approx - want)[small] / np.maximum(np.abs(want[small]), 1e-38)) < 1e-6
    np.testing.assert_array_equal(np.sign(approx), np.sign(want))
    assert "Erf" in {op.type for op in tf.function(erf, input_signature=[tf.TensorSpec([None])])
                     .get_concrete_function().graph.get_operations()}  # SavedModel keeps tf.math.erf
