"""The model zoo, end to end, through the public API (``converter.convert``, ``converter.validate``).

- keras.applications ResNet50, MobileNetV2, EfficientNetB0, DenseNet121 (random
  weights and batch-norm statistics, 96x96 inputs, logits) to ONNX, against Keras itself;
- transformers BertModel, GPT2Model, ViTModel from small configs (random weights,
  no hub) to ONNX through the PyTorch front end, against the live module, with
  token ids below the vocabulary size;
- the onnx package's ``light_*`` models to TorchScript, against onnxruntime
  (parity) and against the output onnx stores beside each model, computed by
  onnx's backend test runner on its deterministic input (``arange(n) / n``).

Every float output must stay within 1e-4 of its scale (its max magnitude), and a
second ``validate`` at other sizes of the dynamic dims proves that they survived.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import converter  # noqa: E402
from converter import parity  # noqa: E402
from converter.runners import open_runner  # noqa: E402
from fixtures.zoo import VOCAB, bert, gpt2, randomize_batch_norm, vit  # noqa: E402


def _reference_scales(source: Any, onnx_path: pathlib.Path, int_range: tuple[int, int] = (0, 10)) -> dict[str, float]:
    """The max magnitude of each output of ``source``, run by its own framework on parity's first batch."""
    feeds = parity.make_inputs(open_runner(onnx_path, "onnx").signature(), int_range=int_range, seed=0)
    outputs = open_runner(source, None).run(feeds)
    return {name: float(np.max(np.abs(v))) for name, v in outputs.items()}


def _check_against_scale(report: Any, scales: dict[str, float]) -> float:
    """Every output passes, and float ones within 1e-4 of their scale; returns the worst ratio."""
    assert report.passed, report.summary()
    worst = 0.0
    for out in report.outputs:
        scale = max(scales.get(out.name, 0.0), 1e-6)
        assert out.max_abs_error <= 1e-4 * scale, (out.name, out.max_abs_error, scale)
        worst = max(worst, out.max_abs_error / scale)
    return worst


# ---- keras.applications -----------------------------------------------------------

KERAS_APPS = ["ResNet50", "MobileNetV2", "EfficientNetB0", "DenseNet121"]

_KERAS_KNOWN: dict[str, Any] = {}


@pytest.mark.parametrize("name", [pytest.param(n, marks=_KERAS_KNOWN.get(n, ())) for n in KERAS_APPS])
def test_keras_applications_to_onnx(name, tmp_path, record_property):
    pytest.importorskip("tf2onnx")
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, name)(weights=None, input_shape=(96, 96, 3), classifier_activation=None)
    randomize_batch_norm(model)
    destination = tmp_path / f"{name}.onnx"
    result = converter.convert(model, destination, check=True)
    scales = _reference_scales(model, destination)
    worst = _check_against_scale(result.parity, scales)
    report = converter.validate(model, destination, sizes={"batch": 3})
    assert next(iter(report.input_shapes.values()))[0] == 3  # the batch really was 3
    worst = max(worst, _check_against_scale(report, scales))
    record_property("max_error_vs_scale", worst)
    record_property("nodes", f"{result.nodes_before}->{result.nodes_after}")


def test_keras_normalization_constants_stay_constants(tmp_path):
    """Captured eager constants (a Normalization layer's mean/variance) become initializers, not inputs."""
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Normalization(mean=[0.5] * 4, variance=[2.0] * 4)])
    result = converter.convert(model, tmp_path / "norm.onnx", check=True)
    assert result.parity.passed
    assert len(converter.load(tmp_path / "norm.onnx").graph.inputs) == 1


# ---- transformers -----------------------------------------------------------------

def _ids_with_bounded_dims() -> dict[str, Any]:
    """Example ids and ``dynamic_shapes`` bounding seq by the position table (64), as BERT needs."""
    import torch

    ids = torch.randint(0, VOCAB, (2, 5), generator=torch.Generator().manual_seed(0))
    dims = {0: torch.export.Dim("batch", max=64), 1: torch.export.Dim("seq", max=64)}
    return {"inputs": {"input_ids": ids}, "dynamic_shapes": {"input_ids": dims}}


#: name -> (factory, convert keyword arguments as a function, sizes of the second validate)
TRANSFORMERS = {
    "BertModel": (bert, _ids_with_bounded_dims, {"batch": 3, "seq": 7}),
    "GPT2Model": (gpt2, lambda: {"inputs": ["input_ids:batch x seq:int64"]}, {"batch": 3, "seq": 7}),
    "ViTModel": (vit, lambda: {"inputs": ["pixel_values:batch x 3 x 32 x 32"]}, {"batch": 3}),
}


@pytest.mark.parametrize("name", list(TRANSFORMERS))
def test_transformers_to_onnx(name, tmp_path, record_property):
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    factory, options, sizes = TRANSFORMERS[name]
    torch.manual_seed(0)
    model = factory().eval()
    destination = tmp_path / f"{name}.onnx"
    result = converter.convert(model, destination, check=True, **options())
    scales = _reference_scales(model, destination, (0, VOCAB))
    worst = _check_against_scale(result.parity, scales)
    # Every symbol of the result, by name: the dict route names seq after the input (input_ids_1).
    signature = open_runner(destination, "onnx").signature()
    bound = {d: sizes["batch"] if axis == 0 else sizes.get("seq", 3)
             for _, dims, _ in signature for axis, d in enumerate(dims) if isinstance(d, str)}
    report = converter.validate(model, destination, sizes=bound, int_range=(0, VOCAB), batches=2)
    fed = report.input_shapes[signature[0][0]]
    assert fed[0] == sizes["batch"] and ("seq" not in sizes or fed[1] == sizes["seq"]), fed
    worst = max(worst, _check_against_scale(report, scales))
    record_property("max_error_vs_scale", worst)
    record_property("nodes", f"{result.nodes_before}->{result.nodes_after}")


def test_bert_from_input_specs(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    torch.manual_seed(0)
    model = bert()
    result = converter.convert(model, tmp_path / "bert.onnx", inputs=["input_ids:batch x seq:int64"], check=True)
    assert result.parity.passed
    # BERT slices its 64-row position table by seq: the front end takes torch.export's limit and says so.
    assert result.dim_ranges == {"seq": (1, 64)}
    assert "seq in 1..64" in result.summary()


# ---- onnx light models ------------------------------------------------------------


def _light_dir() -> pathlib.Path:
    import onnx

    return pathlib.Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"


LIGHT = ["bvlc_alexnet", "densenet121", "inception_v1", "inception_v2", "resnet50", "shufflenet",
         "squeezenet", "vgg19", "zfnet512"]

#: conversions over 60 s on a 2-core machine
_LIGHT_SLOW = {"densenet121"}


def _onnx_runner_input(path: pathlib.Path) -> dict[str, np.ndarray]:
    """The input onnx's backend test runner feeds a light model: ``arange(n) / n``, unknown dims 1."""
    import onnx

    model = onnx.load(path)
    initializers = {i.name for i in model.graph.initializer}
    feeds = {}
    for value in model.graph.input:
        if value.name in initializers:
            continue
        shape = [d.dim_value if d.HasField("dim_value") else 1 for d in value.type.tensor_type.shape.dim]
        n = int(np.prod(shape))
        feeds[value.name] = (np.arange(n).reshape(shape) / n).astype(np.float32)
    return feeds


@pytest.mark.parametrize("name", [pytest.param(n, marks=[pytest.mark.slow] if n in _LIGHT_SLOW else [])
                                  for n in LIGHT])
def test_light_models_to_torchscript(name, tmp_path, record_property):
    torch = pytest.importorskip("torch")
    import onnx

    source = _light_dir() / f"light_{name}.onnx"
    destination = tmp_path / f"{name}.pt"
    result = converter.convert(source, destination, check=True)
    assert result.parity.passed, result.parity.summary()

    feeds = _onnx_runner_input(source)
    stored = onnx.numpy_helper.to_array(onnx.load_tensor(str(source.with_name(f"light_{name}_output_0.pb"))))
    module = torch.jit.load(str(destination))
    with torch.no_grad():
        got = module(*[torch.from_numpy(v) for v in feeds.values()])
    got = (got if isinstance(got, torch.Tensor) else got[0]).numpy()
    scale = float(np.max(np.abs(stored)))
    error = float(np.max(np.abs(got - stored)))
    np.testing.assert_allclose(got, stored, rtol=1e-3, atol=1e-7)  # onnx's own tolerances for these models
    assert error <= 1e-4 * scale, (error, scale)
    record_property("max_error_vs_scale", error / scale)
    record_property("parity_max_abs_error", max(o.max_abs_error for o in result.parity.outputs))
