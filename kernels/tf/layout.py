"""Channels-last rules for the TensorFlow walk: which ops consume and produce NHWC tensors.

A value produced by a convolution is held channels-last (``N, *spatial, C``) and
stays so through every op below that can work on it in that layout; the walk
transposes it back only when an op needs ONNX's layout (``Flatten``,
``Reshape``, ``Softmax`` over an axis, a graph output):

1. Conv, ConvTranspose, MaxPool, AveragePool, LpPool, LRN: channels-last core,
   filter pre-transposed when the weight is an initializer.
2. BatchNormalization (inference), GlobalAveragePool, GlobalMaxPool: on the
   channel axis moved last.
3. Elementwise ops (unary, binary, variadic, Where, Clip, PRelu): every operand
   is brought to the layout of the permuted ones (channels-last, usually); a constant operand is permuted while tracing
   (numpy), a lower-rank operand is first given the leading unit axes that
   numpy broadcasting implies.
4. Concat with every input in one layout: on the moved axis.
5. Transpose and Reshape of a tensor held in any layout (``kernels.tf.layout_reshape``):
   a channel shuffle stays channels-last.

Each rule returns False to decline, and the walk then runs the ONNX kernel on
ONNX-layout tensors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

import ir
from kernels.tf import layout_reshape, nn, normalization
from kernels.tf._util import static
from kernels.tf.run import Held, Walker

Env = dict[ir.Value, Held]
Rule = Callable[[Walker, ir.Node, Env], bool]

#: Rearrangements of initializer values, by layout name.
PARAM_LAYOUTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "conv_filter": nn.conv_filter,
    "conv_transpose_filter": nn.conv_transpose_filter,
}

#: Inputs read in a special layout when the rules run: op -> {input index: layout}.
PARAM_INPUTS: dict[str, dict[int, str]] = {
    "Conv": {1: "conv_filter"},
    "ConvTranspose": {1: "conv_transpose_filter"},
}


def _rank(w: Walker, env: Env, value: ir.Value) -> int | None:
    return w.held(env, value).tensor.shape.rank


def _input(node: ir.Node, i: int) -> ir.Value | None:
    return node.inputs[i] if len(node.inputs) > i else None


def _weight(w: Walker, env: Env, value: ir.Value, layout: str) -> tf.Tensor:
    if value.is_initializer() and value.const_value is not None:
        return w.param(value, layout)
    return PARAM_LAYOUTS[layout](w.native(env, value))


def _spatial_rule(core: Callable[..., Any], weight_layout: str | None = None) -> Rule:
    """Rule 1: run ``core`` on the channels-last input."""

    def rule(w: Walker, node: ir.Node, env: Env) -> bool:
        r = _rank(w, env, node.inputs[0])
        if r is None or r < 3 or sum(1 for v in node.outputs if v.name) > 1:
            return False
        args = [w.channels_last_of(env, node.inputs[0])]
        if weight_layout is not None:
            args.append(_weight(w, env, node.inputs[1], weight_layout))
            args.append(w.native(env, _input(node, 2)))
        w.store(env, node, w.call(node, args, env, fn=core), channels_last=True)
        return True

    return rule


def _global_pool(kind: str) -> Rule:
    """Rule 2: global pools keep their input's layout."""

    def rule(w: Walker, node: ir.Node, env: Env) -> bool:
        held = w.held(env, node.inputs[0])
        if not held.channels_last:
            return False
        w.store(env, node, [nn.global_pool_channels_last(held.tensor, kind)], channels_last=True)
        return True

    return rule


def _batch_norm(w: Walker, node: ir.Node, env: Env) -> bool:
    """Rule 2: inference batch normalization on the last axis."""
    held = w.held(env, node.inputs[0])
    training = node.attributes.get("training_mode")
    if not held.channels_last or (training is not None and training.value) or len(node.outputs) > 1:
        return False
    params = [w.native(env, v) for v in node.inputs[1:5]]
    eps = node.attributes["epsilon"].value if "epsilon" in node.attributes else 1e-5
    y = normalization.batch_norm_on_axis(held.tensor, *params, eps, -1)
    w.store(env, node, [y], channels_last=True)
    return True


def _in_layout(t: Any, perm: tuple[int, ...]) -> Any:
    """A natively held operand of an elementwise op, brought to layout ``perm`` (of rank ``r``)."""
    r = len(perm)
    if t is None or t.shape.rank is None or t.shape.rank > r:
        return None
    k = t.shape.rank
    if k == 0 or all(d == 1 for d in t.shape):
        return t  # broadcasts the same in either layout
    value = static(t)
    if value is not None:
        full = value.reshape((1,) * (r - k) + value.shape)
        return tf.constant(np.transpose(full, perm))
    for _ in range(r - k):
        t = tf.expand_dims(t, 0)
    if t.shape.is_fully_defined() and sum(d != 1 for d in t.shape) <= 1:  # e.g. a [1, C, 1, 1] scale: a free reshape
        return tf.reshape(t, [t.shape[i] for i in perm])
    return tf.transpose(t, list(perm))


def _elementwise(w: Walker, node: ir.Node, env: Env) -> bool:
    """Rule 3: run an elementwise op on operands in the layout of its permuted ones (all the same)."""
    held = [w.held(env, v) if v is not None else None for v in node.inputs]
    perms = {h.perm for h in held if h is not None and h.perm is not None}
    if len(perms) != 1 or len(node.outputs) != 1:
        return False
    perm = perms.pop()
    args = []
    for h in held:
        if h is None or h.perm is not None:
            args.append(None if h is None else h.tensor)
            continue
        t = _in_layout(h.tensor, perm)
        if t is None:
            return False
        args.append(t)
    w.store(env, node, w.call(node, args, env), perm=perm)
    return True


def _concat(w: Walker, node: ir.Node, env: Env) -> bool:
    """Rule 4: Concat of inputs held in one layout (channels-last, usually)."""
    held = [w.held(env, v) for v in node.inputs]
    perms = {h.perm for h in held}
    if not held or len(perms) != 1 or None in perms:
        return False
    perm = perms.pop()
    axis = node.attributes["axis"].value % len(perm)
    y = tf.concat([h.tensor for h in held], perm.index(axis))
    w.store(env, node, [y], perm=perm)
    return True


_ELEMENTWISE_OPS = (
    "Relu LeakyRelu PRelu Elu Selu Celu Sigmoid HardSigmoid HardSwish Tanh Softplus Softsign Mish Gelu "
    "Clip Abs Neg Exp Log Sqrt Reciprocal Erf Floor Ceil Round Sign Identity Cast "
    "Add Sub Mul Div Pow Max Min Sum Mean Where Equal Greater Less GreaterOrEqual LessOrEqual"
).split()

#: The rule for each op that may run channels-last.
LAYOUT_RULES: dict[str, Rule] = {
    "Conv": _spatial_rule(nn.conv_channels_last, "conv_filter"),
    "ConvTranspose": _spatial_rule(nn.conv_transpose_channels_last, "conv_transpose_filter"),
    "MaxPool": _spatial_rule(nn.max_pool_channels_last),
    "AveragePool": _spatial_rule(nn.average_pool_channels_last),
    "LpPool": _spatial_rule(nn.lp_pool_channels_last),
    "LRN": _spatial_rule(nn.lrn_channels_last),
    "GlobalAveragePool": _global_pool("avg"),
    "GlobalMaxPool": _global_pool("max"),
    "BatchNormalization": _batch_norm,
    "Concat": _concat,
    "Transpose": layout_reshape.transpose,
    "Reshape": layout_reshape.reshape,
    **{op: _elementwise for op in _ELEMENTWISE_OPS},
}
