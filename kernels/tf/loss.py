"""Loss ops: NegativeLogLikelihoodLoss (opset 12+) and SoftmaxCrossEntropyLoss (opset 12+).

Both pick, for every position, the (log-)probability of the target class on
axis 1 of ``[N, C, d1, ...]``, negate it and reduce:

    loss[n, d] = -x[n, target[n, d], d] * w[n, d]
    w[n, d]    = weight[target[n, d]] (1 without weights), 0 where target == ignore_index
    mean       = sum(loss) / sum(w)

Targets equal to ``ignore_index`` may lie outside ``[0, C)``; they are clipped
before gathering and then weighted 0.
"""

from __future__ import annotations

import tensorflow as tf

from kernels.tf import TF
from kernels.tf._util import rank


def _picked(x: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """x[n, target[n, d], d] for x [N, C, d...] and target [N, d...]."""
    r = rank(x)
    classes = tf.shape(x, out_type=target.dtype)[1]
    moved = tf.transpose(x, [0, *range(2, r), 1])  # [N, d..., C]
    index = tf.clip_by_value(target, tf.zeros([], target.dtype), classes - 1)
    return tf.gather(moved, index, batch_dims=r - 1)


def _weights(x: tf.Tensor, target: tf.Tensor, weight, ignore_index) -> tf.Tensor | None:
    if weight is None and ignore_index is None:
        return None
    if weight is None:
        w = tf.ones_like(target, x.dtype)
    else:
        classes = tf.shape(weight, out_type=target.dtype)[0]
        w = tf.gather(weight, tf.clip_by_value(target, tf.zeros([], target.dtype), classes - 1))
    if ignore_index is not None:
        w = tf.where(tf.equal(target, tf.cast(ignore_index, target.dtype)), tf.zeros_like(w), w)
    return tf.cast(w, x.dtype)


def nll(log_probs: tf.Tensor, target: tf.Tensor, weight=None, ignore_index=None, reduction: str = "mean"):
    """The negative log likelihood of ``target`` under ``log_probs`` [N, C, d...], reduced."""
    loss = -_picked(log_probs, target)
    w = _weights(log_probs, target, weight, ignore_index)
    if w is not None:
        loss = loss * w
    if reduction == "none":
        return loss
    if reduction == "sum":
        return tf.reduce_sum(loss)
    if w is None:
        return tf.reduce_mean(loss)
    return tf.reduce_sum(loss) / tf.reduce_sum(w)


@TF.register("NegativeLogLikelihoodLoss", since=12)
def negative_log_likelihood_loss(x, target, weight=None, *, ignore_index: int | None = None,
                                 reduction: str = "mean"):
    return nll(x, target, weight, ignore_index, reduction)


@TF.register("SoftmaxCrossEntropyLoss", since=12)
def softmax_cross_entropy_loss(scores, labels, weights=None, *, ignore_index: int | None = None,
                               reduction: str = "mean", num_outputs: int = 1):
    log_probs = tf.nn.log_softmax(scores, axis=1)
    loss = nll(log_probs, labels, weights, ignore_index, reduction)
    return (loss, log_probs)[:max(1, num_outputs)]
