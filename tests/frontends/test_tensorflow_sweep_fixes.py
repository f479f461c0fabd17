"""TensorFlow front-end fixes found by the architecture sweep (``bench/sweep_models.py``, ``tf_*`` rows).

Each model is converted and run in onnxruntime against TensorFlow's own outputs,
at more than one size of its dynamic dims:

- Keras 3 ``TimeDistributed`` over a dynamic time axis (tf2onnx gave ``batch``
  time steps) through the trace-time stand-in of ``keras_layers``;
- a live Keras 2 (``tf_keras``) model (its ``tf.DType`` input dtypes raised a
  ``TypeError``), and a Keras 2 ``.h5`` Keras 3 cannot read (LSTM ``time_major``);
- ``tf.signal.rfft`` followed by ``tf.abs`` with a dynamic batch (tf2onnx left a
  ``ComplexAbs`` node), repaired; a truly complex input stays an unsupported-op error;
- a returned dict whose values are tuples/lists (tf2onnx failed with an
  ``AttributeError``): one output per tensor, ``key_0``, ``key_1``...;
- ops tf2onnx leaves untranslated, repaired: ``Expm1`` (Keras ``celu``),
  ``Bucketize`` (``Discretization``), the sign-bit ``Bitcast`` of Keras'
  ``signbit``/float ``argmax`` (other bitcasts stay unsupported);
- ``tf.image.extract_patches`` with dynamic dims (tf2onnx wrote a ``-3`` Reshape
  dim) through our own tf2onnx handler;
- nearest resizes: ``tf_half_pixel_for_nn`` (removed from ONNX after opset 11)
  rewritten to ``half_pixel``;
- an error raised while tracing is reported by its own message, not by TF's
  ``in user code:`` preamble.
"""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
pytest.importorskip("tf2onnx")

from converter.errors import UnsupportedOpsError  # noqa: E402
from converter.frontends import tensorflow as tf_frontend  # noqa: E402
from tests.frontends.test_tensorflow_live import dims, run_onnxruntime  # noqa: E402


def _close(got: np.ndarray, want: np.ndarray) -> None:
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_time_distributed_dynamic_time_axis():
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    ids = keras.Input((None,), dtype="int32", name="ids")
    h = layers.Embedding(20, 8, mask_zero=True)(ids)  # the mask reaches TimeDistributed
    h = layers.GRU(5, return_sequences=True)(h)
    time_distributed = layers.TimeDistributed(layers.Dense(3))
    model = keras.Model(ids, time_distributed(h))

    converted = tf_frontend.load(model, format="tf")
    assert dims(converted.graph.outputs[0]) == ["batch", "ids_1", 3]
    assert "call" not in vars(time_distributed)  # the stand-in is gone after conversion
    rng = np.random.default_rng(0)
    for shape in [(2, 5), (3, 7), (1, 2)]:  # time != batch: the bug gave `batch` steps
        x = rng.integers(0, 20, shape).astype(np.int32)
        x[0, -1] = 0  # a padded step
        (got,) = run_onnxruntime(converted, {"ids": x}).values()
        assert got.shape == (*shape, 3)
        _close(got, model(x).numpy())


def test_time_distributed_static_time_axis_keeps_keras_code():
    import keras
    from keras import layers

    keras.utils.set_random_seed(1)
    x = keras.Input((4, 6, 6, 2), name="clips")
    model = keras.Model(x, layers.TimeDistributed(layers.Conv2D(3, 3))(x))
    converted = tf_frontend.load(model, format="tf")
    clips = np.random.default_rng(1).standard_normal((2, 4, 6, 6, 2)).astype(np.float32)
    _close(run_onnxruntime(converted, {"clips": clips})[converted.graph.outputs[0].name], model(clips).numpy())


def test_keras2_model_live():
    tf_keras = pytest.importorskip("tf_keras")
    tf_keras.utils.set_random_seed(0)
    model = tf_keras.Sequential([
        tf_keras.layers.InputLayer((5,), name="features"),
        tf_keras.layers.Dense(4, activation="relu"),
        tf_keras.layers.Dense(2, activation="softmax"),
    ])
    converted = tf_frontend.load(model, format="tf")
    (inp,) = converted.graph.inputs
    assert (inp.name, dims(inp), inp.dtype.name) == ("features", ["batch", 5], "FLOAT")
    x = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
    (got,) = run_onnxruntime(converted, {"features": x}).values()
    _close(got, model(x).numpy())


@tf.function(input_signature=[tf.TensorSpec([None, 48], tf.float32, name="audio")])
def spectrum(audio):
    frames = tf.signal.frame(audio, 16, 8) * tf.signal.hann_window(16)
    return tf.abs(tf.signal.rfft(frames))


def test_rfft_magnitude_with_dynamic_batch():
    converted = tf_frontend.load(spectrum, format="tf")
    assert all(n.op_type != "ComplexAbs" for n in converted.graph)
    rng = np.random.default_rng(0)
    for batch in (1, 3):
        audio = rng.standard_normal((batch, 48)).astype(np.float32)
        (got,) = run_onnxruntime(converted, {"audio": audio}).values()
        _close(got, spectrum(audio).numpy())


def test_complex_input_is_an_unsupported_op():
    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32), tf.TensorSpec([None, 4], tf.float32)])
    def modulus(re, im):
        return tf.abs(tf.complex(re, im))

    with pytest.raises(UnsupportedOpsError, match="Complex"):
        tf_frontend.load(modulus, format="tf")


def test_dict_of_structures_gives_one_output_per_tensor():
    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
    def nested(x):
        return {"pair": (x, x * 2.0), "total": [tf.reduce_sum(x, axis=1)], "shifted": x - 1.0}

    converted = tf_frontend.load(nested, format="tf")
    assert sorted(v.name for v in converted.graph.outputs) == ["pair_0", "pair_1", "shifted", "total_0"]
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    got = run_onnxruntime(converted, {"x": x})
    want = nested(x)
    _close(got["pair_0"], want["pair"][0].numpy())
    _close(got["pair_1"], want["pair"][1].numpy())
    _close(got["total_0"], want["total"][0].numpy())
    _close(got["shifted"], want["shifted"].numpy())


def test_expm1_and_bucketize_repaired():
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    x = keras.Input((6,), name="x")
    ids = keras.Input((4,), dtype="int32", name="ids")
    model = keras.Model([x, ids], [layers.Activation("celu")(x), layers.Discretization([-0.5, 0.0, 1.0])(x),
                                   layers.Discretization([0.5, 2.0, 5.0])(ids)])
    converted = tf_frontend.load(model, format="tf")
    assert not {"Expm1", "Bucketize"} & {n.op_type for n in converted.graph}
    rng = np.random.default_rng(0)
    feeds = {"x": rng.standard_normal((5, 6)).astype(np.float32), "ids": rng.integers(-1, 8, (5, 4)).astype(np.int32)}
    feeds["x"][0, :3] = [-0.5, 0.0, 1.0]  # on the boundaries: the upper bucket
    got = run_onnxruntime(converted, feeds)
    want = model([feeds["x"], feeds["ids"]])
    for value, expected in zip(converted.graph.outputs, want, strict=True):
        assert got[value.name].dtype == expected.numpy().dtype
        _close(got[value.name], expected.numpy())


@pytest.mark.parametrize(
    ("shape", "sizes", "strides", "rates", "padding", "feeds"),
    [
        ([None, 12, 12, 3], [1, 3, 3, 1], [1, 2, 2, 1], [1, 1, 1, 1], "VALID", [(2, 12, 12), (3, 12, 12)]),
        ([None, None, None, 2], [1, 2, 3, 1], [1, 1, 2, 1], [1, 1, 1, 1], "SAME", [(2, 9, 7), (1, 5, 6)]),
        ([None, 9, 7, 2], [1, 2, 3, 1], [1, 1, 2, 1], [1, 2, 1, 1], "SAME", [(2, 9, 7)]),
    ],
)
def test_extract_patches_with_dynamic_dims(shape, sizes, strides, rates, padding, feeds):
    patches = tf.function(lambda image: tf.image.extract_patches(image, sizes, strides, rates, padding),
                          input_signature=[tf.TensorSpec(shape, tf.float32, name="image")])
    converted = tf_frontend.load(patches, format="tf")
    rng = np.random.default_rng(0)
    for batch, height, width in feeds:
        image = rng.standard_normal((batch, height, width, shape[3])).astype(np.float32)
        (got,) = run_onnxruntime(converted, {"image": image}).values()
        _close(got, patches(image).numpy())


def test_dilated_same_patches_over_dynamic_spatial_dims_is_an_unsupported_op():
    patches = tf.function(lambda image: tf.image.extract_patches(image, [1, 2, 2, 1], [1, 1, 1, 1], [1, 2, 2, 1], "SAME"),
                          input_signature=[tf.TensorSpec([None, None, None, 2], tf.float32, name="image")])
    with pytest.raises(UnsupportedOpsError, match="ExtractImagePatches"):
        tf_frontend.load(patches, format="tf")


def test_error_raised_while_tracing_is_reported_by_its_message():
    import keras
    from keras import layers

    from converter.errors import CrossgraphError

    x = keras.Input((7,), name="x")
    model = keras.Model(x, layers.Activation("glu")(x))  # glu halves an even axis: 7 fails when traced
    with pytest.raises(CrossgraphError) as info:
        tf_frontend.load(model, format="tf")
    message = str(info.value)
    assert "ValueError" in message and "divisible by 2" in message
    assert "File " not in message and "\x1b" not in message


@pytest.mark.parametrize("size", [(7, 5), (20, 26)])
def test_half_pixel_nearest_resize_uses_a_current_onnx_mode(size):
    resize = tf.function(lambda image: tf.image.resize(image, size, method="nearest"),
                         input_signature=[tf.TensorSpec([None, 10, 13, 2], tf.float32, name="image")])
    converted = tf_frontend.load(resize, format="tf")
    (node,) = [n for n in converted.graph if n.op_type == "Resize"]
    assert node.attributes["coordinate_transformation_mode"].value == "half_pixel"  # not the removed tf_half_pixel_for_nn
    image = np.random.default_rng(0).standard_normal((2, 10, 13, 2)).astype(np.float32)
    (got,) = run_onnxruntime(converted, {"image": image}).values()
    np.testing.assert_array_equal(got, resize(image).numpy())


def test_keras_float_argmax_and_signbit():
    import keras

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
    def signs(x):
        return {"argmax": keras.ops.argmax(x, axis=-1), "signbit": keras.ops.signbit(x)}

    converted = tf_frontend.load(signs, format="tf")
    assert all(n.op_type != "Bitcast" for n in converted.graph)
    x = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    x[0] = [-0.0, 0.0, -1.0, -2.0]  # argmax must prefer +0.0 to -0.0
    x[1] = [0.0, -0.0, -1.0, -3.0]
    x[2] = [-1.0, -0.0, -np.inf, -3e-38]  # (no subnormals: TensorFlow's CPU kernels flush them to zero)
    got = run_onnxruntime(converted, {"x": x})
    want = signs(x)
    np.testing.assert_array_equal(got["argmax"], want["argmax"].numpy())
    np.testing.assert_array_equal(got["signbit"], want["signbit"].numpy())


def test_other_bitcasts_stay_unsupported():
    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def bits(x):
        return tf.bitcast(x, tf.int32) + 1

    with pytest.raises(UnsupportedOpsError, match="Bitcast"):
        tf_frontend.load(bits, format="tf")


def test_keras2_h5_that_keras3_cannot_read(tmp_path):
    tf_keras = pytest.importorskip("tf_keras")
    import keras

    tf_keras.utils.set_random_seed(0)
    ids = tf_keras.Input((None,), dtype="int32", name="ids")
    h = tf_keras.layers.Embedding(20, 8, mask_zero=True)(ids)
    h = tf_keras.layers.Bidirectional(tf_keras.layers.LSTM(5, return_sequences=True))(h)
    model = tf_keras.Model(ids, tf_keras.layers.TimeDistributed(tf_keras.layers.Dense(2))(h))
    path = tmp_path / "keras2_lstm.h5"
    model.save(path)
    with pytest.raises(Exception, match="time_major"):  # the Keras 2 LSTM config Keras 3 refuses
        keras.models.load_model(path, compile=False)

    converted = tf_frontend.load(path, format="keras")
    x = np.random.default_rng(0).integers(0, 20, (3, 6)).astype(np.int32)
    x[0, -2:] = 0
    (got,) = run_onnxruntime(converted, {"ids": x}).values()
    _close(got, model(x).numpy())
    # The parity check reads the file the same way (it used Keras 3 alone and failed).
    import converter

    result = converter.convert(path, tmp_path / "keras2_lstm.onnx", check=True)
    assert result.parity is not None and result.parity.passed


def test_unknown_rank_signature_with_input_specs_and_nested_outputs(tmp_path):
    """``TensorSpec(None)`` traced rank-blind (Rank ops tf2onnx cannot translate): the body is
    traced again under the shapes ``inputs`` gives; parity names nested dict outputs as the
    front end does."""
    import converter

    @tf.function(input_signature=[tf.TensorSpec(None, tf.float32)])
    def blind(x):
        return {"pair": (x * 2.0, x + 1.0), "total": tf.reduce_sum(x)}

    result = converter.convert(blind, tmp_path / "blind.onnx", inputs=["x:batch x 3"], check=True)
    assert result.parity is not None and result.parity.passed
    assert {o.name for o in result.parity.outputs} == {"pair_0", "pair_1", "total"}
