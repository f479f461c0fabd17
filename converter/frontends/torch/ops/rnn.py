"""LSTM and GRU (``aten::lstm.input`` / ``aten::gru.input``, kept undecomposed) -> ONNX LSTM / GRU.

One ONNX node per layer (both directions in one node). torch stacks gates as
(i, f, g, o) for LSTM and (r, z, n) for GRU; ONNX wants (i, o, f, c) and
(z, r, h), so weights are re-ordered with ``Split``/``Concat`` in the graph
(constant folding turns that into fresh initializers). torch's GRU applies the
reset gate after the recurrent matmul: ONNX's ``linear_before_reset=1``.
Layer outputs ``[seq, dirs, batch, hidden]`` become the next layer's
``[seq, batch, dirs*hidden]``.
"""

from __future__ import annotations

from typing import Any

import ir
from converter.frontends.torch.emit import Emitter
from converter.frontends.torch.ops import ATEN

_LSTM_ORDER = (0, 3, 1, 2)  # torch (i, f, g, o) -> ONNX (i, o, f, c)
_GRU_ORDER = (1, 0, 2)  # torch (r, z, n) -> ONNX (z, r, h)


def _reorder(e: Emitter, w: ir.Value, order: tuple[int, ...]) -> ir.Value:
    gates = e.op("Split", w, axis=0, num_outputs=len(order), outputs=len(order))
    return e.op("Concat", *[gates[i] for i in order], axis=0)


def _stack_dirs(e: Emitter, per_dir: list[ir.Value]) -> ir.Value:
    axis = e.ints([0])
    return e.op("Concat", *[e.op("Unsqueeze", w, axis) for w in per_dir], axis=0)


def _layer_weights(e: Emitter, params: list[ir.Value], layer: int, dirs: int, has_biases: bool, order: tuple[int, ...]):
    per = 4 if has_biases else 2
    ws, rs, bs = [], [], []
    for d in range(dirs):
        p = params[(layer * dirs + d) * per : (layer * dirs + d + 1) * per]
        ws.append(_reorder(e, p[0], order))
        rs.append(_reorder(e, p[1], order))
        if has_biases:
            bs.append(e.op("Concat", _reorder(e, p[2], order), _reorder(e, p[3], order), axis=0))
    return _stack_dirs(e, ws), _stack_dirs(e, rs), _stack_dirs(e, bs) if has_biases else None


def _run(
    e: Emitter, onnx_op: str, x: ir.Value, states: list[ir.Value], params: list[ir.Value], has_biases: bool,
    num_layers: int, bidirectional: bool, batch_first: bool, order: tuple[int, ...], **attrs: Any,
) -> tuple[ir.Value, list[list[ir.Value]]]:
    dirs = 2 if bidirectional else 1
    hidden = states[0].shape[-1]
    if batch_first:
        x = e.op("Transpose", x, perm=[1, 0, 2])
    finals: list[list[ir.Value]] = [[] for _ in states]
    for layer in range(num_layers):
        w, r, b = _layer_weights(e, params, layer, dirs, has_biases, order)
        initial = [e.op("Slice", s, e.ints([layer * dirs]), e.ints([(layer + 1) * dirs]), e.ints([0])) for s in states]
        outs = e.op(
            onnx_op, x, w, r, b, None, *initial, outputs=1 + len(states), hidden_size=hidden,
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
def lstm(
    e: Emitter, x: ir.Value, hx: list[ir.Value], params: list[ir.Value], has_biases: bool, num_layers: int,
    dropout: float, train: bool, bidirectional: bool, batch_first: bool,
) -> tuple[ir.Value, ir.Value, ir.Value]:
    if len(params) != num_layers * (2 if bidirectional else 1) * (4 if has_biases else 2):
        raise NotImplementedError("LSTM with proj_size")
    y, (h, c) = _run(e, "LSTM", x, list(hx), list(params), has_biases, num_layers, bidirectional, batch_first, _LSTM_ORDER)
    return y, _concat(e, h), _concat(e, c)


@ATEN.register("aten::gru.input")
def gru(
    e: Emitter, x: ir.Value, hx: ir.Value, params: list[ir.Value], has_biases: bool, num_layers: int,
    dropout: float, train: bool, bidirectional: bool, batch_first: bool,
) -> tuple[ir.Value, ir.Value]:
    y, (h,) = _run(
        e, "GRU", x, [hx], list(params), has_biases, num_layers, bidirectional, batch_first, _GRU_ORDER,
        linear_before_reset=1,
    )
    return y, _concat(e, h)
