"""The TensorFlow front end on live objects, and its errors.

Live ``tf.function`` / ``tf.Module`` / Keras objects are converted and compared
with TensorFlow's own outputs in onnxruntime; tf2onnx's silent ``Erfc`` for exact
GELU is repaired; untranslatable TF ops are all reported in one error.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
pytest.importorskip("tf2onnx")

import ir  # noqa: E402
from converter.errors import InputError, UnsupportedOpsError  # noqa: E402
from converter.frontends import tensorflow as tf_frontend  # noqa: E402
from converter.inputs import InputSpec  # noqa: E402


def run_onnxruntime(model: ir.Model, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(ir.to_proto(model).SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds), strict=True))


def assert_matches(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert set(got) == set(expected)
    for key, want in expected.items():
        np.testing.assert_allclose(got[key], np.asarray(want), rtol=1e-4, atol=1e-5, err_msg=key)


def dims(value: ir.Value) -> list:
    return [d if isinstance(d, int) else d.value for d in value.shape]


@tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32), tf.TensorSpec([None, 1], tf.float32)])
def scaled_softmax(x, scale):
    return tf.nn.softmax(x * scale, axis=-1)


def test_tf_function_with_signature():
    model = tf_frontend.load(scaled_softmax, format="tf")
    assert [v.name for v in model.graph.inputs] == ["x", "scale"]
    assert [v.name for v in model.graph.outputs] == ["output_0"]
    assert dims(model.graph.inputs[0]) == ["batch", "x_1"]
    assert dims(model.graph.outputs[0]) == ["batch", "x_1"]  # traced at concrete sizes: both symbols carry over
    rng = np.random.default_rng(0)
    for batch, width in [(2, 3), (5, 7)]:
        x = rng.normal(size=(batch, width)).astype(np.float32)
        scale = rng.uniform(0.5, 2, (batch, 1)).astype(np.float32)
        got = run_onnxruntime(model, {"x": x, "scale": scale})
        assert_matches(got, {"output_0": scaled_softmax(x, scale).numpy()})


def test_user_symbols_and_function_without_signature():
    @tf.function
    def add_rows(tokens):
        return {"sums": tf.reduce_sum(tokens, axis=1), "doubled": tokens * 2}

    model = tf_frontend.load(add_rows, format="tf", inputs=[InputSpec("tokens", ("n", "seq"), "int64")])
    assert dims(model.graph.inputs[0]) == ["n", "seq"]
    assert model.graph.inputs[0].dtype == ir.DataType.INT64
    outputs = {v.name: dims(v) for v in model.graph.outputs}
    assert outputs == {"sums": ["n"], "doubled": ["n", "seq"]}
    tokens = np.arange(12, dtype=np.int64).reshape(3, 4)
    assert_matches(run_onnxruntime(model, {"tokens": tokens}), {k: v.numpy() for k, v in add_rows(tokens).items()})


def test_tf_module_with_control_flow():
    from fixtures.build_tf_fixtures import build_control_flow_module

    module = build_control_flow_module()
    model = tf_frontend.load(module, format="tf")
    assert [v.name for v in model.graph.inputs] == ["x"]
    assert {n.op_type for n in model.graph} >= {"If", "Loop"}
    assert {v.name: dims(v) for v in model.graph.outputs} == {"total": ["batch"], "y": ["batch", 4]}
    rng = np.random.default_rng(1)
    for batch, sign in [(2, 1.0), (6, -1.0)]:  # both branches of the tf.cond
        x = (sign * np.abs(rng.normal(size=(batch, 4)))).astype(np.float32)
        expected = {k: v.numpy() for k, v in module(x).items()}
        assert_matches(run_onnxruntime(model, {"x": x}), expected)
    ir.verify(model)


def test_module_with_several_functions_needs_a_choice():
    class Two(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def double(self, x):
            return x * 2

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def triple(self, x):
            return x * 3

    with pytest.raises(InputError, match=r"2 tf.functions \(double, triple\)"):
        tf_frontend.load(Two(), format="tf")
    model = tf_frontend.load(Two().triple, format="tf")
    assert_matches(run_onnxruntime(model, {"x": np.ones(3, np.float32)}), {"output_0": np.full(3, 3.0)})


@pytest.mark.parametrize("gelu", ["dense_activation", "activations_gelu"])
def test_exact_gelu_is_repaired_and_runs(gelu):
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((8,), name="features")
    if gelu == "dense_activation":
        out = keras.layers.Dense(6, activation="gelu", name="proj")(inp)
    else:
        hidden = keras.layers.Dense(6, name="proj")(inp)
        out = keras.layers.Activation(lambda t: keras.activations.gelu(t, approximate=False), name="act")(hidden)
    model_keras = keras.Model(inp, out)
    model = tf_frontend.load(model_keras, format="tf")
    ops = [n.op_type for n in model.graph]
    assert "Erfc" not in ops and "Erf" in ops
    ir.verify(model)
    x = np.random.default_rng(2).normal(size=(4, 8)).astype(np.float32) * 3
    (name,) = [v.name for v in model.graph.outputs]
    assert_matches(run_onnxruntime(model, {"features": x}), {name: model_keras(x, training=False)})


def test_every_untranslatable_op_is_reported_at_once():
    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32)])
    def special(x):
        a = tf.math.igamma(x, x) + tf.math.zeta(x, x)
        return a + tf.math.lgamma(x) * tf.math.lgamma(a)

    with pytest.raises(UnsupportedOpsError) as info:
        tf_frontend.load(special, format="tf")
    ops = sorted(op for op, _ in info.value.ops)
    assert ops == ["Igamma", "Lgamma", "Lgamma", "Zeta"]
    message = str(info.value)
    assert "3 unsupported TensorFlow op(s)" in message and "Lgamma x2" in message
    assert all(src for _, src in info.value.ops)  # each names the TF op it came from


def test_bad_requests_are_input_errors():
    @tf.function
    def no_signature(x):
        return x

    with pytest.raises(InputError, match="no input signature"):
        tf_frontend.load(no_signature, format="tf")
    with pytest.raises(InputError, match="no input named 'y'.*the inputs are: x, scale"):
        tf_frontend.load(scaled_softmax, format="tf", inputs=[InputSpec("y", (2, 2))])
    with pytest.raises(InputError, match="does not read format 'tflite'"):
        tf_frontend.load(scaled_softmax, format="tflite")
    with pytest.raises(InputError, match="unknown TensorFlow front-end option"):
        tf_frontend.load(scaled_softmax, format="tf", fancy=True)
    with pytest.raises(InputError, match="cannot convert a str"):
        tf_frontend.load("not a model", format="tf")


def test_importing_the_front_end_does_not_import_tensorflow():
    code = "import sys, converter.frontends.tensorflow; print('tensorflow' in sys.modules, 'tf2onnx' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=_repo())
    assert result.stdout.strip() == "False False"


def _repo() -> str:
    import pathlib

    return str(pathlib.Path(__file__).resolve().parents[2])


def test_sequential_and_subclassed_keras_models():
    import keras

    keras.utils.set_random_seed(3)
    sequential = keras.Sequential([keras.Input((5,)), keras.layers.Dense(2, name="head")], name="seq")
    model = tf_frontend.load(sequential, format="tf")
    # Keras names an unnamed Input (input_layer, input_layer_1, ... process-wide): that name is kept.
    (input_name,) = [v.name for v in model.graph.inputs]
    assert input_name == "input_layer" or input_name.startswith("input_layer_")
    assert [v.name for v in model.graph.outputs] == ["head"]
    assert {ir.source_name(n) for n in model.graph} == {"head"}
    x = np.random.default_rng(4).normal(size=(3, 5)).astype(np.float32)
    assert_matches(run_onnxruntime(model, {input_name: x}), {"head": sequential(x)})

    class Doubler(keras.Model):
        def __init__(self):
            super().__init__(name="doubler")
            self.proj = keras.layers.Dense(3, name="proj")

        def call(self, x):
            return self.proj(x) * 2.0

    subclassed = Doubler()
    subclassed(x[:, :4])
    with pytest.raises(InputError, match="has no known inputs"):
        tf_frontend.load(subclassed, format="tf")
    model = tf_frontend.load(subclassed, format="tf", inputs=["x:batch x 4"])
    assert dims(model.graph.outputs[0]) == ["batch", 3]
    assert_matches(run_onnxruntime(model, {"x": x[:, :4]}), {"output_0": subclassed(x[:, :4])})


def test_keras_grouped_and_depthwise_convolutions_inline(tmp_path):
    """Keras runs grouped convolutions in an XLA-only ``tf.function``; tf2onnx alone leaves an
    opaque ``StatefulPartitionedCall`` (tf2onnx issues 2099, 2347: every Keras ConvNeXt). The front
    end opens it, from a live model and from the model exported as a SavedModel."""
    import keras

    keras.utils.set_random_seed(5)
    inputs = keras.Input((9, 9, 4))
    x = keras.layers.Conv2D(6, 3, groups=2, padding="same", name="grouped")(inputs)
    x = keras.layers.DepthwiseConv2D(3, name="depthwise")(x)
    net = keras.Model(inputs, keras.layers.Conv2D(4, 1, groups=2, name="pointwise")(x))
    images = np.random.default_rng(6).normal(size=(2, 9, 9, 4)).astype(np.float32)
    expected = np.asarray(net(images))

    model = tf_frontend.load(net, format="tf")
    assert "StatefulPartitionedCall" not in {n.op_type for n in model.graph}
    assert [n.op_type for n in model.graph].count("Conv") == 3
    (got,) = run_onnxruntime(model, {model.graph.inputs[0].name: images}).values()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)

    net.export(str(tmp_path / "saved"), verbose=False)
    model = tf_frontend.load(tmp_path / "saved", format="savedmodel")
    (got,) = run_onnxruntime(model, {model.graph.inputs[0].name: images}).values()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
