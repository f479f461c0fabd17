"""Matrix products: MatMul, Gemm, Einsum."""

from __future__ import annotations

import tensorflow as tf

from kernels.tf import TF
from kernels.tf._util import rank


@TF.register("MatMul")
def matmul(a, b):
    # numpy semantics: a 1-D operand gains a unit axis that the result drops.
    if rank(a) == 1 and rank(b) == 1:
        return tf.reduce_sum(a * b)
    if rank(a) == 1:
        return tf.squeeze(tf.matmul(a[tf.newaxis, :], b), -2)
    if rank(b) == 1:
        return tf.squeeze(tf.matmul(a, b[:, tf.newaxis]), -1)
    return tf.matmul(a, b)


@TF.register("Gemm")
def gemm(a, b, c=None, alpha: float = 1.0, beta: float = 1.0, transA: int = 0, transB: int = 0):  # noqa: N803
    y = tf.matmul(a, b, transpose_a=bool(transA), transpose_b=bool(transB))
    if alpha != 1.0:
        y = y * tf.cast(alpha, y.dtype)
    if c is not None:
        if c.shape.rank == 2 and c.shape[0] == 1:  # [1, N] broadcasts as [N]; TensorFlow fuses a 1-D bias only
            c = tf.reshape(c, [-1])
        y = y + (c * tf.cast(beta, c.dtype) if beta != 1.0 else c)
    return y


@TF.register("Einsum", since=12)
def einsum(inputs, equation: str):
    return tf.einsum(equation.replace(" ", ""), *inputs)
