"""Recurrent ops: RNN, GRU and LSTM (opset 7+, ``layout`` from opset 14).

One ``tf.while_loop`` over time per direction (so the sequence length may be
dynamic), its outputs collected as ``kernels.tf.accumulate`` describes. The input projection ``X @ W^T + Wb`` is computed for every step at
once; each step adds ``H @ R^T + Rb`` and applies the cell. With
``sequence_lens``, steps past a batch entry's length keep its state and output
zeros, and the reverse direction reverses only the valid part of each sequence
(``tf.reverse_sequence``). Gate orders are ONNX's: GRU ``z r h``, LSTM ``i o f c``
(peepholes ``i o f``).
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from kernels.tf import TF
from kernels.tf.accumulate import accumulator, append, invariant, stacked

Activation = Callable[[tf.Tensor], tf.Tensor]


def _activation(name: str, alpha: float | None, beta: float | None) -> Activation:
    """An ONNX RNN activation by name, with its optional alpha / beta."""
    fns: dict[str, Activation] = {
        "relu": tf.nn.relu,
        "tanh": tf.tanh,
        "sigmoid": tf.sigmoid,
        "softsign": tf.nn.softsign,
        "softplus": tf.nn.softplus,
        "affine": lambda x: x * (1.0 if alpha is None else alpha) + (0.0 if beta is None else beta),
        "leakyrelu": lambda x: tf.where(x >= 0, x, x * (0.01 if alpha is None else alpha)),
        "thresholdedrelu": lambda x: tf.where(x > (1.0 if alpha is None else alpha), x, tf.zeros_like(x)),
        "scaledtanh": lambda x: (1.0 if alpha is None else alpha) * tf.tanh(x * (1.0 if beta is None else beta)),
        "hardsigmoid": lambda x: tf.clip_by_value(x * (0.2 if alpha is None else alpha)
                                                  + (0.5 if beta is None else beta), 0.0, 1.0),
        "elu": lambda x: tf.where(x >= 0, x, (1.0 if alpha is None else alpha) * (tf.exp(x) - 1)),
    }
    try:
        return fns[name.lower()]
    except KeyError:
        raise NotImplementedError(f"recurrent activation {name!r}") from None


def _activations(names, alphas, betas, defaults: list[str], directions: int) -> list[list[Activation]]:
    """Per direction, the cell's activations (the attribute lists hold all directions in order)."""
    names = list(names) if names else defaults * directions
    per = len(defaults)
    out = []
    for d in range(directions):
        fns = []
        for j in range(per):
            i = d * per + j
            alpha = alphas[i] if alphas and i < len(alphas) else None
            beta = betas[i] if betas and i < len(betas) else None
            fns.append(_activation(names[i], alpha, beta))
        out.append(fns)
    return out


def _clip(x: tf.Tensor, clip: float | None) -> tf.Tensor:
    return x if clip is None else tf.clip_by_value(x, -clip, clip)


def _run_direction(xw: tf.Tensor, states: tuple, step: Callable, lens, reverse: bool) -> tuple[tf.Tensor, tuple]:
    """Loop ``step(xw_t, states) -> (h, states)`` over time; (outputs [S, B, H], final states)."""
    if reverse:
        xw = tf.reverse(xw, [0]) if lens is None else tf.reverse_sequence(xw, lens, seq_axis=0, batch_axis=1)
    steps = tf.shape(xw)[0]

    def body(t, ys, *old):
        h, new = step(xw[t], old)
        if lens is not None:  # masked steps keep the state and output zeros
            live = (t < lens)[:, None]
            new = tuple(tf.where(live, n, o) for n, o in zip(new, old, strict=True))
            h = tf.where(live, h, tf.zeros_like(h))
        return (t + 1, append(ys, t, h), *new)

    ys = accumulator(xw.dtype, tf.TensorShape([xw.shape[1], states[0].shape[-1]]))
    start = (tf.constant(0), ys, *states)
    shapes = (tf.TensorShape([]), invariant(ys), *(tf.TensorShape([None] * s.shape.rank) for s in states))
    _, ys, *finals = tf.while_loop(lambda t, *_: t < steps, body, start, shape_invariants=shapes)
    ys = stacked(ys)
    if reverse:
        ys = tf.reverse(ys, [0]) if lens is None else tf.reverse_sequence(ys, lens, seq_axis=0, batch_axis=1)
    return ys, tuple(finals)


def _recurrent(cell: Callable, gates: int, x, w, r, b, lens, initial: list, *, direction: str, layout: int,
               hidden_size: int | None, **cell_args) -> tuple[tf.Tensor, list[tf.Tensor]]:
    """Run ``cell`` in every direction: (Y [S, D, B, H], final states each [D, B, H]), ONNX layouts."""
    if layout:
        x = tf.transpose(x, [1, 0, 2])
        initial = [None if s is None else tf.transpose(s, [1, 0, 2]) for s in initial]
    hidden = hidden_size or r.shape[-1]
    directions = 2 if direction == "bidirectional" else 1
    lens = None if lens is None else tf.cast(lens, tf.int32)
    batch = tf.shape(x)[1]
    ys, finals = [], []
    for d in range(directions):
        xw = tf.einsum("sbi,gi->sbg", x, w[d])
        if b is not None:
            xw = xw + b[d, : gates * hidden]
        rb = b[d, gates * hidden:] if b is not None else tf.zeros([gates * hidden], x.dtype)
        start = tuple(tf.zeros(tf.stack([batch, hidden]), x.dtype) if s is None else s[d] for s in initial)
        step = cell(r[d], rb, hidden, d, **cell_args)
        y, final = _run_direction(xw, start, step, lens, reverse=direction == "reverse" or d == 1)
        ys.append(y)
        finals.append(final)
    y = tf.stack(ys, 1)
    states = [tf.stack([f[i] for f in finals], 0) for i in range(len(initial))]
    if layout:
        y = tf.transpose(y, [2, 0, 1, 3])
        states = [tf.transpose(s, [1, 0, 2]) for s in states]
    return y, states


def _rnn_cell(r, rb, hidden, d, *, acts, clip):
    (f,) = acts[d]

    def step(xw_t, states):
        (h,) = states
        h = f(_clip(xw_t + tf.matmul(h, r, transpose_b=True) + rb, clip))
        return h, (h,)

    return step


def _gru_cell(r, rb, hidden, d, *, acts, clip, linear_before_reset):
    f, g = acts[d]
    r_zr, r_h = r[: 2 * hidden], r[2 * hidden:]
    rb_zr, rb_h = rb[: 2 * hidden], rb[2 * hidden:]

    def step(xw_t, states):
        (h,) = states
        zr = f(_clip(xw_t[:, : 2 * hidden] + tf.matmul(h, r_zr, transpose_b=True) + rb_zr, clip))
        z, reset = zr[:, :hidden], zr[:, hidden:]
        if linear_before_reset:
            recur = reset * (tf.matmul(h, r_h, transpose_b=True) + rb_h)
        else:
            recur = tf.matmul(reset * h, r_h, transpose_b=True) + rb_h
        candidate = g(_clip(xw_t[:, 2 * hidden:] + recur, clip))
        h = (1 - z) * candidate + z * h
        return h, (h,)

    return step


def _lstm_cell(r, rb, hidden, d, *, acts, clip, peepholes):
    f, g, act_h = acts[d]
    p = None if peepholes is None else peepholes[d]

    def step(xw_t, states):
        h, c = states
        gates = xw_t + tf.matmul(h, r, transpose_b=True) + rb
        i, o, fg, cand = (gates[:, k * hidden:(k + 1) * hidden] for k in range(4))
        if p is not None:
            i, fg = i + p[:hidden] * c, fg + p[2 * hidden:] * c
        i, fg = f(_clip(i, clip)), f(_clip(fg, clip))
        c = fg * c + i * g(_clip(cand, clip))
        if p is not None:
            o = o + p[hidden: 2 * hidden] * c
        h = f(_clip(o, clip)) * act_h(c)
        return h, (h, c)

    return step


def _directions(direction: str) -> int:
    return 2 if direction == "bidirectional" else 1


@TF.register("RNN", since=7)
def rnn(x, w, r, b=None, sequence_lens=None, initial_h=None, *, activation_alpha=None, activation_beta=None,
        activations=None, clip=None, direction: str = "forward", hidden_size=None, layout: int = 0,
        num_outputs: int = 1):
    acts = _activations(activations, activation_alpha, activation_beta, ["Tanh"], _directions(direction))
    y, (y_h,) = _recurrent(_rnn_cell, 1, x, w, r, b, sequence_lens, [initial_h], direction=direction,
                           layout=layout, hidden_size=hidden_size, acts=acts, clip=clip)
    return (y, y_h)[:max(1, num_outputs)]


@TF.register("GRU", since=7)
def gru(x, w, r, b=None, sequence_lens=None, initial_h=None, *, activation_alpha=None, activation_beta=None,
        activations=None, clip=None, direction: str = "forward", hidden_size=None, layout: int = 0,
        linear_before_reset: int = 0, num_outputs: int = 1):
    acts = _activations(activations, activation_alpha, activation_beta, ["Sigmoid", "Tanh"], _directions(direction))
    y, (y_h,) = _recurrent(_gru_cell, 3, x, w, r, b, sequence_lens, [initial_h], direction=direction,
                           layout=layout, hidden_size=hidden_size, acts=acts, clip=clip,
                           linear_before_reset=linear_before_reset)
    return (y, y_h)[:max(1, num_outputs)]


@TF.register("LSTM", since=7)
def lstm(x, w, r, b=None, sequence_lens=None, initial_h=None, initial_c=None, p=None, *, activation_alpha=None,
         activation_beta=None, activations=None, clip=None, direction: str = "forward", hidden_size=None,
         input_forget: int = 0, layout: int = 0, num_outputs: int = 1):
    if input_forget:
        raise NotImplementedError("LSTM input_forget=1 is not implemented")
    acts = _activations(activations, activation_alpha, activation_beta, ["Sigmoid", "Tanh", "Tanh"],
                        _directions(direction))
    y, (y_h, y_c) = _recurrent(_lstm_cell, 4, x, w, r, b, sequence_lens, [initial_h, initial_c],
                               direction=direction, layout=layout, hidden_size=hidden_size, acts=acts, clip=clip,
                               peepholes=p)
    return (y, y_h, y_c)[:max(1, num_outputs)]
