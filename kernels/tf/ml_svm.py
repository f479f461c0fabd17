"""Support vector machines of ``ai.onnx.ml``: SVMRegressor and SVMClassifier (opset 1), as onnx's reference.

The kernel values of every row against every support vector are one [N, V]
matrix; the one-vs-one decision values of a classifier are then one matmul with
a [V, pairs] matrix that holds, for the pair (i, j), class i's vectors weighted
by coefficient row j - 1 and class j's by row i (libsvm's layout).
With ``prob_a``/``prob_b`` the scores are probability estimates: each pair's
decision value d becomes Platt's 1 / (1 + exp(d * a + b)), clipped to
[1e-7, 1 - 1e-7], and libsvm's pairwise coupling (Wu, Lin and Weng's second
method) solves for the class probabilities of every row at once, iterating
while any row has not converged (:func:`_couple`). Labels still come from the
votes, as in onnx's reference, onnxruntime and libsvm's ``predict``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from kernels.tf import TF
from kernels.tf.ml import ML, apply_post_transform, class_labels


def _params(kernel_params: Any) -> tuple[float, float, int]:
    """(gamma, coef0, degree); zeros when absent."""
    if not kernel_params:
        return 0.0, 0.0, 0
    return float(kernel_params[0]), float(kernel_params[1]), int(kernel_params[2])


def kernel_matrix(x: tf.Tensor, vectors: np.ndarray, kernel_type: str, kernel_params: Any) -> tf.Tensor:
    """[N, V]: the kernel of every row of ``x`` [N, F] with every support vector [V, F]."""
    gamma, coef0, degree = _params(kernel_params)
    sv = tf.constant(vectors, x.dtype)
    kind = kernel_type.upper()
    if kind == "RBF":
        squared = tf.reduce_sum(tf.square(x[:, tf.newaxis, :] - sv[tf.newaxis]), -1)
        return tf.exp(-gamma * squared)
    dot = tf.matmul(x, sv, transpose_b=True)
    if kind == "LINEAR":
        return dot
    if kind == "POLY":
        return tf.pow(dot * gamma + coef0, degree)
    if kind == "SIGMOID":
        return tf.tanh(dot * gamma + coef0)
    raise ValueError(f"unknown SVM kernel_type {kernel_type!r}")


def _rows(x: tf.Tensor) -> tf.Tensor:
    x = x if x.dtype in (tf.float32, tf.float64) else tf.cast(x, tf.float32)
    return x[tf.newaxis] if x.shape.rank == 1 else x


@TF.register(ML + "SVMRegressor", since=1)
def svm_regressor(x, *, coefficients=None, kernel_params=None, kernel_type: str = "LINEAR", n_supports: int = 0,
                  one_class: int = 0, post_transform: str = "NONE", rho=None, support_vectors=None):
    """[N, 1]: sum_j coefficients[j] * K(x, sv_j) + rho (x . coefficients + rho without support vectors);
    a one-class model gives 1 or -1 by the sign."""
    x = _rows(x)
    coefs = np.asarray(coefficients, np.float32)
    if n_supports > 0:
        vectors = np.asarray(support_vectors, np.float32).reshape(n_supports, -1)
        k = kernel_matrix(x, vectors, kernel_type, kernel_params)
        score = tf.matmul(k, tf.constant(coefs.reshape(-1, 1), x.dtype))
    else:
        score = tf.matmul(x, tf.constant(coefs.reshape(-1, 1), x.dtype))
    score += float(rho[0])
    if one_class:
        score = tf.where(score > 0, tf.ones_like(score), -tf.ones_like(score))
    return apply_post_transform(score, post_transform)


def _pair_matrix(coefs: np.ndarray, counts: list[int]) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """[V, pairs] weights of the one-vs-one decisions and the (i, j) class pairs, in libsvm's order."""
    starts = np.concatenate([[0], np.cumsum(counts)]).astype(int)
    pairs = [(i, j) for i in range(len(counts)) for j in range(i + 1, len(counts))]
    matrix = np.zeros((starts[-1], len(pairs)), np.float32)
    for e, (i, j) in enumerate(pairs):
        matrix[starts[i]:starts[i + 1], e] = coefs[j - 1, starts[i]:starts[i + 1]]
        matrix[starts[j]:starts[j + 1], e] = coefs[i, starts[j]:starts[j + 1]]
    return matrix, pairs


def _binary_scores(score: tf.Tensor, post_transform: str) -> tf.Tensor:
    """One decision value s per row as two columns: [-s, s] post-transformed (PROBIT keeps one column)."""
    if post_transform == "PROBIT":
        return apply_post_transform(score, post_transform)
    return apply_post_transform(tf.concat([-score, score], 1), post_transform)


def _pairwise(decision: tf.Tensor, pairs: list[tuple[int, int]], n_classes: int, prob_a, prob_b) -> tf.Tensor:
    """[N, k, k]: r[i, j], the estimated probability that a row of class i or j is of class i."""
    a = tf.constant(np.asarray(prob_a, np.float32)[:len(pairs)], decision.dtype)
    b = tf.constant(np.asarray(prob_b, np.float32)[:len(pairs)], decision.dtype)
    r = tf.clip_by_value(tf.sigmoid(-(decision * a + b)), 1e-7, 1 - 1e-7)  # [N, pairs]
    upper = np.zeros((len(pairs), n_classes * n_classes), np.float32)
    lower = np.zeros_like(upper)
    for e, (i, j) in enumerate(pairs):
        upper[e, i * n_classes + j] = lower[e, j * n_classes + i] = 1
    ones = tf.reduce_sum(tf.constant(lower, decision.dtype), 0)  # 1 where r[j, i] = 1 - r[i, j]
    flat = tf.matmul(r, tf.constant(upper, decision.dtype)) + ones - tf.matmul(r, tf.constant(lower, decision.dtype))
    return tf.reshape(flat, [-1, n_classes, n_classes])


def _couple(r: tf.Tensor, n_classes: int) -> tf.Tensor:
    """[N, k] class probabilities from pairwise ones [N, k, k] (libsvm's ``multiclass_probability``).

    Minimizes p^T Q p subject to sum(p) = 1 with Q[t, t] = sum_{j != t} r[j, t]^2 and
    Q[t, j] = -r[j, t] r[t, j], one coordinate at a time; a row stops once every
    |(Qp)[t] - p^T Q p| is below 0.005 / k, after at most max(100, k) sweeps.
    """
    k = n_classes
    off = -tf.transpose(r, [0, 2, 1]) * r
    diagonal = tf.reduce_sum(tf.square(r) * (1 - tf.eye(k, dtype=r.dtype)), 1)  # sum over j != t of r[j, t]^2
    q = tf.linalg.set_diag(off, diagonal)
    p = tf.fill(tf.shape(r)[:2], tf.constant(1 / k, r.dtype))
    eps = 0.005 / k

    def error(p):
        qp = tf.linalg.matvec(q, p)
        pqp = tf.reduce_sum(p * qp, -1, keepdims=True)
        return qp, pqp, tf.reduce_max(tf.abs(qp - pqp), -1) >= eps

    def sweep(step, p):
        qp, pqp, active = error(p)
        new = p
        for t in range(k):  # Gauss-Seidel: each coordinate sees the ones updated before it
            q_t = q[:, t]
            diff = (pqp[:, 0] - qp[:, t]) / q_t[:, t]
            scale = (1 + diff)[:, tf.newaxis]
            pqp = (pqp + (diff * (diff * q_t[:, t] + 2 * qp[:, t]))[:, tf.newaxis]) / tf.square(scale)
            new = (new + diff[:, tf.newaxis] * tf.one_hot(t, k, dtype=r.dtype)) / scale
            qp = (qp + diff[:, tf.newaxis] * q_t) / scale
        return step + 1, tf.where(active[:, tf.newaxis], new, p)  # converged rows keep their estimate

    def going(step, p):
        return tf.logical_and(step < max(100, k), tf.reduce_any(error(p)[2]))

    return tf.while_loop(going, sweep, (tf.constant(0), p))[1]


@TF.register(ML + "SVMClassifier", since=1)
def svm_classifier(x, *, classlabels_ints=None, classlabels_strings=None, coefficients=None, kernel_params=None,
                   kernel_type: str = "LINEAR", post_transform: str = "NONE", prob_a=None, prob_b=None, rho=None,
                   support_vectors=None, vectors_per_class=None):
    """(labels [N], scores): one-vs-one votes over the support vectors' decision values, ties to the lower class.

    Scores are the decision values (post-transformed); with two classes [-s, s].
    With ``prob_a`` and ``prob_b`` they are the [N, k] probability estimates (post-transformed).
    """
    post_transform = post_transform or "NONE"
    counts = [int(c) for c in vectors_per_class or []]
    if not sum(counts):
        raise NotImplementedError("SVMClassifier without support vectors (a linear SVM); skl2onnx exports "
                                  "LinearSVC as LinearClassifier")
    x = _rows(x)
    n_classes = max(len(classlabels_ints or classlabels_strings or []), 1)
    coefs = np.asarray(coefficients, np.float32).reshape(-1, sum(counts))
    vectors = np.asarray(support_vectors, np.float32).reshape(sum(counts), -1)
    matrix, pairs = _pair_matrix(coefs, counts)
    k = kernel_matrix(x, vectors, kernel_type, kernel_params)
    decision = tf.matmul(k, tf.constant(matrix, x.dtype)) + tf.constant(np.asarray(rho, np.float32), x.dtype)
    winners = np.zeros((len(pairs), n_classes), np.float32)
    losers = np.zeros((len(pairs), n_classes), np.float32)
    for e, (i, j) in enumerate(pairs):
        winners[e, i], losers[e, j] = 1, 1
    positive = tf.cast(decision > 0, x.dtype)
    votes = tf.matmul(positive, tf.constant(winners, x.dtype)) + tf.matmul(1 - positive, tf.constant(losers, x.dtype))
    best = tf.argmax(votes, -1)
    if prob_a is not None and len(prob_a) and prob_b is not None:
        probabilities = _couple(_pairwise(decision, pairs, n_classes, prob_a, prob_b), n_classes)
        scores = apply_post_transform(probabilities, post_transform)
    elif len(pairs) == 1:
        scores = _binary_scores(decision, post_transform)
        if np.min(coefficients) >= 0:  # onnx's reference: all-positive weights always pick the second label
            best = tf.ones_like(best)
    else:
        scores = apply_post_transform(decision, post_transform)
    return class_labels(best, classlabels_ints, classlabels_strings), tf.cast(scores, tf.float32)
