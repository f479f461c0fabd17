"""Zoo models to TFLite, float32 and fp16 weights, against the live Keras / PyTorch model.

One small classifier (keras.applications MobileNetV2, random weights and
batch-norm statistics) and one small transformer (transformers GPT2Model from a
small config, random weights): float32 files must pass parity at the default
tolerances, fp16 files must keep cosine similarity >= 0.999 and, for the
classifier, the same top-1 class on every sample. ``bench/bench_tflite_zoo.py``
measures the whole zoo.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import converter  # noqa: E402
from converter.backends import tflite  # noqa: E402
from fixtures.zoo import gpt2, randomize_batch_norm  # noqa: E402

pytest.importorskip("tensorflow")
pytest.importorskip("ai_edge_litert.interpreter")

#: each test loads a model, writes two files and runs both: 75-85 s on a busy 2-core machine
pytestmark = pytest.mark.slow

FP16_MIN_COSINE = 0.999


def _mobilenet_v2():
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(weights=None, alpha=0.35, input_shape=(96, 96, 3),
                                           classifier_activation=None)
    randomize_batch_norm(model)  # Keras' default statistics make the logits ~1e-11: no class would stand out
    return model


def _gpt2():
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    torch.manual_seed(0)
    return gpt2()


def _both_precisions(model, tmp_path, **options):
    f32, f16 = tmp_path / "f32.tflite", tmp_path / "f16.tflite"
    assert tflite.save(model, f32, **options)["quantize"] == "float32"
    assert tflite.save(model, f16, quantize="fp16", **options)["quantize"] == "fp16"
    assert f16.stat().st_size < 0.6 * f32.stat().st_size  # the weights really are half size
    return f32, f16


def test_keras_classifier_float32_parity_and_fp16_keeps_cosine_and_top1(tmp_path):
    source = _mobilenet_v2()
    model = converter.load(source)
    converter.optimize(model, 2)
    f32, f16 = _both_precisions(model, tmp_path)
    for batch in (1, 4):  # the batch stays dynamic
        report = converter.validate(source, f32, model=model, sizes={"batch": batch})
        assert report.passed, report.summary()
        assert next(iter(report.input_shapes.values()))[0] == batch
    report = converter.validate(source, f16, model=model, sizes={"batch": 8}, min_cosine=FP16_MIN_COSINE)
    (out,) = report.outputs
    assert report.passed, report.summary()
    assert out.shape == [8, 1000] and out.cosine_similarity >= FP16_MIN_COSINE and out.top1_agreement == 1.0
    assert out.max_abs_error > 0  # fp16 weights really changed the numbers


def test_transformer_float32_parity_and_fp16_keeps_cosine(tmp_path):
    source = _gpt2()
    model = converter.load(source, inputs=["input_ids:batch x seq:int64"])
    converter.optimize(model, 2)
    f32, f16 = _both_precisions(model, tmp_path)  # batch and seq stay dynamic
    for batch, seq in ((2, 5), (3, 7)):
        checks = {"int_range": (0, 100), "sizes": {"batch": batch, "seq": seq}, "model": model}
        report = converter.validate(source, f32, **checks)
        assert report.passed, report.summary()
        assert report.input_shapes == {"input_ids": [batch, seq]}
    report = converter.validate(source, f16, min_cosine=FP16_MIN_COSINE, **checks)
    assert report.passed, report.summary()
    assert all(o.cosine_similarity >= FP16_MIN_COSINE for o in report.outputs)
