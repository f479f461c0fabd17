"""LSTM, GRU and RNN -> ONNX LSTM / GRU / RNN.

Two sources: ATen's ``aten::lstm.input`` / ``gru.input`` / ``rnn_tanh.input`` /
``rnn_relu.input`` (kept undecomposed; torch.export keeps them only at a static
length, e.g. in a ``.pt2`` saved by the user), and the custom ops
``crossgraph::lstm`` / ``gru`` / ``rnn`` that the export routes modules through
(:mod:`converter.frontends.torch.recurrent`; the sequence length stays dynamic).
Both take ATen's arguments; the custom ops' ``hx`` may be empty (zero initial
states: the ONNX inputs are omitted).

One ONNX node per layer (both directions in one node). torch stacks gates as
(i, f, g, o) for LSTM and (r, z, n) for GRU; ONNX wants (i, o, f, c) and
(z, r, h): weights are repacked into new initializers (or, when computed in the
graph, re-ordered with ``Split``/``Concat``). torch's GRU applies the
reset gate after the recurrent matmul: ONNX's ``linear_before_reset=1``.
Layer outputs ``[seq, dirs, batch, hidden]`` become the next layer's
``[seq, batch, dirs*hidden]``. ``dropout`` is ignored (export runs in eval mode).
"""

from __future__ import annotations

from typing import Any

import numpy as np

import ir
from converter.errors import NotYetSupportedError
from converter.frontends.torch.emit import Emitter
from converter.frontends.torch.ops import ATEN

_LSTM_ORDER = (0, 3, 1, 2)  # torch (i, f, g, o) -> ONNX (i, o, f, c)
_GRU_ORDER = (1, 0, 2)  # torch (r, z, n) -> ONNX (z, r, h)
_RNN_ORDER = (0,)


def _reorder(e: Emitter, w: ir.Value, order: tuple[int, ...]) -> ir.Value:
    if len(order) == 1:
        return w
    gates = e.op("Split", w, axis=0, num_outputs=len(order), outputs=len(order))
    return e.op("Concat", *[gates[i] for i in order], axis=0)


def _stack_dirs(e: Emitter, per_dir: list[ir.Value]) -> ir.Value:
    axis = e.ints([0])
    unsqueezed = [e.op("Unsqueeze", w, axis) for w in per_dir]
    return unsqueezed[0] if len(unsqueezed) == 1 else e.op("Concat", *unsqueezed, axis=0)


def _layer_weights(e: Emitter, params: list[ir.Value], layer: int, dirs: int, has_biases: bool, order: tuple[int, ...]):
    """ONNX ``W``, ``R``, ``B`` (``[dirs, gates*hidden, ...]``) of one layer, gates in ONNX order.

    Weights that are initializers are repacked here into new initializers; others
    (computed in the graph) through ``Split``/``Concat``/``Unsqueeze`` nodes.
    """
    per = 4 if has_biases else 2
    groups = [params[(layer * dirs + d) * per : (layer * dirs + d + 1) * per] for d in range(dirs)]
    arrays = [[_constant(v) for v in group] for group in groups]
    if all(a is not None for group in arrays for a in group):
        e.translator.superseded.extend(v for group in groups for v in group)
        return _packed_initializers(e, arrays, has_biases, order)
    ws, rs, bs = [], [], []
    for p in groups:
        ws.append(_reorder(e, p[0], order))
        rs.append(_reorder(e, p[1], order))
        if has_biases:
            bs.append(e.op("Concat", _reorder(e, p[2], order), _reorder(e, p[3], order), axis=0))
    return _stack_dirs(e, ws), _stack_dirs(e, rs), _stack_dirs(e, bs) if has_biases else None


def _constant(value: ir.Value) -> np.ndarray | None:
    return value.const_value.numpy() if value.is_initializer() and value.const_value is not None else None


def _packed_initializers(
    e: Emitter, arrays: list[list[np.ndarray]], has_biases: bool, order: tuple[int, ...],
) -> tuple[ir.Value, ir.Value, ir.Value | None]:
    def reorder(a: np.ndarray) -> np.ndarray:
        gates = np.split(a, len(order))
        return np.concatenate([gates[i] for i in order])

    w = np.stack([reorder(p[0]) for p in arrays])
    r = np.stack([reorder(p[1]) for p in arrays])
    b = np.stack([np.concatenate([reorder(p[2]), reorder(p[3])]) for p in arrays]) if has_biases else None
    return _initializer(e, "W", w), _initializer(e, "R", r), None if b is None else _initializer(e, "B", b)


def _initializer(e: Emitter, suffix: str, array: np.ndarray) -> ir.Value:
    base = e.node.name if e.node is not None else "rnn"
    value = ir.Value(
        name=e.translator.fresh(f"{base}_{suffix}"), type=ir.TensorType(ir.DataType.from_numpy(array.dtype)),
        shape=ir.Shape(array.shape), const_value=ir.tensor(array),
    )
    e.translator.main_graph.register_initializer(value)
    return value


def _check_params(e: Emitter, kind: str, params: list[Any], num_layers: int, bidirectional: bool, has_biases: bool) -> None:
    per = 4 if has_biases else 2
    if len(params) == num_layers * (2 if bidirectional else 1) * (per + 1):
        raise NotYetSupportedError(
            f"{kind} with proj_size ({e.source or 'the model'}): ONNX LSTM has no output projection",
            "use proj_size=0, or a Linear after each step outside the LSTM",
        )
    if len(params) != num_layers * (2 if bidirectional else 1) * per:
        raise NotYetSupportedError(f"{kind} with {len(params)} weight tensors for {num_layers} layer(s) ({e.source or 'the model'})")


def _run(
    e: Emitter, onnx_op: str, x: ir.Value, states: list[ir.Value], params: list[ir.Value], has_biases: bool,
    num_layers: int, bidirectional: bool, batch_first: bool, order: tuple[int, ...], num_states: int, **attrs: Any,
) -> tuple[ir.Value, list[list[ir.Value]]]:
    """The stacked layers; returns the output and, per state, each layer's final value."""
    dirs = 2 if bidirectional else 1
    hidden = params[1].shape[-1]  # w_hh: [gates * hidden, hidden]
    if batch_first:
        x = e.op("Transpose", x, perm=[1, 0, 2])
    finals: list[list[ir.Value]] = [[] for _ in range(num_states)]
    for layer in range(num_layers):
        w, r, b = _layer_weights(e, params, layer, dirs, has_biases, order)
        bounds = (e.ints([layer * dirs]), e.ints([(layer + 1) * dirs]), e.ints([0]))
        initial = [e.op("Slice", s, *bounds) for s in states]
        inputs = [x, w, r, b, None, *initial]
        while inputs[-1] is None:
            inputs.pop()
        outs = e.op(
            onnx_op, *inputs, outputs=1 + num_states, hidden_size=hidden,
            direction="bidirectional" if bidirectional else "forward", **attrs,
        )
        y = e.op("Transpose", outs[0], perm=[0, 2, 1, 3])  # [seq, batch, dirs, hidden]
        x = e.op("Reshape", y, e.ints([0, 0, -1]))
        for i, final in enumerate(outs[1:]):
            finals[i].append(final)
    if batch_first:
        x = e.op("Transpose", x, perm=[1, 0, 2])
    return x, finals


def _concat(e: Emitter, values: list[ir.Value]) -> ir.Value:
    return values[0] if len(values) == 1 else e.op("Concat", *values, axis=0)


@ATEN.register("aten::lstm.input")
@ATEN.register("crossgraph::lstm")
def lstm(
    e: Emitter, x: ir.Value, hx: list[ir.Value], params: list[ir.Value], has_biases: bool, num_layers: int,
    dropout: float, train: bool, bidirectional: bool, batch_first: bool,
) -> tuple[ir.Value, ir.Value, ir.Value]:
    _check_params(e, "LSTM", params, num_layers, bidirectional, has_biases)
    y, (h, c) = _run(
        e, "LSTM", x, list(hx), list(params), has_biases, num_layers, bidirectional, batch_first, _LSTM_ORDER, 2,
    )
    return y, _concat(e, h), _concat(e, c)


@ATEN.register("aten::gru.input")
def gru(
    e: Emitter, x: ir.Value, hx: ir.Value, params: list[ir.Value], has_biases: bool, num_layers: int,
    dropout: float, train: bool, bidirectional: bool, batch_first: bool,
) -> tuple[ir.Value, ir.Value]:
    return _gru(e, x, [hx], params, has_biases, num_layers, bidirectional, batch_first)


@ATEN.register("crossgraph::gru")
def gru_routed(
    e: Emitter, x: ir.Value, hx: list[ir.Value], params: list[ir.Value], has_biases: bool, num_layers: int,
    dropout: float, train: bool, bidirectional: bool, batch_first: bool,
) -> tuple[ir.Value, ir.Value]:
    return _gru(e, x, list(hx), params, has_biases, num_layers, bidirectional, batch_first)


def _gru(
    e: Emitter, x: ir.Value, hx: list[ir.Value], params: list[ir.Value], has_biases: bool, num_layers: int,
    bidirectional: bool, batch_first: bool,
) -> tuple[ir.Value, ir.Value]:
    _check_params(e, "GRU", params, num_layers, bidirectional, has_biases)
    y, (h,) = _run(
        e, "GRU", x, hx, list(params), has_biases, num_layers, bidirectional, batch_first, _GRU_ORDER, 1,
        linear_before_reset=1,
    )
    return y, _concat(e, h)


@ATEN.register("crossgraph::rnn")
def rnn(
    e: Emitter, x: ir.Value, hx: list[ir.Value], params: list[ir.Value], has_biases: bool, num_layers: int,
    dropout: float, train: bool, bidirectional: bool, batch_first: bool, nonlinearity: str,
) -> tuple[ir.Value, ir.Value]:
    return _rnn(e, x, list(hx), params, has_biases, num_layers, bidirectional, batch_first, nonlinearity)


@ATEN.register("aten::rnn_tanh.input")
def rnn_tanh(
    e: Emitter, x: ir.Value, hx: ir.Value, params: list[ir.Value], has_biases: bool, num_layers: int,
    dropout: float, train: bool, bidirectional: bool, batch_first: bool,
) -> tuple[ir.Value, ir.Value]:
    return _rnn(e, x, [hx], params, has_biases, num_layers, bidirectional, batch_first, "tanh")


@ATEN.register("aten::rnn_relu.input")
def rnn_relu(
    e: Emitter, x: ir.Value, hx: ir.Value, params: list[ir.Value], has_biases: bool, num_layers: int,
    dropout: float, train: bool, bidirectional: bool, batch_first: bool,
) -> tuple[ir.Value, ir.Value]:
    return _rnn(e, x, [hx], params, has_biases, num_layers, bidirectional, batch_first, "relu")


def _rnn(
    e: Emitter, x: ir.Value, hx: list[ir.Value], params: list[ir.Value], has_biases: bool, num_layers: int,
    bidirectional: bool, batch_first: bool, nonlinearity: str,
) -> tuple[ir.Value, ir.Value]:
    _check_params(e, "RNN", params, num_layers, bidirectional, has_biases)
    activation = "Relu" if nonlinearity == "relu" else "Tanh"
    y, (h,) = _run(
        e, "RNN", x, hx, list(params), has_biases, num_layers, bidirectional, batch_first, _RNN_ORDER, 1,
        activations=[activation] * (2 if bidirectional else 1),
    )
    return y, _concat(e, h)
