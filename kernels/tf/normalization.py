"""Normalization kernels: BatchNormalization, LayerNormalization, Instance/Group/Lp norms, Dropout."""

from __future__ import annotations

import tensorflow as tf

from kernels.tf import TF
from kernels.tf._util import axis_of, rank


def per_channel(p: tf.Tensor, r: int, axis: int) -> tf.Tensor:
    """A [C] parameter shaped to broadcast along ``axis`` of a rank-``r`` tensor."""
    if axis == r - 1 or p.shape.rank != 1:
        return p
    return tf.reshape(p, [-1] + [1] * (r - 1 - axis))


def batch_norm_on_axis(x, scale, b, mean, var, epsilon: float, axis: int) -> tf.Tensor:
    """Inference batch normalization with the channels on ``axis`` (1 for NCHW, -1 channels-last)."""
    r = rank(x)
    axis = axis_of(axis, r)
    a = scale * tf.math.rsqrt(var + tf.cast(epsilon, var.dtype))
    shift = b - mean * a
    return x * tf.cast(per_channel(a, r, axis), x.dtype) + tf.cast(per_channel(shift, r, axis), x.dtype)


@TF.register("BatchNormalization", since=9)
def batch_normalization(x, scale, b, mean, var, epsilon: float = 1e-5, momentum: float = 0.9,
                        training_mode: int = 0, num_outputs: int = 1):
    if not training_mode:
        return batch_norm_on_axis(x, scale, b, mean, var, epsilon, 1)
    axes = [0, *range(2, rank(x))]
    batch_mean, batch_var = tf.nn.moments(x, axes)
    y = batch_norm_on_axis(x, scale, b, batch_mean, batch_var, epsilon, 1)
    m = tf.cast(momentum, mean.dtype)
    running_mean = mean * m + tf.cast(batch_mean, mean.dtype) * (1 - m)
    running_var = var * m + tf.cast(batch_var, var.dtype) * (1 - m)
    return (y, running_mean, running_var)[:max(1, num_outputs)]


def _stash(x: tf.Tensor, stash_type: int) -> tf.Tensor:
    return tf.cast(x, tf.float32) if stash_type == 1 and x.dtype != tf.float64 else x


@TF.register("LayerNormalization", since=17)
def layer_normalization(x, scale, b=None, axis: int = -1, epsilon: float = 1e-5, stash_type: int = 1):
    r = rank(x)
    axes = list(range(axis_of(axis, r), r))
    xs = _stash(x, stash_type)
    mean = tf.reduce_mean(xs, axes, keepdims=True)
    var = tf.reduce_mean(tf.square(xs - mean), axes, keepdims=True)
    inv_std = tf.math.rsqrt(var + tf.cast(epsilon, xs.dtype))
    y = tf.cast((xs - mean) * inv_std, x.dtype) * scale
    if b is not None:
        y = y + b
    return y, tf.cast(mean, xs.dtype), tf.cast(inv_std, xs.dtype)


@TF.register("InstanceNormalization", since=6)
def instance_normalization(x, scale, b, epsilon: float = 1e-5):
    r = rank(x)
    mean, var = tf.nn.moments(x, list(range(2, r)), keepdims=True)
    y = (x - mean) * tf.math.rsqrt(var + tf.cast(epsilon, x.dtype))
    return y * per_channel(scale, r, 1) + per_channel(b, r, 1)


@TF.register("GroupNormalization", since=21)
def group_normalization(x, scale, b, epsilon: float = 1e-5, num_groups: int = 1, stash_type: int = 1):
    r = rank(x)
    shape = tf.shape(x)
    xs = _stash(x, stash_type)
    grouped = tf.reshape(xs, tf.concat([shape[:1], [num_groups, -1]], 0))
    mean, var = tf.nn.moments(grouped, [2], keepdims=True)
    y = (grouped - mean) * tf.math.rsqrt(var + tf.cast(epsilon, xs.dtype))
    y = tf.cast(tf.reshape(y, shape), x.dtype)
    return y * per_channel(scale, r, 1) + per_channel(b, r, 1)


@TF.register("LpNormalization")
def lp_normalization(x, axis: int = -1, p: int = 2):
    if p == 1:
        norm = tf.reduce_sum(tf.abs(x), axis, keepdims=True)
    else:
        norm = tf.sqrt(tf.reduce_sum(tf.square(x), axis, keepdims=True))
    return tf.math.divide_no_nan(x, norm)  # a zero norm gives 0, as onnx's reference


@TF.register("MeanVarianceNormalization", since=9)
def mean_variance_normalization(x, axes=(0, 2, 3)):
    mean, var = tf.nn.moments(x, list(axes), keepdims=True)
    return (x - mean) / (tf.sqrt(var) + tf.cast(1e-9, x.dtype))


@TF.register("Dropout", since=1)
def dropout_1(x, ratio: float = 0.5, is_test: int = 0, consumed_inputs=None, seed: int = 0, num_outputs: int = 1):
    return (tf.identity(x), tf.ones_like(x, tf.bool))[:max(1, num_outputs)]


@TF.register("RMSNormalization", since=23)
def rms_normalization(x, scale, axis: int = -1, epsilon: float = 1e-5, stash_type: int = 1):
    r = rank(x)
    xs = _stash(x, stash_type)
    ms = tf.reduce_mean(tf.square(xs), list(range(axis_of(axis, r), r)), keepdims=True)
    return tf.cast(xs * tf.math.rsqrt(ms + tf.cast(epsilon, xs.dtype)), x.dtype) * scale


@TF.register("Dropout", since=12)
def dropout(x, ratio=None, training_mode=None, seed: int = 0, num_outputs: int = 1):
    training = training_mode is not None and bool(tf.get_static_value(training_mode))
    if training and ratio is not None and float(tf.get_static_value(ratio)) != 0.0:
        raise NotImplementedError("Dropout in training mode is random; only inference is supported")
    return (tf.identity(x), tf.ones_like(x, tf.bool))[:max(1, num_outputs)]
