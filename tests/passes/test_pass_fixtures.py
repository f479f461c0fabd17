"""Every pass, alone and in the -O2 pipeline, on the fixture models: outputs kept, IR valid.

The models are the ONNX fixtures and the ONNX that crossgraph's own front ends
make from the PyTorch and TensorFlow fixtures (``converter.load``). Each pass
runs once by itself on a fresh copy, then the whole ``-O2`` pipeline runs with
``verify_each``; every result must pass ``ir.verify`` and give onnxruntime
outputs equal to the unoptimized model's within 1e-5 relative to the output's
scale (float32). The fixtures whose loading is slowest run only with ``-m slow``.
"""

from __future__ import annotations

import functools
import pathlib

import numpy as np
import pytest
from passes_testing import random_feeds, run_ort

import converter
import ir
import passes

MODELS = pathlib.Path(__file__).resolve().parents[2] / "fixtures" / "models"
ONNX = ["onnx/attention.onnx", "onnx/cnn.onnx", "onnx/control_flow.onnx",
        "onnx/external_data.onnx", "onnx/mlp.onnx"]  # fmt: skip
# the TorchScript fixtures (*.ts.pt) need example inputs; their .pt2 twins are here
TORCH = ["torch/causal_lm.pt2", "torch/cond.pt2", "torch/gru.pt2", "torch/lstm.pt2",
         "torch/multi_out.pt2", "torch/resnet_like.pt2", "torch/transformer.pt2",
         "torch/tuple_out.pt2"]  # fmt: skip
TF = ["tf/cnn.keras", "tf/cnn_savedmodel", "tf/control_flow_savedmodel", "tf/frozen_cnn.pb",
      "tf/gru_text.keras", "tf/int_bool.keras", "tf/int_bool_savedmodel", "tf/lstm_text.h5",
      "tf/multi_io.h5", "tf/multi_io.keras", "tf/transformer.keras",
      "tf/transformer_savedmodel"]  # fmt: skip
FIXTURES = ONNX + TORCH + TF
SPECS = passes.LEVELS[2]


@functools.cache
def _loaded(name: str) -> bytes:
    """The fixture in the IR, as serialized ONNX (each test gets a fresh model from it)."""
    model = ir.external_data.load_to_model(converter.load(str(MODELS / name)))
    return ir.to_proto(model).SerializeToString()


def _fresh(name: str) -> ir.Model:
    import onnx

    return ir.from_proto(onnx.load_from_string(_loaded(name)))


@functools.cache
def _reference(name: str) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
    model = _fresh(name)
    feeds = random_feeds(model, dim=2)
    return feeds, run_ort(model, feeds)


def _assert_same_outputs(name: str, model: ir.Model, what: str) -> None:
    ir.verify(model)
    feeds, expected = _reference(name)
    actual = run_ort(model, feeds)
    assert len(actual) == len(expected)
    for e, a in zip(expected, actual, strict=True):
        assert e.shape == a.shape, what
        if e.dtype.kind in "fc":
            scale = max(1.0, float(np.max(np.abs(e)))) if e.size else 1.0
            np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-5 * scale, err_msg=what)
        else:
            np.testing.assert_array_equal(a, e, err_msg=what)


@pytest.mark.parametrize("name", FIXTURES)
def test_each_pass_alone_keeps_outputs(name):
    for spec in SPECS:
        model = _fresh(name)
        passes.run_passes(
            model, [spec], level=2, verify_each=True, on_error="raise", max_iterations=1
        )
        _assert_same_outputs(name, model, f"{spec.name} alone on {name}")


@pytest.mark.parametrize("name", FIXTURES)
def test_o2_pipeline_keeps_outputs(name):
    model = _fresh(name)
    report = passes.optimize(model, 2, verify_each=True, on_error="raise")
    assert report.failures == [] and report.nodes_after <= report.nodes_before
    _assert_same_outputs(name, model, f"-O2 on {name}")
