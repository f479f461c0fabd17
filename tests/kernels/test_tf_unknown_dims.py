"""TF kernels traced with dims unknown until run time (as in a SavedModel's signature),
against onnx.reference on the same node.

Shape facts a kernel reads from ``tensor.shape`` are ``None`` there; a kernel must
then fall back to ``tf.shape``. Found by converting real models whose index
tensors come from run-time Tiles (the sweep's ``tf_tensor_ops``).
"""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from onnx import TensorProto, helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

from kernels.tf import TF  # noqa: E402


def _reference(op: str, inputs: dict[str, np.ndarray], **attrs) -> np.ndarray:
    types = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int64): TensorProto.INT64}
    graph = helper.make_graph(
        [helper.make_node(op, list(inputs), ["y"], **attrs)], "g",
        [helper.make_tensor_value_info(k, types[v.dtype], None) for k, v in inputs.items()],
        [helper.make_tensor_value_info("y", TensorProto.UNDEFINED, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    return ReferenceEvaluator(model).run(None, inputs)[0]


@pytest.mark.parametrize("batch_dims", [0, 1])
def test_gather_nd_with_an_index_width_unknown_when_traced(batch_dims: int) -> None:
    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    indices = np.array([[[0, 1], [1, 3]], [[1, 2], [0, 0]]], np.int64)
    if batch_dims == 0:
        indices = indices % 2
    kernel = TF.lookup("GatherND", 21)
    traced = tf.function(
        lambda d, i: kernel(d, i, batch_dims=batch_dims),
        input_signature=[tf.TensorSpec([None, 3, 4]), tf.TensorSpec([None, None, None], tf.int64)],
    )
    expected = _reference("GatherND", {"d": data, "i": indices}, batch_dims=batch_dims)
    np.testing.assert_array_equal(traced(data, indices).numpy(), expected)


def _onnxruntime(op: str, inputs: dict[str, np.ndarray], **attrs) -> np.ndarray:
    import onnxruntime as ort

    types = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int64): TensorProto.INT64}
    graph = helper.make_graph(
        [helper.make_node(op, list(inputs), ["y"], **attrs)], "g",
        [helper.make_tensor_value_info(k, types[v.dtype], None) for k, v in inputs.items()],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, inputs)[0]


@pytest.mark.parametrize(("mode", "coordinates", "sizes"), [
    ("linear", "half_pixel", [1, 3, 5, 7]),
    ("linear", "align_corners", [1, 3, 9, 4]),
    ("cubic", "pytorch_half_pixel", [1, 3, 5, 11]),
    ("nearest", "asymmetric", [1, 3, 13, 3]),
    ("nearest", "half_pixel_symmetric", [1, 3, 6, 9]),
])
def test_resize_with_run_time_sizes_computes_coordinates_in_float32(mode: str, coordinates: str,
                                                                    sizes: list[int]) -> None:
    """Spatial dims and output sizes known at run time only: the coordinates are computed with TensorFlow
    ops in float32 (as onnxruntime does for float inputs; TFLite has no float64 builtins)."""
    x = np.random.default_rng(4).standard_normal((1, 3, 7, 6)).astype(np.float32)
    target = np.array(sizes, np.int64)
    attrs = {"mode": mode, "coordinate_transformation_mode": coordinates}
    kernel = TF.lookup("Resize", 21)
    traced = tf.function(lambda t, s: kernel(t, None, None, s, **attrs), autograph=False, input_signature=[
        tf.TensorSpec([None, 3, None, None]), tf.TensorSpec([4], tf.int64)])
    expected = _onnxruntime("Resize", {"x": x, "roi": np.zeros(0, np.float32), "scales": np.zeros(0, np.float32),
                                       "sizes": target}, **attrs)
    np.testing.assert_allclose(traced(x, target).numpy(), expected, rtol=1e-5, atol=1e-5)
    ops = traced.get_concrete_function().graph.get_operations()
    assert not [op.type for op in ops if any(o.dtype == tf.float64 for o in op.outputs)]


def test_resize_by_scales_leaves_a_dynamic_batch_axis_alone() -> None:
    """Scales [1, 1, s, s] on [None, C, H, W]: the batch and channel axes are not resampled, and the
    output keeps every static size (TFLite's converter needs the channels of a following Conv2D)."""
    x = np.random.default_rng(5).standard_normal((2, 3, 10, 10)).astype(np.float32)
    scales = np.array([1, 1, 0.6, 0.6], np.float32)
    kernel = TF.lookup("Resize", 21)
    traced = tf.function(lambda t: kernel(t, None, tf.constant(scales), mode="linear"), autograph=False,
                         input_signature=[tf.TensorSpec([None, 3, 10, 10])])
    graph = traced.get_concrete_function().graph
    assert traced.get_concrete_function().output_shapes.as_list() == [None, 3, 6, 6]
    ops = [op.type for op in graph.get_operations()]
    assert ops.count("GatherV2") == 2 and "Range" not in ops and "Floor" not in ops  # two static-plan axes
    expected = _onnxruntime("Resize", {"x": x, "roi": np.zeros(0, np.float32), "scales": scales}, mode="linear")
    np.testing.assert_allclose(traced(x).numpy(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("spec", "traced_shape"), [([None, 1, 3], [None, 3]), (None, None)])
def test_squeeze_without_axes_of_dims_unknown_when_traced(spec, traced_shape) -> None:
    """Rank known, batch unknown: the size-1 axis goes and the rank stays known (AffineGrid's expansion
    splits the result next); rank unknown: every axis that is 1 at run time goes."""
    kernel = TF.lookup("Squeeze", 21)
    traced = tf.function(kernel, input_signature=[tf.TensorSpec(spec)], autograph=False)
    assert traced.get_concrete_function().output_shapes == tf.TensorShape(traced_shape)
    samples = [np.arange(6, dtype=np.float32).reshape(2, 1, 3)]
    if spec is None:
        samples += [np.ones((1, 4, 1), np.float32), np.ones((1, 1), np.float32)]
    for x in samples:
        np.testing.assert_array_equal(traced(x).numpy(), _reference("Squeeze", {"x": x}))
