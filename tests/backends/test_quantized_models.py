"""Models quantized by onnxruntime's own tool, through the TorchScript and SavedModel back ends.

``onnxruntime.quantization`` turns the float CNN fixture into the three forms
quantized ONNX models come in: QDQ (QuantizeLinear / DequantizeLinear pairs),
QOperator (QLinearConv) and dynamic (DynamicQuantizeLinear, ConvInteger,
MatMulInteger). Each converts with parity checked, and the converted model's
outputs are compared here with onnxruntime's on the quantized model at a batch
size other than the one the parity check used. The outside truth is
onnxruntime's integer kernels: a requantization that rounds differently moves an
output by a whole quantization step, far above the tolerance.
"""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

pytest.importorskip("onnxruntime.quantization")

import converter  # noqa: E402

CNN = pathlib.Path(__file__).resolve().parents[2] / "fixtures" / "models" / "onnx" / "cnn.onnx"


class _Calibration:
    """A few random batches for static quantization's calibration."""

    def __init__(self, name: str, shape: list[int]) -> None:
        rng = np.random.default_rng(0)
        self._batches = [{name: rng.random(shape, dtype=np.float32)} for _ in range(4)]

    def get_next(self):
        return self._batches.pop() if self._batches else None

    def rewind(self) -> None:  # called by some onnxruntime versions
        pass


@pytest.fixture(scope="module")
def quantized(tmp_path_factory) -> dict[str, pathlib.Path]:
    import onnx
    from onnxruntime.quantization import QuantFormat, quantize_dynamic, quantize_static

    out = tmp_path_factory.mktemp("quantized")
    model = onnx.load(CNN)
    x = model.graph.input[0]
    shape = [d.dim_value or 1 for d in x.type.tensor_type.shape.dim]
    paths = {form: out / f"{form}.onnx" for form in ("qdq", "qoperator", "dynamic")}
    quantize_static(CNN, paths["qdq"], _Calibration(x.name, shape), quant_format=QuantFormat.QDQ)
    quantize_static(CNN, paths["qoperator"], _Calibration(x.name, shape), quant_format=QuantFormat.QOperator,
                    op_types_to_quantize=["Conv"], per_channel=True)
    quantize_dynamic(CNN, paths["dynamic"])
    return paths


def _ops(path: pathlib.Path) -> set[str]:
    import onnx

    return {n.op_type for n in onnx.load(path).graph.node}


def _onnxruntime(path: pathlib.Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def _input(path: pathlib.Path, batch: int) -> np.ndarray:
    import onnx

    dims = onnx.load(path).graph.input[0].type.tensor_type.shape.dim
    shape = [batch] + [d.dim_value for d in dims[1:]]
    return np.random.default_rng(1).random(shape, dtype=np.float32)


def test_the_three_forms_hold_the_ops_they_should(quantized) -> None:
    assert {"QuantizeLinear", "DequantizeLinear"} <= _ops(quantized["qdq"])
    assert "QLinearConv" in _ops(quantized["qoperator"])
    assert {"ConvInteger", "DynamicQuantizeLinear"} <= _ops(quantized["dynamic"])


@pytest.mark.parametrize("form", ["qdq", "qoperator", "dynamic"])
def test_torchscript_matches_onnxruntime_on_quantized_models(quantized, form, tmp_path) -> None:
    import torch

    result = converter.convert(quantized[form], tmp_path / "model.pt", check=True)
    assert result.parity is not None and result.parity.passed
    x = _input(quantized[form], batch=3)
    module = torch.jit.load(str(tmp_path / "model.pt"))
    with torch.no_grad():
        y = module(torch.from_numpy(x))
    np.testing.assert_allclose(y.numpy(), _onnxruntime(quantized[form], x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("form", ["qoperator", "dynamic"])
def test_savedmodel_matches_onnxruntime_on_quantized_models(quantized, form, tmp_path) -> None:
    tf = pytest.importorskip("tensorflow")

    result = converter.convert(quantized[form], tmp_path / "sm", target_format="savedmodel", check=True)
    assert result.parity is not None and result.parity.passed
    x = _input(quantized[form], batch=3)
    serving = tf.saved_model.load(str(tmp_path / "sm")).signatures["serving_default"]
    (y,) = serving(tf.constant(x)).values()
    np.testing.assert_allclose(y.numpy(), _onnxruntime(quantized[form], x), rtol=1e-5, atol=1e-5)
