"""TFLite target: any source -> IR -> SavedModel -> .tflite, run with LiteRT, parity at two batch sizes."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

import converter
from converter.errors import InputError

pytest.importorskip("tensorflow")
litert = pytest.importorskip("ai_edge_litert.interpreter")

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODELS = ROOT / "fixtures" / "models"

SOURCES = [
    MODELS / "onnx" / "cnn.onnx",
    MODELS / "onnx" / "mlp.onnx",
    MODELS / "onnx" / "attention.onnx",
    MODELS / "torch" / "resnet_like.pt2",
    MODELS / "tf" / "cnn.keras",
    MODELS / "tf" / "multi_io.keras",
]


def _ops(path: pathlib.Path) -> list[str]:
    interpreter = litert.Interpreter(model_path=str(path))
    return [op["op_name"] for op in interpreter._get_ops_details()]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: f"{p.parent.name}-{p.stem}")
def test_fixture_converts_to_tflite_with_parity_at_two_batch_sizes(source, tmp_path):
    dest = tmp_path / "model.tflite"
    result = converter.convert(source, dest)
    assert result.parity is not None and result.parity.passed
    assert result.backend_info == {"quantize": "float32", "flex_ops": []}
    for batch in (1, 4):  # a symbolic batch stays resizable
        report = converter.validate(source, dest, sizes={"batch": batch})
        assert report.passed, report.summary()
        assert next(iter(report.input_shapes.values()))[0] == batch


def test_conv_chain_has_no_per_layer_transposes(tmp_path):
    dest = tmp_path / "cnn.tflite"
    converter.convert(MODELS / "torch" / "resnet_like.pt2", dest)
    ops = _ops(dest)
    assert ops.count("CONV_2D") >= 8
    assert ops.count("TRANSPOSE") <= 2  # one in (NCHW -> NHWC), at most one out


def test_fp16_weights_pass_by_cosine_and_report_it(tmp_path):
    dest = tmp_path / "cnn16.tflite"
    result = converter.convert(MODELS / "onnx" / "cnn.onnx", dest, backend_quantize="fp16")
    assert result.backend_info["quantize"] == "fp16"
    (out,) = result.parity.outputs
    assert out.cosine_similarity > 0.999 and out.top1_agreement == 1.0
    assert any("reduced precision" in n for n in result.parity.notes)
    assert dest.stat().st_size < (tmp_path / "cnn16.tflite").stat().st_size * 2


def test_dynamic_int8_is_smaller_than_float(tmp_path):
    f32, i8 = tmp_path / "f32.tflite", tmp_path / "i8.tflite"
    converter.convert(MODELS / "onnx" / "mlp.onnx", f32)
    result = converter.convert(MODELS / "onnx" / "mlp.onnx", i8, backend_quantize="dynamic-int8")
    assert result.parity.passed
    assert i8.stat().st_size < 0.5 * f32.stat().st_size


def test_unknown_quantize_mode_is_refused_and_nothing_written(tmp_path):
    with pytest.raises(InputError, match="quantize"):
        converter.convert(MODELS / "onnx" / "mlp.onnx", tmp_path / "x.tflite", backend_quantize="int3")
    assert list(tmp_path.iterdir()) == []


def test_tflite_runs_as_a_validate_source(tmp_path):
    dest = tmp_path / "mlp.tflite"
    converter.convert(MODELS / "onnx" / "mlp.onnx", dest)
    report = converter.validate(dest, MODELS / "onnx" / "mlp.onnx", batches=2)
    assert report.passed
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 32)).astype(np.float32)
    runner = litert.Interpreter(model_path=str(dest)).get_signature_runner("serving_default")
    assert runner(x=x)["probs"].shape == (3, 10)
