"""Normalization ops: batch, instance, layer, group, RMS, LRN-free mean/variance, Lp."""

import torch
from torch import Tensor

from kernels.torch import TORCH
from kernels.torch._util import norm_axes, norm_axis, onnx_dtype


def _channel(t: Tensor, rank: int) -> Tensor:
    """A per-channel vector shaped to broadcast along axis 1 of a rank-``rank`` tensor."""
    return t.reshape([1, -1] + [1] * (rank - 2))


@TORCH.register("BatchNormalization", since=15)
def batch_normalization(
    x: Tensor,
    scale: Tensor,
    b: Tensor,
    input_mean: Tensor,
    input_var: Tensor,
    epsilon: float = 1e-05,
    momentum: float = 0.9,
    training_mode: int = 0,
) -> tuple[Tensor, Tensor, Tensor]:
    rank = x.dim()
    if training_mode:
        dims = [0] + list(range(2, rank))
        mean = torch.mean(x, dims)
        var = torch.var(x, dims, unbiased=False)
        running_mean = input_mean * momentum + mean * (1.0 - momentum)
        running_var = input_var * momentum + var * (1.0 - momentum)
    else:
        mean, var = input_mean, input_var
        running_mean, running_var = input_mean, input_var
    y = (x - _channel(mean, rank)) / torch.sqrt(_channel(var, rank) + epsilon)
    return y * _channel(scale, rank) + _channel(b, rank), running_mean, running_var


@TORCH.register("BatchNormalization", since=9)
def batch_normalization_9(
    x: Tensor, scale: Tensor, b: Tensor, mean: Tensor, var: Tensor, epsilon: float = 1e-05, momentum: float = 0.9
) -> Tensor:
    return batch_normalization(x, scale, b, mean, var, epsilon, momentum, 0)[0]


@TORCH.register("BatchNormalization", since=7)
def batch_normalization_7(
    x: Tensor, scale: Tensor, b: Tensor, mean: Tensor, var: Tensor, epsilon: float = 1e-05, momentum: float = 0.9,
    spatial: int = 1,
) -> Tensor:
    """Inference, as from 9; ``spatial=0``: the parameters hold one value per channel and
    position (shape ``C x D1 x ...``), not per channel."""
    if spatial:
        return batch_normalization(x, scale, b, mean, var, epsilon, momentum, 0)[0]
    y = (x - mean.unsqueeze(0)) / torch.sqrt(var.unsqueeze(0) + epsilon)
    return y * scale.unsqueeze(0) + b.unsqueeze(0)


@TORCH.register("InstanceNormalization", since=6)
def instance_normalization(input: Tensor, scale: Tensor, b: Tensor, epsilon: float = 1e-05) -> Tensor:  # noqa: A002
    rank = input.dim()
    dims = list(range(2, rank))
    mean = torch.mean(input, dims, keepdim=True)
    var = torch.var(input, dims, unbiased=False, keepdim=True)
    y = (input - mean) / torch.sqrt(var + epsilon)
    return y * _channel(scale, rank) + _channel(b, rank)


@TORCH.register("LayerNormalization", since=17)
def layer_normalization(
    x: Tensor, scale: Tensor, b: Tensor | None = None, axis: int = -1, epsilon: float = 1e-05, stash_type: int = 1
) -> tuple[Tensor, Tensor, Tensor]:
    dim = norm_axis(axis, x.dim())
    dims = list(range(dim, x.dim()))
    xs = x.to(onnx_dtype(stash_type))  # statistics in the stash type
    mean = torch.mean(xs, dims, keepdim=True)
    var = torch.mean((xs - mean) * (xs - mean), dims, keepdim=True)
    inv_std = torch.rsqrt(var + epsilon)
    y = ((xs - mean) * inv_std).to(x.dtype) * scale
    if b is not None:
        y = y + b
    return y, mean, inv_std


@TORCH.register("RMSNormalization", since=23)
def rms_normalization(x: Tensor, scale: Tensor, axis: int = -1, epsilon: float = 1e-05, stash_type: int = 1) -> Tensor:
    dims = list(range(norm_axis(axis, x.dim()), x.dim()))
    xs = x.to(onnx_dtype(stash_type))
    rms = torch.sqrt(torch.mean(xs * xs, dims, keepdim=True) + epsilon)
    return (xs / rms).to(x.dtype) * scale


def _group_norm(x: Tensor, num_groups: int, epsilon: float, stash_type: int) -> Tensor:
    n = x.shape[0]
    xs = x.to(onnx_dtype(stash_type)).reshape([n, num_groups, -1])
    mean = torch.mean(xs, [2], keepdim=True)
    var = torch.mean((xs - mean) * (xs - mean), [2], keepdim=True)
    return ((xs - mean) / torch.sqrt(var + epsilon)).reshape(x.shape).to(x.dtype)


@TORCH.register("GroupNormalization", since=21)
def group_normalization(
    x: Tensor, scale: Tensor, bias: Tensor, epsilon: float = 1e-05, num_groups: int = 1, stash_type: int = 1
) -> Tensor:
    rank = x.dim()
    y = _group_norm(x, num_groups, epsilon, stash_type)
    return y * _channel(scale, rank) + _channel(bias, rank)


@TORCH.register("GroupNormalization", since=18)
def group_normalization_18(x: Tensor, scale: Tensor, bias: Tensor, epsilon: float = 1e-05, num_groups: int = 1) -> Tensor:
    # Opset 18 takes one scale and bias per group, not per channel.
    rank = x.dim()
    per = x.shape[1] // num_groups
    y = _group_norm(x, num_groups, epsilon, 1)
    s = scale.repeat_interleave(per)
    bb = bias.repeat_interleave(per)
    return y * _channel(s, rank) + _channel(bb, rank)


@TORCH.register("MeanVarianceNormalization", since=9)  # 13 adds bfloat16 only
@TORCH.register("MeanVarianceNormalization", since=13)
def mean_variance_normalization(x: Tensor, axes: list[int] | None = None) -> Tensor:
    dims = [0, 2, 3] if axes is None else norm_axes(axes, x.dim())
    mean = torch.mean(x, dims, keepdim=True)
    var = torch.mean((x - mean) * (x - mean), dims, keepdim=True)
    return (x - mean) / (torch.sqrt(var) + 1e-9)


@TORCH.register("LpNormalization", since=1)
def lp_normalization(input: Tensor, axis: int = -1, p: int = 2) -> Tensor:  # noqa: A002
    dim = norm_axis(axis, input.dim())
    if p == 1:
        norm = torch.sum(torch.abs(input), [dim], keepdim=True)
    else:
        norm = torch.sqrt(torch.sum(input * input, [dim], keepdim=True))
    return torch.where(norm == 0, torch.zeros_like(input), input / norm)
