"""Activation functions and the softmax family."""

import math

import torch
from torch import Tensor

from kernels.torch import TORCH
from kernels.torch._util import norm_axis


@TORCH.register("Relu", since=6)
def relu(x: Tensor) -> Tensor:
    return torch.relu(x)


@TORCH.register("LeakyRelu", since=6)
def leaky_relu(x: Tensor, alpha: float = 0.01) -> Tensor:
    return torch.where(x >= 0, x, x * alpha)


@TORCH.register("PRelu", since=7)
def prelu(x: Tensor, slope: Tensor) -> Tensor:
    return torch.where(x < 0, x * slope, x)


@TORCH.register("ThresholdedRelu", since=10)
def thresholded_relu(x: Tensor, alpha: float = 1.0) -> Tensor:
    return torch.where(x > alpha, x, torch.zeros_like(x))


@TORCH.register("Elu", since=6)
def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    return torch.where(x >= 0, x, alpha * (torch.exp(x) - 1.0))


@TORCH.register("Selu", since=6)
def selu(x: Tensor, alpha: float = 1.67326319217681884765625, gamma: float = 1.05070102214813232421875) -> Tensor:
    return gamma * torch.where(x > 0, x, alpha * (torch.exp(x) - 1.0))


@TORCH.register("Celu", since=12)
def celu(x: Tensor, alpha: float = 1.0) -> Tensor:
    return torch.clamp(x, min=0.0) + torch.clamp(alpha * (torch.exp(x / alpha) - 1.0), max=0.0)


@TORCH.register("Sigmoid", since=6)
def sigmoid(x: Tensor) -> Tensor:
    return torch.sigmoid(x)


@TORCH.register("HardSigmoid", since=6)
def hard_sigmoid(x: Tensor, alpha: float = 0.2, beta: float = 0.5) -> Tensor:
    return torch.clamp(alpha * x + beta, 0.0, 1.0)


@TORCH.register("HardSwish", since=14)
def hard_swish(x: Tensor) -> Tensor:
    return x * torch.clamp(x / 6.0 + 0.5, 0.0, 1.0)


@TORCH.register("Swish", since=24)
def swish(x: Tensor, alpha: float = 1.0) -> Tensor:
    return x * torch.sigmoid(alpha * x)


@TORCH.register("Tanh", since=6)
def tanh(x: Tensor) -> Tensor:
    return torch.tanh(x)


@TORCH.register("Softplus", since=1)
def softplus(x: Tensor) -> Tensor:
    return torch.where(x > 20.0, x, torch.log1p(torch.exp(x)))


@TORCH.register("Softsign", since=1)
def softsign(x: Tensor) -> Tensor:
    return x / (1.0 + torch.abs(x))


@TORCH.register("Mish", since=18)
def mish(x: Tensor) -> Tensor:
    return x * torch.tanh(softplus(x))


@TORCH.register("Gelu", since=20)
def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    if approximate == "tanh":
        inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)
        return 0.5 * x * (1.0 + torch.tanh(inner))
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


@TORCH.register("Shrink", since=9)
def shrink(x: Tensor, bias: float = 0.0, lambd: float = 0.5) -> Tensor:
    zero = torch.zeros_like(x)
    out = torch.where(x < -lambd, x + bias, zero)
    return torch.where(x > lambd, x - bias, out).to(x.dtype)


# --- softmax family --------------------------------------------------------------
# Opsets 1-12 flatten the input to 2-D at ``axis`` (default 1) and normalise each
# row; from opset 13 the op normalises along ``axis`` alone (default -1).


def _rows(x: Tensor, axis: int) -> Tensor:
    axis = norm_axis(axis, x.dim())
    lead = 1
    for d in x.shape[:axis]:
        lead *= d
    return x.reshape([lead, -1])


@TORCH.register("Softmax", since=1)
def softmax_1(x: Tensor, axis: int = 1) -> Tensor:
    return torch.softmax(_rows(x, axis), 1).reshape(x.shape)


@TORCH.register("Softmax", since=13)
def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """In float16 / bfloat16 as ONNX's function body defines it: Exp(X - ReduceMax(X)) /
    ReduceSum(...) with every step a tensor of the input type (each step here computed in
    float32 and rounded); torch's half kernel rounds once and lands a step or two off."""
    if x.dtype != torch.float16 and x.dtype != torch.bfloat16:
        return torch.softmax(x, axis)
    wide = x.float()
    shifted = (wide - torch.amax(wide, axis, keepdim=True)).to(x.dtype).float()
    exp = torch.exp(shifted).to(x.dtype).float()
    total = torch.sum(exp, axis, keepdim=True).to(x.dtype).float()
    return (exp / total).to(x.dtype)


@TORCH.register("LogSoftmax", since=1)
def log_softmax_1(x: Tensor, axis: int = 1) -> Tensor:
    return torch.log_softmax(_rows(x, axis), 1).reshape(x.shape)


@TORCH.register("LogSoftmax", since=13)
def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    return torch.log_softmax(x, axis)


def _hardmax_along(x: Tensor, axis: int) -> Tensor:
    idx = torch.argmax(x, axis, keepdim=True)  # first maximum wins, as ONNX specifies
    return torch.zeros_like(x).scatter(axis, idx, torch.ones_like(idx, dtype=x.dtype))


@TORCH.register("Hardmax", since=1)
def hardmax_1(x: Tensor, axis: int = 1) -> Tensor:
    return _hardmax_along(_rows(x, axis), 1).reshape(x.shape)


@TORCH.register("Hardmax", since=13)
def hardmax(x: Tensor, axis: int = -1) -> Tensor:
    return _hardmax_along(x, norm_axis(axis, x.dim()))
