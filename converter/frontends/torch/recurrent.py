"""nn.LSTM / nn.GRU / nn.RNN as one custom op each while ``torch.export`` traces.

``aten::lstm`` and friends are composite: their fake-tensor rule runs the
decomposition, which unrolls over time steps and fixes the sequence length to
the example's (torch.export then rejects a dynamic ``seq``). During an export,
:func:`routed_recurrent` points every plain recurrent submodule's ``forward`` at
a custom op (``crossgraph::lstm``, ``crossgraph::gru``, ``crossgraph::rnn``)
whose fake rule gives symbolic output shapes, so the program keeps one node per
module with any sequence length; the torch front end translates it into ONNX
LSTM / GRU / RNN (:mod:`converter.frontends.torch.ops.rnn`).

The ops take ATen's arguments (``hx`` may be empty: zero initial states) and
their eager kernels call ATen, so a program holding them still runs. A program
saved with them needs this module imported to load.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

_MODES = {nn.LSTM: "LSTM", nn.GRU: "GRU", nn.RNN: "RNN"}


# ---- the custom ops --------------------------------------------------------------


def _zeros(x: Tensor, num_layers: int, bidirectional: bool, batch_first: bool, hidden: int) -> Tensor:
    batch = x.shape[0] if batch_first else x.shape[1]
    return x.new_zeros(num_layers * (2 if bidirectional else 1), batch, hidden)


def _fake_outputs(
    x: Tensor, params: list[Tensor], num_layers: int, bidirectional: bool, batch_first: bool, gates: int,
) -> tuple[Tensor, Tensor, Tensor]:
    """Empty outputs ``y``, ``h``, ``c`` with the shapes the layers give (``c`` only for LSTM)."""
    out_hidden = params[1].shape[1]  # w_hh: [gates * hidden, hidden or proj_size]
    cell_hidden = params[1].shape[0] // gates
    dirs = 2 if bidirectional else 1
    seq, batch = (x.shape[1], x.shape[0]) if batch_first else (x.shape[0], x.shape[1])
    y_shape = (batch, seq, dirs * out_hidden) if batch_first else (seq, batch, dirs * out_hidden)
    states = num_layers * dirs
    return x.new_empty(y_shape), x.new_empty((states, batch, out_hidden)), x.new_empty((states, batch, cell_hidden))


@torch.library.custom_op("crossgraph::lstm", mutates_args=())
def lstm(
    x: Tensor, hx: list[Tensor], params: list[Tensor], has_biases: bool, num_layers: int, dropout: float,
    train: bool, bidirectional: bool, batch_first: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """``aten::lstm.input`` with ``hx`` optional (empty: zeros)."""
    if not hx:
        cell_hidden = params[1].shape[0] // 4
        hx = [_zeros(x, num_layers, bidirectional, batch_first, params[1].shape[1]),
              _zeros(x, num_layers, bidirectional, batch_first, cell_hidden)]
    y, h, c = torch.lstm(x, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first)
    return y, h, c


@lstm.register_fake
def _lstm_fake(
    x: Tensor, hx: list[Tensor], params: list[Tensor], has_biases: bool, num_layers: int, dropout: float,
    train: bool, bidirectional: bool, batch_first: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    return _fake_outputs(x, params, num_layers, bidirectional, batch_first, 4)


@torch.library.custom_op("crossgraph::gru", mutates_args=())
def gru(
    x: Tensor, hx: list[Tensor], params: list[Tensor], has_biases: bool, num_layers: int, dropout: float,
    train: bool, bidirectional: bool, batch_first: bool,
) -> tuple[Tensor, Tensor]:
    """``aten::gru.input`` with ``hx`` a list of zero or one tensor."""
    h0 = hx[0] if hx else _zeros(x, num_layers, bidirectional, batch_first, params[1].shape[1])
    y, h = torch.gru(x, h0, params, has_biases, num_layers, dropout, train, bidirectional, batch_first)
    return y, h


@gru.register_fake
def _gru_fake(
    x: Tensor, hx: list[Tensor], params: list[Tensor], has_biases: bool, num_layers: int, dropout: float,
    train: bool, bidirectional: bool, batch_first: bool,
) -> tuple[Tensor, Tensor]:
    return _fake_outputs(x, params, num_layers, bidirectional, batch_first, 3)[:2]


@torch.library.custom_op("crossgraph::rnn", mutates_args=())
def rnn(
    x: Tensor, hx: list[Tensor], params: list[Tensor], has_biases: bool, num_layers: int, dropout: float,
    train: bool, bidirectional: bool, batch_first: bool, nonlinearity: str,
) -> tuple[Tensor, Tensor]:
    """``aten::rnn_tanh.input`` or ``aten::rnn_relu.input`` (``nonlinearity``), ``hx`` optional."""
    h0 = hx[0] if hx else _zeros(x, num_layers, bidirectional, batch_first, params[1].shape[1])
    run = torch.rnn_relu if nonlinearity == "relu" else torch.rnn_tanh
    y, h = run(x, h0, params, has_biases, num_layers, dropout, train, bidirectional, batch_first)
    return y, h


@rnn.register_fake
def _rnn_fake(
    x: Tensor, hx: list[Tensor], params: list[Tensor], has_biases: bool, num_layers: int, dropout: float,
    train: bool, bidirectional: bool, batch_first: bool, nonlinearity: str,
) -> tuple[Tensor, Tensor]:
    return _fake_outputs(x, params, num_layers, bidirectional, batch_first, 1)[:2]


# ---- routing modules through them -----------------------------------------------


@contextlib.contextmanager
def routed_recurrent(module: nn.Module) -> Iterator[int]:
    """Within the block, plain LSTM / GRU / RNN submodules of ``module`` call the custom ops.

    "Plain" means the class's ``forward`` is torch's own (a subclass overriding it
    is left alone). Only an instance attribute ``forward`` is added, and removed
    (or the previous one put back) on exit, whatever happens inside: parameters,
    buffers, types and hooks are never touched. Yields how many were routed.
    """
    saved: list[tuple[nn.Module, Any]] = []
    with warnings.catch_warnings():
        # torch.export notices that recurrent modules refresh their weight list
        # (``_flat_weights``) while tracing: harmless here, and noise to the user.
        warnings.filterwarnings("ignore", message=r"The tensor attributes .*_flat_weights")
        try:
            for sub in module.modules():
                mode = _plain_mode(sub)
                if mode is not None:
                    saved.append((sub, sub.__dict__.get("forward", _ABSENT)))
                    sub.forward = _routed_forward(sub, type(sub).forward, mode)
            yield len(saved)
        finally:
            for sub, previous in reversed(saved):
                if previous is _ABSENT:
                    sub.__dict__.pop("forward", None)
                else:
                    sub.forward = previous


_ABSENT = object()


def _plain_mode(module: nn.Module) -> str | None:
    for cls, mode in _MODES.items():
        if isinstance(module, cls) and type(module).forward is cls.forward:
            return mode
    return None


def _routed_forward(module: nn.RNNBase, original: Any, mode: str) -> Any:
    """A ``forward(input, hx=None)`` for ``module`` that calls the custom op of ``mode``."""

    def forward(input: Any, hx: Any = None) -> Any:  # noqa: A002  (nn.RNNBase's argument name)
        if isinstance(input, PackedSequence):
            return original(module, input, hx)
        return _call(module, mode, input, hx)

    return forward


def _call(module: nn.RNNBase, mode: str, x: Tensor, hx: Any) -> Any:
    if x.dim() not in (2, 3):
        raise ValueError(f"{mode}: expected a 2-D or 3-D input, got {x.dim()}-D")
    batched = x.dim() == 3
    if not batched:
        x = x.unsqueeze(0 if module.batch_first else 1)
    states = [] if hx is None else list(hx) if mode == "LSTM" else [hx]
    if not batched:
        states = [s.unsqueeze(1) for s in states]
    if states:
        module.check_forward_args(x, tuple(states) if mode == "LSTM" else states[0], None)
    params = [getattr(module, name) for name in module._flat_weights_names]
    args = (x, states, params, module.bias, module.num_layers, float(module.dropout), module.training,
            module.bidirectional, module.batch_first)
    if mode == "LSTM":
        y, h, c = torch.ops.crossgraph.lstm(*args)
        finals = (h, c)
    elif mode == "GRU":
        y, h = torch.ops.crossgraph.gru(*args)
        finals = (h,)
    else:
        y, h = torch.ops.crossgraph.rnn(*args, module.nonlinearity)
        finals = (h,)
    if not batched:
        y = y.squeeze(0 if module.batch_first else 1)
        finals = tuple(f.squeeze(1) for f in finals)
    return (y, finals) if mode == "LSTM" else (y, finals[0])
