"""The TensorFlow group of the robustness sweep (``bench/sweep_models.py``, rows ``tf_*``).

Keras 3 functional and subclassed models, ``tf.function`` objects, a Keras 2
(``tf_keras``) model live and as ``.h5``, a SavedModel and a frozen GraphDef,
built small with random weights, covering layers and ops the test suite does
not. Each builder imports TensorFlow lazily and returns a live model or the path
of a saved one (under :data:`SAVE_ROOT` while the sweep runs).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

#: Vocabulary size of the text models.
VOCAB = 100


def tf_model(factory: Callable[[], Any]) -> Callable[[], Any]:
    """A builder for a TF/Keras model or a saved file (the factory imports TF lazily), seeded."""

    def build() -> Any:
        import keras

        keras.utils.set_random_seed(0)
        return factory()

    return build


def _saved_dir(name: str) -> Path:
    """A fresh directory, inside the sweep's output directory, for a model saved before converting."""
    return Path(tempfile.mkdtemp(prefix=f"saved_{name}_", dir=SAVE_ROOT[0] if SAVE_ROOT else None))


#: The sweep's output directory while it runs (saved models go there and are removed with it).
SAVE_ROOT: list[Path] = []


def keras_conv1d() -> Any:
    """Conv1D (dilated, causal), LayerNormalization, GlobalMaxPool1D over a dynamic sequence."""
    import keras
    from keras import layers

    x = keras.Input((None, 6), name="signal")
    y = layers.Conv1D(12, 3, padding="causal", dilation_rate=2, activation="relu")(x)
    y = layers.LayerNormalization()(y)
    y = layers.Conv1D(8, 5, strides=2, padding="same")(y)
    return keras.Model(x, layers.Dense(4)(layers.GlobalMaxPool1D()(y)), name="conv1d_net")


def keras_conv2d_family() -> Any:
    """SeparableConv2D, DepthwiseConv2D, GroupNormalization, Conv2DTranspose, UpSampling2D (both)."""
    import keras
    from keras import layers

    x = keras.Input((16, 16, 3), name="image")
    y = layers.SeparableConv2D(8, 3, padding="same", depth_multiplier=2, activation="relu")(x)
    y = layers.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2)(y)
    y = layers.GroupNormalization(groups=4)(y)
    y = layers.Conv2DTranspose(6, 3, strides=2, padding="same")(y)
    nearest = layers.UpSampling2D(2, interpolation="nearest")(y)
    bilinear = layers.UpSampling2D(2, interpolation="bilinear")(y)
    return keras.Model(x, layers.Concatenate()([nearest, bilinear]), name="conv2d_family")


def keras_unet() -> Any:
    """A two-level U-Net with skip connections and a per-pixel softmax."""
    import keras
    from keras import layers

    def block(t: Any, width: int) -> Any:
        t = layers.Conv2D(width, 3, padding="same", activation="relu")(t)
        t = layers.BatchNormalization()(t)
        return layers.Conv2D(width, 3, padding="same", activation="relu")(t)

    x = keras.Input((32, 32, 3), name="image")
    d1 = block(x, 8)
    d2 = block(layers.MaxPool2D()(d1), 16)
    bottom = block(layers.MaxPool2D()(d2), 32)
    u2 = block(layers.Concatenate()([layers.Conv2DTranspose(16, 2, strides=2)(bottom), d2]), 16)
    u1 = block(layers.Concatenate()([layers.UpSampling2D(2, interpolation="bilinear")(u2), d1]), 8)
    return keras.Model(x, layers.Conv2D(3, 1, activation="softmax")(u1), name="unet")


def keras_text_attention() -> Any:
    """Embedding(mask_zero) into MultiHeadAttention with a padding and a causal mask."""
    import keras
    from keras import layers

    ids = keras.Input((None,), dtype="int32", name="ids")
    h = layers.Embedding(VOCAB, 16, mask_zero=True)(ids)  # the mask reaches the attention
    h = layers.MultiHeadAttention(num_heads=2, key_dim=8)(h, h, use_causal_mask=True)
    h = layers.LayerNormalization()(h)
    return keras.Model(ids, layers.Dense(VOCAB)(h), name="text_attention")


def keras_recurrent() -> Any:
    """Embedding(mask_zero), Bidirectional(LSTM), GRU and TimeDistributed(Dense), sequences out."""
    import keras
    from keras import layers

    ids = keras.Input((None,), dtype="int32", name="ids")
    h = layers.Embedding(VOCAB, 8, mask_zero=True)(ids)
    h = layers.Bidirectional(layers.LSTM(6, return_sequences=True))(h)
    h = layers.GRU(5, return_sequences=True)(h)
    return keras.Model(ids, layers.TimeDistributed(layers.Dense(3))(h), name="recurrent")


def keras_attention_layers() -> Any:
    """Attention (scaled dot product) and AdditiveAttention between two sequences, with a value mask."""
    import keras
    from keras import layers

    query = keras.Input((None, 8), name="query")
    value = keras.Input((None, 8), name="value")
    mask = layers.Lambda(lambda v: keras.ops.greater(keras.ops.sum(v, axis=-1), 0.0))(value)
    dot = layers.Attention(use_scale=True)([query, value], mask=[None, mask])
    additive = layers.AdditiveAttention()([query, value])
    return keras.Model([query, value], [dot, additive], name="attention_layers")


def keras_transformer_block() -> Any:
    """A hand-written encoder block (a Layer subclass): pre-norm MHA and an exact-GELU FFN."""
    import keras
    from keras import layers

    class EncoderBlock(layers.Layer):
        def __init__(self, width: int, heads: int, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.norm1, self.norm2 = layers.LayerNormalization(), layers.LayerNormalization()
            self.attention = layers.MultiHeadAttention(heads, width // heads)
            self.up = layers.Dense(width * 4, activation=lambda t: keras.activations.gelu(t, approximate=False))
            self.down = layers.Dense(width)

        def call(self, x: Any) -> Any:
            h = self.norm1(x)
            x = x + self.attention(h, h)
            return x + self.down(self.up(self.norm2(x)))

    x = keras.Input((None, 16), name="tokens")
    h = layers.Dense(16)(x) + keras.ops.sin(keras.ops.arange(0, 16, dtype="float32"))  # a fixed position signal
    h = EncoderBlock(16, 2)(EncoderBlock(16, 2)(h))
    return keras.Model(x, layers.GlobalAveragePooling1D()(h), name="transformer_block")


def keras_control_flow() -> Any:
    """A subclassed model (no Input) with a Layer running tf.while_loop and tf.cond on a tensor."""
    import keras
    import tensorflow as tf

    class Iterate(keras.layers.Layer):
        def call(self, x: Any) -> Any:
            def body(i: Any, acc: Any) -> tuple[Any, Any]:
                return i + 1, tf.tanh(acc * 0.9 + x)

            _, acc = tf.while_loop(lambda i, _: i < 3, body, [tf.constant(0), tf.zeros_like(x)])
            return tf.cond(tf.reduce_sum(acc) > 0, lambda: acc * 2.0, lambda: -acc)

    class Controlled(keras.Model):
        def __init__(self) -> None:
            super().__init__(name="control_flow")
            self.dense, self.iterate, self.out = keras.layers.Dense(8), Iterate(), keras.layers.Dense(2)

        def call(self, x: Any) -> Any:
            return self.out(self.iterate(self.dense(x)))

    model = Controlled()
    model(np.zeros((1, 5), np.float32))
    return model


def tf_tensor_ops() -> Any:
    """A tf.function: resize, depth_to_space/space_to_depth, einsum, gather_nd, top_k, cumsum, patches."""
    import tensorflow as tf

    kernel = tf.constant(np.random.default_rng(0).standard_normal((4, 4)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 4], tf.float32, name="image")])
    def tensor_ops(image: Any) -> dict[str, Any]:
        resized = tf.image.resize(image, [12, 12], method="bilinear")
        shuffled = tf.nn.space_to_depth(tf.nn.depth_to_space(image, 2), 2)
        mixed = tf.einsum("bhwc,cd->bhwd", shuffled, kernel)
        where = tf.tile(tf.constant([[[0, 1], [2, 3], [7, 7]]]), [tf.shape(image)[0], 1, 1])
        picked = tf.gather_nd(mixed, where, batch_dims=1)
        values, indices = tf.math.top_k(tf.reshape(mixed, [-1, 8 * 8 * 4]), k=5)
        patches = tf.image.extract_patches(image, [1, 3, 3, 1], [1, 2, 2, 1], [1, 1, 1, 1], "SAME")
        return {"resized": resized, "picked": picked, "patches": patches, "top_values": tf.math.cumsum(values, axis=1),
                "top_indices": indices, "cumsum": tf.math.cumsum(image, axis=2, exclusive=True, reverse=True)}

    return tensor_ops


def keras_preprocessing() -> Any:
    """Preprocessing layers in the model: Rescaling, Normalization, Resizing, Discretization; celu."""
    import keras
    from keras import layers

    x = keras.Input((20, 20, 3), name="image")
    h = layers.Normalization(mean=[0.5, 0.4, 0.3], variance=[0.1, 0.2, 0.3])(layers.Rescaling(1 / 255.0)(x))
    h = layers.Conv2D(4, 3, activation="celu")(layers.Resizing(12, 12)(h))
    pooled = layers.GlobalAveragePooling2D()(h)
    return keras.Model(x, [pooled, layers.Discretization([-0.5, 0.0, 0.5])(pooled)], name="preprocessing")


def tf_signal() -> Any:
    """A tf.function: tf.signal.frame into a Hann-windowed magnitude rfft."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, 64], tf.float32, name="audio")])
    def spectrum(audio: Any) -> Any:
        frames = tf.signal.frame(audio, 16, 8) * tf.signal.hann_window(16)
        return tf.abs(tf.signal.rfft(frames))

    return spectrum


def tf_keras_sequential() -> Any:
    """A Keras 2 (tf_keras) Sequential model, live."""
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    return tf_keras.Sequential([
        tf_keras.layers.InputLayer((10, 10, 3), name="image"),
        tf_keras.layers.Conv2D(8, 3, activation="relu"),
        tf_keras.layers.BatchNormalization(),
        tf_keras.layers.MaxPool2D(),
        tf_keras.layers.Flatten(),
        tf_keras.layers.Dropout(0.5),
        tf_keras.layers.Dense(4, activation="softmax"),
    ], name="keras2_sequential")


def tf_keras_h5() -> Path:
    """The Keras 2 Sequential model above, saved as a legacy ``.h5`` file."""
    path = _saved_dir("h5") / "keras2_sequential.h5"
    tf_keras_sequential().save(path)
    return path


def tf_savedmodel() -> Path:
    """A tf.Module whose tf.function has an input signature, saved as a SavedModel."""
    import tensorflow as tf

    class Scorer(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            rng = np.random.default_rng(3)
            self.w = tf.Variable(rng.standard_normal((6, 3)).astype(np.float32))
            self.b = tf.Variable(rng.standard_normal(3).astype(np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, 6], tf.float32, name="features")])
        def __call__(self, features: Any) -> dict[str, Any]:
            logits = tf.matmul(features, self.w) + self.b
            return {"probabilities": tf.nn.softmax(logits), "label": tf.argmax(logits, axis=-1)}

    path = _saved_dir("savedmodel")
    module = Scorer()
    tf.saved_model.save(module, str(path), signatures=module.__call__)
    return path


def tf_frozen_graphdef() -> Path:
    """The Conv1D Keras model, frozen to a TF1-style GraphDef ``.pb``."""
    import tensorflow as tf
    from tensorflow.python.framework import convert_to_constants

    model = keras_conv1d()
    function = tf.function(lambda signal: model(signal, training=False))
    concrete = function.get_concrete_function(tf.TensorSpec([None, None, 6], tf.float32, name="signal"))
    frozen = convert_to_constants.convert_variables_to_constants_v2(concrete)
    path = _saved_dir("graphdef") / "conv1d.pb"
    path.write_bytes(frozen.graph.as_graph_def().SerializeToString())
    return path
