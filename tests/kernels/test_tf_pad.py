"""TF Pad with negative amounts (a crop), against onnxruntime (onnx.reference refuses negative pads).

Negative pads on both ends of an axis crop both ends: ``F.fold`` from PyTorch
exports such a Pad, and the kernel once cropped everything past the start.
"""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper  # noqa: E402

from kernels.tf import TF  # noqa: E402


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect"])
@pytest.mark.parametrize("pads", [[0, 0, -1, -1, 0, 0, -1, -1], [0, 0, -2, 1, 0, 0, 1, -1], [0, 0, 0, -3, 0, 0, 0, 0]])
def test_negative_pads_crop_as_onnx_does(pads: list[int], mode: str) -> None:
    x = np.arange(2 * 3 * 5 * 6, dtype=np.float32).reshape(2, 3, 5, 6)
    graph = helper.make_graph(
        [helper.make_node("Pad", ["x", "pads"], ["y"], mode=mode)], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("pads", TensorProto.INT64, None)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"x": x, "pads": np.array(pads, np.int64)})[0]
    got = TF.lookup("Pad", 21)(tf.constant(x), tf.constant(pads, tf.int64), mode=mode)
    np.testing.assert_array_equal(got.numpy(), expected)
