"""Recurrent ops: RNN, GRU and LSTM (opset 7+ and 14+, all directions and layouts).

Each op runs its cell in a plain loop over time, one loop per direction. ONNX
gate orders are ``i, o, f, c`` (LSTM) and ``z, r, h`` (GRU); ``B`` holds the
input biases then the recurrent ones. With ``sequence_lens`` the steps past a
sequence's length leave its state unchanged and output zeros (a reverse pass
starts at the sequence's own last step). ``layout=1`` puts batch first in
``X``, ``Y`` and the states.
"""

import torch
from torch import Tensor

from kernels.torch import TORCH


def _activation(name: str, x: Tensor, alpha: float | None, beta: float | None) -> Tensor:
    """One of the named activation functions that ONNX recurrent ops accept."""
    n = name.lower()
    if n == "tanh":
        return torch.tanh(x)
    if n == "sigmoid":
        return torch.sigmoid(x)
    if n == "relu":
        return torch.relu(x)
    if n == "leakyrelu":
        a = 0.01 if alpha is None else alpha
        return torch.where(x >= 0, x, x * a)
    if n == "thresholdedrelu":
        a = 1.0 if alpha is None else alpha
        return torch.where(x > a, x, torch.zeros_like(x))
    if n == "scaledtanh":
        return (1.0 if alpha is None else alpha) * torch.tanh(x * (1.0 if beta is None else beta))
    if n == "hardsigmoid":
        a = 0.2 if alpha is None else alpha
        b = 0.5 if beta is None else beta
        return torch.clamp(x * a + b, 0.0, 1.0)
    if n == "elu":
        a = 1.0 if alpha is None else alpha
        return torch.where(x >= 0, x, a * (torch.exp(x) - 1.0))
    if n == "softsign":
        return x / (1.0 + torch.abs(x))
    if n == "softplus":
        return torch.log1p(torch.exp(x))
    if n == "affine":
        return x * (1.0 if alpha is None else alpha) + (0.0 if beta is None else beta)
    raise RuntimeError("unsupported recurrent activation " + name)


class _Acts:
    """The activations of one direction with their alpha/beta (scriptable)."""

    def __init__(
        self, names: list[str], alphas: list[float], betas: list[float], start: int, count: int
    ) -> None:
        self.names = names[start : start + count]
        self.alphas: list[float | None] = []
        self.betas: list[float | None] = []
        for k in range(start, start + count):
            self.alphas.append(alphas[k] if k < len(alphas) else None)
            self.betas.append(betas[k] if k < len(betas) else None)

    def __call__(self, k: int, x: Tensor) -> Tensor:
        return _activation(self.names[k], x, self.alphas[k], self.betas[k])


def _setup(
    X: Tensor,  # noqa: N803
    W: Tensor,  # noqa: N803
    initial: Tensor | None,
    sequence_lens: Tensor | None,
    gates: int,
    layout: int,
) -> tuple[Tensor, Tensor, Tensor]:
    """Time-major ``X``, the initial state ``[dirs, B, H]`` and the lengths ``[B]``.

    ``gates`` is the number of gate blocks stacked in ``W`` (hidden size = rows / gates).
    """
    x = X.transpose(0, 1) if layout == 1 else X
    h = W.shape[1] // gates
    batch = x.shape[1]
    if initial is None:
        state = torch.zeros((W.shape[0], batch, h), dtype=X.dtype, device=X.device)
    else:
        state = initial.transpose(0, 1) if layout == 1 else initial
    if sequence_lens is None:
        lens = torch.full((batch,), x.shape[0], dtype=torch.int64, device=X.device)
    else:
        lens = sequence_lens.to(torch.int64)
    return x, state, lens


def _names(activations: list[str] | None, defaults: list[str], dirs: int) -> list[str]:
    if activations is None or len(activations) == 0:
        out: list[str] = []
        for _ in range(dirs):
            out.extend(defaults)
        return out
    if len(activations) == len(defaults) and dirs == 2:
        return activations + activations
    return activations


def _finish(ys: list[Tensor], states: list[Tensor], layout: int) -> tuple[Tensor, Tensor]:
    """Stack per-direction ``[T, B, H]`` outputs to ``Y`` and final states, in ``layout``."""
    y = torch.stack(ys, 1)  # [T, dirs, B, H]
    last = torch.stack(states, 0)  # [dirs, B, H]
    if layout == 1:
        return y.permute(2, 0, 1, 3), last.transpose(0, 1)
    return y, last


def _floats(values: list[float] | None) -> list[float]:
    out: list[float] = []
    if values is not None:
        out = values
    return out


def _steps(length: int, reverse: bool) -> list[int]:
    return list(range(length - 1, -1, -1)) if reverse else list(range(length))


def _directions(direction: str) -> list[bool]:
    """Whether each direction runs in reverse."""
    if direction == "bidirectional":
        return [False, True]
    return [direction == "reverse"]


def _clip(x: Tensor, clip: float | None) -> Tensor:
    return x if clip is None else torch.clamp(x, -clip, clip)


def _direction_acts(
    activations: list[str] | None,
    defaults: list[str],
    alpha: list[float] | None,
    beta: list[float] | None,
    direction: str,
) -> list[_Acts]:
    """The activations of each direction (forward first), ``len(defaults)`` per direction."""
    count = len(defaults)
    dirs = len(_directions(direction))
    names = _names(activations, defaults, dirs)
    alphas = _floats(alpha)
    betas = _floats(beta)
    out: list[_Acts] = []
    for d in range(dirs):
        out.append(_Acts(names, alphas, betas, count * d, count))
    return out


def _advance(state: Tensor, new: Tensor, live: Tensor, out: Tensor, t: int) -> Tensor:
    """Writes ``new`` as step ``t`` of ``out`` and returns it as the next state, where the
    sequence is ``live``; past a sequence's end the output is zero and the state stays."""
    out[t] = torch.where(live, new, torch.zeros_like(new))
    return torch.where(live, new, state)


@TORCH.register("RNN", since=7)
def rnn(
    X: Tensor,  # noqa: N803
    W: Tensor,  # noqa: N803
    R: Tensor,  # noqa: N803
    B: Tensor | None = None,  # noqa: N803
    sequence_lens: Tensor | None = None,
    initial_h: Tensor | None = None,
    activation_alpha: list[float] | None = None,
    activation_beta: list[float] | None = None,
    activations: list[str] | None = None,
    clip: float | None = None,
    direction: str = "forward",
    hidden_size: int = 0,
    layout: int = 0,
) -> tuple[Tensor, Tensor]:
    x, h0, lens = _setup(X, W, initial_h, sequence_lens, 1, layout)
    acts = _direction_acts(activations, ["Tanh"], activation_alpha, activation_beta, direction)
    ys: list[Tensor] = []
    finals: list[Tensor] = []
    for d, reverse in enumerate(_directions(direction)):
        act = acts[d]
        bias = (
            torch.zeros_like(W[d, :, 0]) if B is None else B[d, : W.shape[1]] + B[d, W.shape[1] :]
        )
        h = h0[d]
        out = torch.zeros((x.shape[0], x.shape[1], h.shape[1]), dtype=x.dtype, device=x.device)
        for t in _steps(x.shape[0], reverse):
            new = act(0, _clip(x[t] @ W[d].t() + h @ R[d].t() + bias, clip))
            h = _advance(h, new, (t < lens).unsqueeze(1), out, t)
        ys.append(out)
        finals.append(h)
    return _finish(ys, finals, layout)


@TORCH.register("GRU", since=7)
def gru(
    X: Tensor,  # noqa: N803
    W: Tensor,  # noqa: N803
    R: Tensor,  # noqa: N803
    B: Tensor | None = None,  # noqa: N803
    sequence_lens: Tensor | None = None,
    initial_h: Tensor | None = None,
    activation_alpha: list[float] | None = None,
    activation_beta: list[float] | None = None,
    activations: list[str] | None = None,
    clip: float | None = None,
    direction: str = "forward",
    hidden_size: int = 0,
    layout: int = 0,
    linear_before_reset: int = 0,
) -> tuple[Tensor, Tensor]:
    x, h0, lens = _setup(X, W, initial_h, sequence_lens, 3, layout)
    acts = _direction_acts(activations, ["Sigmoid", "Tanh"], activation_alpha, activation_beta, direction)
    ys: list[Tensor] = []
    finals: list[Tensor] = []
    for d, reverse in enumerate(_directions(direction)):
        act = acts[d]
        h = h0[d]
        hs = h.shape[1]
        wb = torch.zeros_like(W[d, :, 0]) if B is None else B[d, : 3 * hs]
        rb = torch.zeros_like(W[d, :, 0]) if B is None else B[d, 3 * hs :]
        out = torch.zeros((x.shape[0], x.shape[1], hs), dtype=x.dtype, device=x.device)
        for t in _steps(x.shape[0], reverse):
            gx = x[t] @ W[d].t() + wb
            gh_zr = h @ R[d, : 2 * hs].t() + rb[: 2 * hs]
            z = act(0, _clip(gx[:, :hs] + gh_zr[:, :hs], clip))
            r = act(0, _clip(gx[:, hs : 2 * hs] + gh_zr[:, hs:], clip))
            if linear_before_reset != 0:
                hh = r * (h @ R[d, 2 * hs :].t() + rb[2 * hs :])
            else:
                hh = (r * h) @ R[d, 2 * hs :].t() + rb[2 * hs :]
            cand = act(1, _clip(gx[:, 2 * hs :] + hh, clip))
            new = (1.0 - z) * cand + z * h
            h = _advance(h, new, (t < lens).unsqueeze(1), out, t)
        ys.append(out)
        finals.append(h)
    return _finish(ys, finals, layout)


@TORCH.register("LSTM", since=7)
def lstm(
    X: Tensor,  # noqa: N803
    W: Tensor,  # noqa: N803
    R: Tensor,  # noqa: N803
    B: Tensor | None = None,  # noqa: N803
    sequence_lens: Tensor | None = None,
    initial_h: Tensor | None = None,
    initial_c: Tensor | None = None,
    P: Tensor | None = None,  # noqa: N803
    activation_alpha: list[float] | None = None,
    activation_beta: list[float] | None = None,
    activations: list[str] | None = None,
    clip: float | None = None,
    direction: str = "forward",
    hidden_size: int = 0,
    input_forget: int = 0,
    layout: int = 0,
) -> tuple[Tensor, Tensor, Tensor]:
    x, h0, lens = _setup(X, W, initial_h, sequence_lens, 4, layout)
    _, c0, _ = _setup(X, W, initial_c, sequence_lens, 4, layout)
    acts = _direction_acts(activations, ["Sigmoid", "Tanh", "Tanh"], activation_alpha, activation_beta, direction)
    ys: list[Tensor] = []
    hs_final: list[Tensor] = []
    cs_final: list[Tensor] = []
    for d, reverse in enumerate(_directions(direction)):
        act = acts[d]
        h, c = h0[d], c0[d]
        hs = h.shape[1]
        bias = torch.zeros_like(W[d, :, 0]) if B is None else B[d, : 4 * hs] + B[d, 4 * hs :]
        peep = torch.zeros((3 * hs,), dtype=x.dtype, device=x.device) if P is None else P[d]
        out = torch.zeros((x.shape[0], x.shape[1], hs), dtype=x.dtype, device=x.device)
        for t in _steps(x.shape[0], reverse):
            g = x[t] @ W[d].t() + h @ R[d].t() + bias
            i = act(0, _clip(g[:, :hs] + peep[:hs] * c, clip))
            f = act(0, _clip(g[:, 2 * hs : 3 * hs] + peep[2 * hs :] * c, clip))
            if input_forget != 0:
                f = 1.0 - i
            cand = act(1, _clip(g[:, 3 * hs :], clip))
            c_new = f * c + i * cand
            o = act(0, _clip(g[:, hs : 2 * hs] + peep[hs : 2 * hs] * c_new, clip))
            h_new = o * act(2, c_new)
            live = (t < lens).unsqueeze(1)
            h = _advance(h, h_new, live, out, t)
            c = torch.where(live, c_new, c)
        ys.append(out)
        hs_final.append(h)
        cs_final.append(c)
    y, y_h = _finish(ys, hs_final, layout)
    _, y_c = _finish(ys, cs_final, layout)
    return y, y_h, y_c
