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
