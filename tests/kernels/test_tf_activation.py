"""TF activation kernels in half precision, against onnx.reference on random data.

The conformance cases hold few float16 Softmax inputs; these rows exercise the
rounding of every step of ONNX's Softmax function body (see kernels/tf/activation.py).
"""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from onnx import TensorProto, helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

from kernels.tf import TF  # noqa: E402


def _reference(op: str, x: np.ndarray, **attrs) -> np.ndarray:
    graph = helper.make_graph(
        [helper.make_node(op, ["x"], ["y"], **attrs)], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT16, None)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT16, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    return ReferenceEvaluator(model).run(None, {"x": x})[0]


@pytest.mark.parametrize("width", [7, 37])
def test_float16_softmax_rounds_each_step_of_the_function_body_as_the_reference(width: int) -> None:
    """Bit-exact with onnx's reference on the last axis (TensorFlow's own float16 softmax differs in about
    half the entries). Other axes are not compared bit for bit: numpy sums float16 across strided memory
    in float16, rounding after each addition, so the reference's own rounding depends on the layout."""
    x = (np.random.default_rng(0).standard_normal((16, 5, width)) * 3).astype(np.float16)
    got = TF.lookup("Softmax", 21)(tf.constant(x)).numpy()
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, _reference("Softmax", x))
