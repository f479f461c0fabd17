"""Robustness sweep: convert architectures the test suite does not cover, and check each result.

Every model is built small with random weights (transformers from small config
objects, ``keras.applications`` with ``weights=None``, and hand-written torch
modules exercising single ops); nothing is downloaded. Per model:

- ``onnx``: the live model to ``.onnx`` with ``check=True`` (parity against the
  framework itself);
- ``pt``, ``sm``: that ONNX file to TorchScript and to a SavedModel directory,
  each checked against the ONNX file;
- ``tflite``: that ONNX file to ``.tflite`` (vision models only).

A target whose ONNX step failed is reported as skipped. The table has one row per
model and target: ok/weak/FAIL, seconds, the worst max-abs error over the outputs,
the worst error relative to its output's scale (``max|a - b| / max|b|``, ``b`` the
reference), and the error's first line. A check is *weak* when a reference output
is near zero or about constant (random-weight models often give such outputs):
agreeing with it proves little, so the row names those outputs. Exit status 1
when any row failed.

Besides PyTorch/transformers and ``keras.applications``, a TensorFlow group
(``tf_*``) builds Keras 3 functional and subclassed models, ``tf.function`` objects,
a Keras 2 (``tf_keras``) model live and as ``.h5``, a SavedModel and a frozen
GraphDef, covering layers and ops the test suite does not.

Run from the repository root:
``nice .venv/bin/python bench/sweep_models.py [--only AlbertModel,ResNet50V2] [--targets onnx,pt,sm,tflite]``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import converter  # noqa: E402

TARGETS = ("onnx", "pt", "sm", "tflite")
TEXT = ["input_ids:batch x seq:int64"]
VOCAB = 100


@dataclasses.dataclass
class Case:
    """One model of the sweep: how to build it, its input specs, whether it is a vision model."""

    name: str
    build: Callable[[], Any]
    inputs: list[str] | None = None
    vision: bool = False


@dataclasses.dataclass
class Row:
    """One line of the table."""

    model: str
    target: str
    status: str
    seconds: float = 0.0
    error: float | None = None
    relative: float | None = None
    weak: str = ""
    message: str = ""


# --------------------------------------------------------------------------- builders


def hf(model_cls: str, config_cls: str, encoder: bool = False, **config: Any) -> Callable[[], Any]:
    """A builder for a transformers model from a small config, in eval mode, seeded."""

    def build() -> Any:
        import torch
        import transformers

        torch.manual_seed(0)
        model = getattr(transformers, model_cls)(getattr(transformers, config_cls)(**config)).eval()
        return model.get_encoder() if encoder else model

    return build


def keras_app(name: str, size: int) -> Callable[[], Any]:
    """A builder for a ``keras.applications`` model with random weights at ``size`` x ``size``."""

    def build() -> Any:
        import keras

        keras.utils.set_random_seed(0)
        return getattr(keras.applications, name)(weights=None, input_shape=(size, size, 3))

    return build


def torch_module(factory: Callable[[], Any]) -> Callable[[], Any]:
    """A builder for a hand-written torch module (the factory defines the class lazily)."""

    def build() -> Any:
        import torch

        torch.manual_seed(0)
        return factory().eval()

    return build


def _conv_stack() -> Any:
    """Conv1d, ConvTranspose2d, GroupNorm and bilinear interpolate."""
    import torch
    from torch import nn

    class ConvStack(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1d = nn.Conv1d(4, 8, 3, padding=1, dilation=1)
            self.up = nn.ConvTranspose2d(8, 6, 3, stride=2, padding=1, output_padding=1)
            self.norm = nn.GroupNorm(2, 6)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            b = x.shape[0]
            y = self.conv1d(x)  # b x 8 x 16
            y = y.reshape(b, 8, 4, 4)
            y = self.norm(self.up(y))  # b x 6 x 8 x 8
            return nn.functional.interpolate(y, scale_factor=2.0, mode="bilinear", align_corners=False)

    return ConvStack()


def _tensor_ops() -> Any:
    """einsum, topk, cumsum and masked_fill."""
    import torch
    from torch import nn

    class TensorOps(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Parameter(torch.randn(8, 8))

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            scores = torch.einsum("bsd,de,bte->bst", x, self.proj, x)
            masked = scores.masked_fill(scores < 0, -1.0)
            values, indices = torch.topk(masked, 3, dim=-1)
            return torch.cumsum(values, dim=-1), indices, torch.cumsum(x, dim=1)

    return TensorOps()


def _embedding_bag() -> Any:
    """nn.EmbeddingBag (mean and sum) over fixed-size bags."""
    import torch
    from torch import nn

    class Bags(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mean = nn.EmbeddingBag(VOCAB, 8, mode="mean")
            self.sum = nn.EmbeddingBag(VOCAB, 8, mode="sum")

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return torch.cat([self.mean(ids), self.sum(ids)], dim=-1)

    return Bags()


def _recurrent() -> Any:
    """Bidirectional LSTM and GRU, two layers, batch first."""
    import torch
    from torch import nn

    class Recurrent(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(8, 6, num_layers=2, batch_first=True, bidirectional=True)
            self.gru = nn.GRU(12, 5, batch_first=True, bidirectional=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y, _ = self.lstm(x)
            z, _ = self.gru(y)
            return z

    return Recurrent()


# --------------------------------------------------------------------------- TensorFlow models


def tf_model(factory: Callable[[], Any]) -> Callable[[], Any]:
    """A builder for a TF/Keras model or a saved file (the factory imports TF lazily), seeded."""

    def build() -> Any:
        import keras

        keras.utils.set_random_seed(0)
        return factory()

    return build


def _saved_dir(name: str) -> Path:
    """A fresh directory, inside the sweep's output directory, for a model saved before converting."""
    return Path(tempfile.mkdtemp(prefix=f"saved_{name}_", dir=_SAVE_ROOT[0] if _SAVE_ROOT else None))


#: The sweep's output directory while it runs (saved models go there and are removed with it).
_SAVE_ROOT: list[Path] = []


def _keras_conv1d() -> Any:
    """Conv1D (dilated, causal), LayerNormalization, GlobalMaxPool1D over a dynamic sequence."""
    import keras
    from keras import layers

    x = keras.Input((None, 6), name="signal")
    y = layers.Conv1D(12, 3, padding="causal", dilation_rate=2, activation="relu")(x)
    y = layers.LayerNormalization()(y)
    y = layers.Conv1D(8, 5, strides=2, padding="same")(y)
    return keras.Model(x, layers.Dense(4)(layers.GlobalMaxPool1D()(y)), name="conv1d_net")


def _keras_conv2d_family() -> Any:
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


def _keras_unet() -> Any:
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


def _keras_text_attention() -> Any:
    """Embedding(mask_zero) into MultiHeadAttention with a padding and a causal mask."""
    import keras
    from keras import layers

    ids = keras.Input((None,), dtype="int32", name="ids")
    h = layers.Embedding(VOCAB, 16, mask_zero=True)(ids)  # the mask reaches the attention
    h = layers.MultiHeadAttention(num_heads=2, key_dim=8)(h, h, use_causal_mask=True)
    h = layers.LayerNormalization()(h)
    return keras.Model(ids, layers.Dense(VOCAB)(h), name="text_attention")


def _keras_recurrent() -> Any:
    """Embedding(mask_zero), Bidirectional(LSTM), GRU and TimeDistributed(Dense), sequences out."""
    import keras
    from keras import layers

    ids = keras.Input((None,), dtype="int32", name="ids")
    h = layers.Embedding(VOCAB, 8, mask_zero=True)(ids)
    h = layers.Bidirectional(layers.LSTM(6, return_sequences=True))(h)
    h = layers.GRU(5, return_sequences=True)(h)
    return keras.Model(ids, layers.TimeDistributed(layers.Dense(3))(h), name="recurrent")


def _keras_attention_layers() -> Any:
    """Attention (scaled dot product) and AdditiveAttention between two sequences, with a value mask."""
    import keras
    from keras import layers

    query = keras.Input((None, 8), name="query")
    value = keras.Input((None, 8), name="value")
    mask = layers.Lambda(lambda v: keras.ops.greater(keras.ops.sum(v, axis=-1), 0.0))(value)
    dot = layers.Attention(use_scale=True)([query, value], mask=[None, mask])
    additive = layers.AdditiveAttention()([query, value])
    return keras.Model([query, value], [dot, additive], name="attention_layers")


def _keras_transformer_block() -> Any:
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


def _keras_control_flow() -> Any:
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


def _tf_tensor_ops() -> Any:
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


def _keras_preprocessing() -> Any:
    """Preprocessing layers in the model: Rescaling, Normalization, Resizing, Discretization; celu."""
    import keras
    from keras import layers

    x = keras.Input((20, 20, 3), name="image")
    h = layers.Normalization(mean=[0.5, 0.4, 0.3], variance=[0.1, 0.2, 0.3])(layers.Rescaling(1 / 255.0)(x))
    h = layers.Conv2D(4, 3, activation="celu")(layers.Resizing(12, 12)(h))
    pooled = layers.GlobalAveragePooling2D()(h)
    return keras.Model(x, [pooled, layers.Discretization([-0.5, 0.0, 0.5])(pooled)], name="preprocessing")


def _tf_signal() -> Any:
    """A tf.function: tf.signal.frame into a Hann-windowed magnitude rfft."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, 64], tf.float32, name="audio")])
    def spectrum(audio: Any) -> Any:
        frames = tf.signal.frame(audio, 16, 8) * tf.signal.hann_window(16)
        return tf.abs(tf.signal.rfft(frames))

    return spectrum


def _tf_keras_sequential() -> Any:
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


def _tf_keras_h5() -> Path:
    """The Keras 2 Sequential model above, saved as a legacy ``.h5`` file."""
    path = _saved_dir("h5") / "keras2_sequential.h5"
    _tf_keras_sequential().save(path)
    return path


def _tf_savedmodel() -> Path:
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


def _tf_frozen_graphdef() -> Path:
    """The Conv1D Keras model, frozen to a TF1-style GraphDef ``.pb``."""
    import tensorflow as tf
    from tensorflow.python.framework import convert_to_constants

    model = _keras_conv1d()
    function = tf.function(lambda signal: model(signal, training=False))
    concrete = function.get_concrete_function(tf.TensorSpec([None, None, 6], tf.float32, name="signal"))
    frozen = convert_to_constants.convert_variables_to_constants_v2(concrete)
    path = _saved_dir("graphdef") / "conv1d.pb"
    path.write_bytes(frozen.graph.as_graph_def().SerializeToString())
    return path


def _vision(size: int = 32) -> list[str]:
    return [f"pixel_values:batch x 3 x {size} x {size}"]


TINY_BERT = dict(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
TINY_DECODER = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, use_cache=False)
TINY_VIT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                image_size=32, patch_size=8)

CASES = [
    # transformers, text
    Case("AlbertModel", hf("AlbertModel", "AlbertConfig", embedding_size=16, **TINY_BERT), TEXT),
    Case("BartEncoder", hf("BartModel", "BartConfig", encoder=True, vocab_size=VOCAB, d_model=32, encoder_layers=2,
                           decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
                           encoder_ffn_dim=64, decoder_ffn_dim=64, pad_token_id=1, bos_token_id=0,
                           eos_token_id=2, decoder_start_token_id=2, max_position_embeddings=64), TEXT),
    Case("ElectraModel", hf("ElectraModel", "ElectraConfig", embedding_size=16, **TINY_BERT), TEXT),
    Case("DebertaV2Model", hf("DebertaV2Model", "DebertaV2Config", **TINY_BERT), TEXT),
    Case("MPNetModel", hf("MPNetModel", "MPNetConfig", **TINY_BERT), TEXT),
    Case("MobileBertModel", hf("MobileBertModel", "MobileBertConfig", vocab_size=VOCAB, hidden_size=32,
                               embedding_size=16, num_hidden_layers=2, num_attention_heads=2,
                               intermediate_size=32, intra_bottleneck_size=16, true_hidden_size=16,
                               num_feedforward_networks=2), TEXT),
    Case("OPTModel", hf("OPTModel", "OPTConfig", vocab_size=VOCAB, hidden_size=32, ffn_dim=64, num_hidden_layers=2,
                        num_attention_heads=2, word_embed_proj_dim=32, pad_token_id=1, bos_token_id=2,
                        eos_token_id=2, use_cache=False), TEXT),
    Case("BloomModel", hf("BloomModel", "BloomConfig", vocab_size=VOCAB, hidden_size=32, n_layer=2, n_head=2,
                          use_cache=False), TEXT),
    Case("GPTNeoModel", hf("GPTNeoModel", "GPTNeoConfig", vocab_size=VOCAB, hidden_size=32, num_layers=2, num_heads=2,
                           attention_types=[[["global", "local"], 1]], window_size=4, max_position_embeddings=64,
                           bos_token_id=0, eos_token_id=0, use_cache=False), TEXT),
    Case("FalconModel", hf("FalconModel", "FalconConfig", vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2,
                           num_attention_heads=4, use_cache=False, bos_token_id=0, eos_token_id=0), TEXT),
    Case("PhiModel", hf("PhiModel", "PhiConfig", **TINY_DECODER), TEXT),
    Case("Qwen2Model", hf("Qwen2Model", "Qwen2Config", **TINY_DECODER), TEXT),
    Case("GemmaModel", hf("GemmaModel", "GemmaConfig", head_dim=8, **TINY_DECODER), TEXT),
    # transformers, vision
    Case("SegformerModel", hf("SegformerModel", "SegformerConfig", num_encoder_blocks=2, depths=[1, 1],
                              sr_ratios=[2, 1], hidden_sizes=[8, 16], patch_sizes=[7, 3], strides=[4, 2],
                              num_attention_heads=[1, 2], mlp_ratios=[2, 2]), _vision(), True),
    Case("DeiTModel", hf("DeiTModel", "DeiTConfig", **TINY_VIT), _vision(), True),
    Case("BeitModel", hf("BeitModel", "BeitConfig", use_relative_position_bias=True, **TINY_VIT), _vision(), True),
    Case("Dinov2Model", hf("Dinov2Model", "Dinov2Config", **TINY_VIT), _vision(), True),
    Case("ResNetModel", hf("ResNetModel", "ResNetConfig", embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1],
                           layer_type="bottleneck"), _vision(), True),
    Case("MobileNetV2Model", hf("MobileNetV2Model", "MobileNetV2Config", depth_multiplier=0.35, image_size=32),
         _vision(), True),
    Case("MobileViTModel", hf("MobileViTModel", "MobileViTConfig", image_size=32, hidden_sizes=[16, 24, 32],
                              neck_hidden_sizes=[8, 8, 16, 16, 24, 24, 32]), _vision(), True),
    Case("ConvNextV2Model", hf("ConvNextV2Model", "ConvNextV2Config", hidden_sizes=[8, 16], depths=[1, 1],
                               num_stages=2), _vision(), True),
    Case("PoolFormerModel", hf("PoolFormerModel", "PoolFormerConfig", hidden_sizes=[8, 16], depths=[1, 1],
                               num_encoder_blocks=2, patch_sizes=[7, 3], strides=[4, 2], padding=[2, 1]),
         _vision(), True),
    Case("LevitModel", hf("LevitModel", "LevitConfig", image_size=32, hidden_sizes=[16, 32], num_attention_heads=[1, 2],
                          depths=[1, 1], key_dim=[8, 8], down_ops=[["Subsample", 8, 1, 4, 2, 2]],
                          attention_ratio=[2, 2], mlp_ratio=[2, 2]), _vision(), True),
    Case("YolosModel", hf("YolosModel", "YolosConfig", image_size=[32, 32], num_detection_tokens=4, **{
        k: v for k, v in TINY_VIT.items() if k != "image_size"}), _vision(), True),
    # keras.applications
    Case("ResNet50V2", keras_app("ResNet50V2", 32), vision=True),
    Case("InceptionResNetV2", keras_app("InceptionResNetV2", 75), vision=True),
    Case("MobileNetV3Large", keras_app("MobileNetV3Large", 32), vision=True),
    Case("EfficientNetV2S", keras_app("EfficientNetV2S", 32), vision=True),
    Case("DenseNet169", keras_app("DenseNet169", 32), vision=True),
    Case("MobileNet", keras_app("MobileNet", 32), vision=True),  # Keras 3 has no RegNet
    Case("ConvNeXtSmall", keras_app("ConvNeXtSmall", 32), vision=True),
    # hand-written torch modules
    Case("torch_conv_stack", torch_module(_conv_stack), ["x:batch x 4 x 16"], True),
    Case("torch_tensor_ops", torch_module(_tensor_ops), ["x:batch x seq x 8"]),
    Case("torch_embedding_bag", torch_module(_embedding_bag), ["ids:batch x 6:int64"]),
    Case("torch_recurrent", torch_module(_recurrent), ["x:batch x seq x 8"]),
    # TensorFlow / Keras, built in-process
    Case("tf_conv1d", tf_model(_keras_conv1d)),
    Case("tf_conv2d_family", tf_model(_keras_conv2d_family), vision=True),
    Case("tf_unet", tf_model(_keras_unet), vision=True),
    Case("tf_text_attention", tf_model(_keras_text_attention)),
    Case("tf_recurrent", tf_model(_keras_recurrent)),
    Case("tf_attention_layers", tf_model(_keras_attention_layers)),
    Case("tf_transformer_block", tf_model(_keras_transformer_block)),
    Case("tf_control_flow", tf_model(_keras_control_flow), ["x:batch x 5"]),
    Case("tf_preprocessing", tf_model(_keras_preprocessing), vision=True),
    Case("tf_tensor_ops", tf_model(_tf_tensor_ops)),
    Case("tf_signal", tf_model(_tf_signal)),
    Case("tf_keras2_sequential", tf_model(_tf_keras_sequential), vision=True),
    Case("tf_keras2_h5", tf_model(_tf_keras_h5), vision=True),
    Case("tf_savedmodel", tf_model(_tf_savedmodel)),
    Case("tf_frozen_graphdef", tf_model(_tf_frozen_graphdef)),
]
_BY_NAME = {case.name: case for case in CASES}


# --------------------------------------------------------------------------- running


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:400]


#: A reference output whose largest magnitude is below this is "near zero": a check against it is weak.
NEAR_ZERO = 1e-4
#: A reference output whose spread (max - min) is below this fraction of its magnitude is "~constant".
CONSTANT_SPREAD = 1e-4


@dataclasses.dataclass
class Scale:
    """What one reference output looked like: its largest magnitude and its spread (max - min)."""

    magnitude: float
    spread: float

    def weakness(self) -> str:
        """``"near zero"``, ``"constant"`` or ``""``: why agreement with this output proves little."""
        if self.magnitude < NEAR_ZERO:
            return "near zero"
        if self.spread <= CONSTANT_SPREAD * self.magnitude:
            return "constant"
        return ""


@contextlib.contextmanager
def _reference_scales() -> Iterator[dict[str, Scale]]:
    """Record the :class:`Scale` of every reference output the parity check compares, by output name.

    The parity report gives errors but not the reference's size; this wraps
    ``converter.parity._compare`` (which receives ``(expected, actual)`` pairs) for
    the duration of one conversion.
    """
    from converter import parity

    scales: dict[str, Scale] = {}
    compare = parity._compare

    def recording(name: str, pairs: list[tuple[Any, Any]], *args: Any) -> Any:
        values = [np.asarray(expected) for expected, _ in pairs]
        if all(v.dtype.kind in "fiub" and v.size for v in values):
            flat = np.concatenate([v.astype(np.float64).reshape(-1) for v in values])
            flat = flat[np.isfinite(flat)]
            if flat.size:
                scales[name] = Scale(float(np.abs(flat).max()), float(flat.max() - flat.min()))
        return compare(name, pairs, *args)

    parity._compare = recording
    try:
        yield scales
    finally:
        parity._compare = compare


def _errors(result: Any, scales: dict[str, Scale]) -> tuple[float | None, float | None, str]:
    """Worst max-abs error, worst error relative to its output's scale, and the weak outputs."""
    outputs = getattr(result.parity, "outputs", None) or []
    absolute = [o.max_abs_error for o in outputs if o.max_abs_error is not None]
    relative = [
        o.max_abs_error / max(scales[o.name].magnitude, np.finfo(np.float64).tiny)
        for o in outputs
        if o.max_abs_error is not None and o.name in scales
    ]
    weak = [f"{o.name} {scales[o.name].weakness()}" for o in outputs if o.name in scales and scales[o.name].weakness()]
    return (max(absolute) if absolute else None), (max(relative) if relative else None), ", ".join(weak)


def _convert(model: str, target: str, source: Any, dst: Path, **kwargs: Any) -> tuple[Row, bool]:
    start = time.perf_counter()
    with _reference_scales() as scales:
        try:
            result = converter.convert(source, dst, check=True, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the sweep records every failure and goes on
            return Row(model, target, "FAIL", time.perf_counter() - start, message=_first_line(exc)), False
    error, relative, weak = _errors(result, scales)
    status = "weak" if weak else "ok"
    return Row(model, target, status, time.perf_counter() - start, error, relative, weak), True


def sweep_case(case: Case, targets: list[str], out: Path) -> list[Row]:
    """Convert one model to every target it takes; one row per target."""
    start = time.perf_counter()
    try:
        model = case.build()
    except Exception as exc:  # noqa: BLE001
        return [Row(case.name, "build", "FAIL", time.perf_counter() - start, None, _first_line(exc))]
    onnx_path = out / f"{case.name}.onnx"
    row, onnx_ok = _convert(case.name, "onnx", model, onnx_path, inputs=case.inputs)
    rows = [row] if "onnx" in targets else []
    for target in targets:
        if target == "onnx" or (target == "tflite" and not case.vision):
            continue
        if not onnx_ok:
            rows.append(Row(case.name, target, "skip", message="no ONNX file"))
            continue
        kwargs = {"target_format": "savedmodel"} if target == "sm" else {}
        dst = out / {"pt": f"{case.name}.pt", "sm": f"{case.name}_savedmodel", "tflite": f"{case.name}.tflite"}[target]
        rows.append(_convert(case.name, target, onnx_path, dst, **kwargs)[0])
    return rows


def print_row(row: Row) -> None:
    error = "" if row.error is None else f"{row.error:.2g}"
    relative = "" if row.relative is None else f"{row.relative:.2g}"
    note = row.message or (f"weak check: {row.weak}" if row.weak else "")
    print(f"{row.model:<22} {row.target:<7} {row.status:<5} {row.seconds:7.1f} {error:>9} {relative:>9}  {note}",
          flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated model names (default: all)")
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated: onnx,pt,sm,tflite")
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or [case.name for case in CASES]
    unknown = [n for n in names if n not in _BY_NAME]
    targets = [t for t in args.targets.split(",") if t]
    if unknown or set(targets) - set(TARGETS):
        parser.error(f"unknown models {unknown} or targets {targets}; models: {', '.join(_BY_NAME)}")
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    print(f"{'model':<22} {'target':<7} {'ok':<5} {'seconds':>7} {'max err':>9} {'rel err':>9}  error")
    failed = 0
    with tempfile.TemporaryDirectory(prefix="bench_sweep_") as tmp:
        _SAVE_ROOT[:] = [Path(tmp)]
        for name in names:
            for row in sweep_case(_BY_NAME[name], targets, Path(tmp)):
                print_row(row)
                failed += row.status == "FAIL"
    print(f"{failed} failure(s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
