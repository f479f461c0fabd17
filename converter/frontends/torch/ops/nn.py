"""Neural-network layers: convolution, normalization, pooling, resizing, dropout.

- ``convolution`` -> ``Conv`` / ``ConvTranspose`` (torch's weight layouts are ONNX's).
- batch norm (inference) -> ``BatchNormalization``; in training, batch statistics
  and momentum-updated running ones from reductions; layer norm ->
  ``LayerNormalization`` (its Mean/InvStdDev outputs when torch's mean/rstd are read);
  group norm -> ``InstanceNormalization`` over ``(N, G, -1)`` plus the per-channel affine.
- max-pool indices are torch's per-plane flat indices: ONNX's (flat over the
  whole tensor) modulo H*W.
- adaptive pooling -> ``Global*Pool`` for output size 1, a plain pool when the
  input size is a static multiple of the output size, else one reduction per
  output position and axis (static sizes).
- ``grid_sampler`` -> ``GridSample``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import ir
from converter.frontends.torch.emit import Emitter, rank
from converter.frontends.torch.ops import ATEN


def _per_dim(value: Any, n: int) -> list[int]:
    if isinstance(value, int):
        return [value] * n
    value = list(value)
    return value * n if len(value) == 1 else value


@ATEN.register("aten::convolution")
def convolution(
    e: Emitter,
    x: ir.Value,
    weight: ir.Value,
    bias: ir.Value | None,
    stride: list[int],
    padding: list[int],
    dilation: list[int],
    transposed: bool,
    output_padding: list[int],
    groups: int,
) -> ir.Value:
    n = rank(x) - 2
    attrs: dict[str, Any] = {
        "strides": _per_dim(stride, n),
        "pads": _per_dim(padding, n) * 2,
        "dilations": _per_dim(dilation, n),
        "group": groups,
    }
    if transposed:
        if any(_per_dim(output_padding, n)):
            attrs["output_padding"] = _per_dim(output_padding, n)
        return e.op("ConvTranspose", x, weight, bias, **attrs)
    return e.op("Conv", x, weight, bias, **attrs)


def _channel_param(e: Emitter, value: ir.Value | None, channels: int, fill: float, dtype: ir.DataType) -> ir.Value:
    return value if value is not None else e.const(np.full([channels], fill), dtype)


def _used(e: Emitter, output: int) -> bool:
    """Whether the multi-output node's ``output`` is read."""
    return any(u.args[1] == output for u in e.node.users)


def _empty(e: Emitter, dtype: ir.DataType) -> ir.Value:
    """A ``[0]`` tensor: what torch returns for statistics it did not compute."""
    return e.const(np.zeros([0]), dtype)


@ATEN.register("aten::_native_batch_norm_legit_no_training")
def batch_norm_no_training(
    e: Emitter, x: ir.Value, weight: Any, bias: Any, mean: ir.Value, var: ir.Value, momentum: float, eps: float
) -> tuple[ir.Value, ir.Value, ir.Value]:
    channels = mean.shape[0]
    weight = _channel_param(e, weight, channels, 1.0, x.dtype)
    bias = _channel_param(e, bias, channels, 0.0, x.dtype)
    out = e.op("BatchNormalization", x, weight, bias, mean, var, epsilon=float(eps))
    return out, _empty(e, x.dtype), _empty(e, x.dtype)


@ATEN.register("aten::_native_batch_norm_legit_functional")
def batch_norm_functional(
    e: Emitter, x: ir.Value, weight: Any, bias: Any, running_mean: ir.Value, running_var: ir.Value,
    training: bool, momentum: float, eps: float,
) -> tuple[ir.Value, ...]:
    """Training batch norm: batch statistics, and the running ones updated with ``momentum``."""
    if not training:
        out = batch_norm_no_training(e, x, weight, bias, running_mean, running_var, momentum, eps)
        return (*out, running_mean, running_var)
    return _batch_norm_training(e, x, weight, bias, running_mean, running_var, momentum, eps)


@ATEN.register("aten::_batch_norm_with_update_functional")
def batch_norm_with_update(
    e: Emitter, x: ir.Value, weight: Any, bias: Any, running_mean: ir.Value, running_var: ir.Value, momentum: float, eps: float
) -> tuple[ir.Value, ...]:
    out, mean, rstd, new_mean, new_var = _batch_norm_training(e, x, weight, bias, running_mean, running_var, momentum, eps)
    reserve = e.const(np.zeros([0], dtype=np.uint8))  # cudnn's workspace: empty on CPU
    return out, mean, rstd, reserve, new_mean, new_var


@ATEN.register("aten::_native_batch_norm_legit.no_stats")
def batch_norm_no_stats(e: Emitter, x: ir.Value, weight: Any, bias: Any, training: bool, momentum: float, eps: float) -> tuple[ir.Value, ...]:
    return _batch_norm_training(e, x, weight, bias, None, None, momentum, eps)[:3]


def _batch_norm_training(
    e: Emitter, x: ir.Value, weight: Any, bias: Any, running_mean: Any, running_var: Any, momentum: float, eps: float
) -> tuple[ir.Value, ...]:
    dt = x.dtype
    axes = e.ints([0, *range(2, rank(x))])
    mean = e.op("ReduceMean", x, axes, keepdims=1)
    diff = e.op("Sub", x, mean)
    var = e.op("ReduceMean", e.op("Mul", diff, diff), axes, keepdims=1)
    rstd = e.op("Reciprocal", e.op("Sqrt", e.op("Add", var, e.const(float(eps), dt))))
    out = e.op("Mul", diff, rstd)
    affine = e.ints([-1] + [1] * (rank(x) - 2))
    if weight is not None:
        out = e.op("Mul", out, e.op("Reshape", weight, affine))
    if bias is not None:
        out = e.op("Add", out, e.op("Reshape", bias, affine))
    flat = e.ints([-1])
    mean, var, rstd = (e.op("Reshape", v, flat) for v in (mean, var, rstd))
    if running_mean is None:
        return out, mean, rstd
    from converter.frontends.torch.ops.reduce import element_count

    n = element_count(e, x, [0, *range(2, rank(x))], dt)
    unbiased = e.op("Div", e.op("Mul", var, n), e.op("Sub", n, e.const(1.0, dt)))
    m = e.const(float(momentum), dt)
    keep = e.const(1.0 - float(momentum), dt)
    new_mean = e.op("Add", e.op("Mul", running_mean, keep), e.op("Mul", mean, m))
    new_var = e.op("Add", e.op("Mul", running_var, keep), e.op("Mul", unbiased, m))
    return out, mean, rstd, new_mean, new_var


def _layer_norm(e: Emitter, x: ir.Value, normalized_shape: list[int], weight: Any, bias: Any, eps: float, stats: bool) -> Any:
    if weight is None:
        weight = e.const(np.ones(normalized_shape), x.dtype)
    # With stats: Mean and InvStdDev keep the reduced axes as 1, as torch's mean and rstd do.
    outputs = 3 if stats else 1
    return e.op("LayerNormalization", x, weight, bias, axis=-len(normalized_shape), epsilon=float(eps), outputs=outputs)


@ATEN.register("aten::native_layer_norm")
def native_layer_norm(
    e: Emitter, x: ir.Value, normalized_shape: list[int], weight: Any, bias: Any, eps: float
) -> tuple[Any, ...]:
    if _used(e, 1) or _used(e, 2):
        return _layer_norm(e, x, normalized_shape, weight, bias, eps, stats=True)
    return _layer_norm(e, x, normalized_shape, weight, bias, eps, stats=False), None, None


@ATEN.register("aten::layer_norm")
def layer_norm(
    e: Emitter, x: ir.Value, normalized_shape: list[int], weight: Any = None, bias: Any = None, eps: float = 1e-5, cudnn_enable: bool = True
) -> ir.Value:
    return _layer_norm(e, x, normalized_shape, weight, bias, eps, stats=False)


@ATEN.register("aten::native_group_norm")
def native_group_norm(
    e: Emitter, x: ir.Value, weight: Any, bias: Any, n: Any, channels: int, hw: Any, groups: int, eps: float
) -> tuple[ir.Value, None, None]:
    grouped = e.op("Reshape", x, e.ints([0, groups, -1]))
    stats = _group_stats(e, grouped, eps) if _used(e, 1) or _used(e, 2) else (None, None)
    ones = e.const(np.ones([groups]), x.dtype)
    zeros = e.const(np.zeros([groups]), x.dtype)
    normed = e.op("InstanceNormalization", grouped, ones, zeros, epsilon=float(eps))
    out = e.op("Reshape", normed, e.shape_of(x))
    affine_shape = e.ints([channels] + [1] * (rank(x) - 2))
    if weight is not None:
        out = e.op("Mul", out, e.op("Reshape", weight, affine_shape))
    if bias is not None:
        out = e.op("Add", out, e.op("Reshape", bias, affine_shape))
    return out, *stats


def _group_stats(e: Emitter, grouped: ir.Value, eps: float) -> tuple[ir.Value, ir.Value]:
    """Per ``(N, G)`` mean and ``1/sqrt(var + eps)`` of ``grouped`` (``[N, G, -1]``)."""
    axis = e.ints([2])
    mean = e.op("ReduceMean", grouped, axis, keepdims=1)
    diff = e.op("Sub", grouped, mean)
    var = e.op("ReduceMean", e.op("Mul", diff, diff), axis, keepdims=0)
    rstd = e.op("Reciprocal", e.op("Sqrt", e.op("Add", var, e.const(float(eps), grouped.dtype))))
    return e.op("Squeeze", mean, axis), rstd


def _pool_attrs(kernel: list[int], stride: Any, padding: Any, n: int) -> dict[str, Any]:
    kernel = _per_dim(kernel, n)
    stride = _per_dim(stride, n) if stride else kernel
    return {"kernel_shape": kernel, "strides": stride, "pads": _per_dim(padding, n) * 2}


@ATEN.register("aten::max_pool2d_with_indices")
@ATEN.register("aten::max_pool1d_with_indices")
@ATEN.register("aten::max_pool3d_with_indices")
def max_pool_with_indices(
    e: Emitter, x: ir.Value, kernel_size: list[int], stride: Any = (), padding: Any = 0, dilation: Any = 1, ceil_mode: bool = False
) -> tuple[ir.Value, ir.Value | None]:
    n = rank(x) - 2
    attrs = _pool_attrs(kernel_size, stride, padding, n) | {"dilations": _per_dim(dilation, n), "ceil_mode": ceil_mode}
    indices_used = any(u.args[1] == 1 for u in e.node.users)
    if not indices_used:
        return e.op("MaxPool", x, **attrs), None
    out, flat = e.op("MaxPool", x, outputs=2, **attrs)
    plane = e.op("ReduceProd", e.shape_of(x, 2), keepdims=1)
    return out, e.op("Mod", flat, plane)


@ATEN.register("aten::max_pool2d")
def max_pool2d(e: Emitter, x: ir.Value, kernel_size: list[int], stride: Any = (), padding: Any = 0, dilation: Any = 1, ceil_mode: bool = False) -> ir.Value:
    attrs = _pool_attrs(kernel_size, stride, padding, 2) | {"dilations": _per_dim(dilation, 2), "ceil_mode": ceil_mode}
    return e.op("MaxPool", x, **attrs)


@ATEN.register("aten::avg_pool2d")
@ATEN.register("aten::avg_pool1d")
@ATEN.register("aten::avg_pool3d")
def avg_pool(
    e: Emitter,
    x: ir.Value,
    kernel_size: list[int],
    stride: Any = (),
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> ir.Value:
    attrs = _pool_attrs(kernel_size, stride, padding, rank(x) - 2)
    if divisor_override is None:
        return e.op("AveragePool", x, ceil_mode=ceil_mode, count_include_pad=count_include_pad, **attrs)
    # The window sum (a mean over the whole kernel, padding counted) over the given divisor;
    # a window that ceil_mode lets run past the padding would be averaged over fewer elements.
    n = len(attrs["kernel_shape"])
    spatial = list(x.shape)[-n:]
    fits = [isinstance(d, int) and (d + 2 * p - k) % s == 0 for d, k, s, p in zip(spatial, attrs["kernel_shape"], attrs["strides"], attrs["pads"][:n], strict=True)]
    if ceil_mode and not all(fits):
        raise NotImplementedError("avg_pool with divisor_override and ceil_mode windows past the padding")
    mean = e.op("AveragePool", x, ceil_mode=ceil_mode, count_include_pad=1, **attrs)
    scale = float(np.prod(attrs["kernel_shape"])) / float(divisor_override)
    return e.op("Mul", mean, e.const(scale, x.dtype))


@ATEN.register("aten::_adaptive_avg_pool2d")
@ATEN.register("aten::adaptive_avg_pool2d")
@ATEN.register("aten::_adaptive_avg_pool3d")
@ATEN.register("aten::adaptive_avg_pool1d")
def adaptive_avg_pool(e: Emitter, x: ir.Value, output_size: list[int]) -> ir.Value:
    return _adaptive_pool(e, x, output_size, "ReduceMean")


@ATEN.register("aten::adaptive_max_pool2d")
@ATEN.register("aten::adaptive_max_pool3d")
def adaptive_max_pool(e: Emitter, x: ir.Value, output_size: list[int]) -> tuple[ir.Value, None]:
    if _used(e, 1):
        raise NotImplementedError("adaptive_max_pool's indices")
    return _adaptive_pool(e, x, output_size, "ReduceMax"), None


def _adaptive_pool(e: Emitter, x: ir.Value, output_size: list[int], reduce: str) -> ir.Value:
    """Adaptive pooling: Global*Pool for size 1, a plain pool when the sizes divide,
    else one reduction per output position and axis (the windows are a product of
    per-axis intervals ``[floor(i*L/n), ceil((i+1)*L/n))``, and mean and max separate by axis)."""
    n = len(output_size) if isinstance(output_size, list | tuple) else 1
    output_size = _per_dim(output_size, n)
    if rank(x) == n + 1:  # unbatched
        batched = e.op("Unsqueeze", x, e.ints([0]))
        batched.dtype, batched.shape = x.dtype, ir.Shape([1, *x.shape])
        return e.op("Squeeze", _adaptive_pool(e, batched, output_size, reduce), e.ints([0]))
    spatial = list(x.shape)[-n:]
    if all(s == 1 for s in output_size):
        return e.op("GlobalAveragePool" if reduce == "ReduceMean" else "GlobalMaxPool", x)
    if not all(isinstance(d, int) for d in spatial):
        raise NotImplementedError("adaptive pooling over a dynamic size")
    if all(d % s == 0 for d, s in zip(spatial, output_size, strict=True)):
        kernel = [d // s for d, s in zip(spatial, output_size, strict=True)]
        return e.op("AveragePool" if reduce == "ReduceMean" else "MaxPool", x, kernel_shape=kernel, strides=kernel)
    out = x
    for axis, (length, size) in enumerate(zip(spatial, output_size, strict=True), start=rank(x) - n):
        if length == size:
            continue
        pieces = []
        for i in range(size):
            start, end = (i * length) // size, -((-(i + 1) * length) // size)
            window = e.op("Slice", out, e.ints([start]), e.ints([end]), e.ints([axis]))
            pieces.append(e.op(reduce, window, e.ints([axis]), keepdims=1))
        out = e.op("Concat", *pieces, axis=axis)
    return out


def _resize(e: Emitter, x: ir.Value, output_size: Any, scales: Any, **attrs: Any) -> ir.Value:
    if output_size is not None:
        sizes = e.op("Concat", e.shape_of(x, 0, 2), e.shape_vector(list(output_size)), axis=0)
        return e.op("Resize", x, None, None, sizes, **attrs)
    factors = e.const(np.array([1.0, 1.0, *scales], dtype=np.float32))
    return e.op("Resize", x, None, factors, **attrs)


@ATEN.register("aten::upsample_nearest2d.vec")
@ATEN.register("aten::upsample_nearest1d.vec")
def upsample_nearest(e: Emitter, x: ir.Value, output_size: Any, scale_factors: Any) -> ir.Value:
    # torch picks floor(out_index * in / out): ONNX's asymmetric transform with floor rounding.
    return _resize(e, x, output_size, scale_factors, mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")


@ATEN.register("aten::upsample_bilinear2d.vec")
def upsample_bilinear2d(e: Emitter, x: ir.Value, output_size: Any, align_corners: bool, scale_factors: Any) -> ir.Value:
    mode = "align_corners" if align_corners else "pytorch_half_pixel"
    return _resize(e, x, output_size, scale_factors, mode="linear", coordinate_transformation_mode=mode)


@ATEN.register("aten::dropout")
@ATEN.register("aten::feature_dropout")
def dropout(e: Emitter, x: ir.Value, p: float = 0.5, train: bool = False) -> ir.Value:
    if train:
        raise NotImplementedError("dropout in training mode")
    return x



_GRID_MODES = {0: "linear", 1: "nearest", 2: "cubic"}
_GRID_PADDING = {0: "zeros", 1: "border", 2: "reflection"}


@ATEN.register("aten::grid_sampler_2d")
@ATEN.register("aten::grid_sampler_3d")
def grid_sampler(e: Emitter, x: ir.Value, grid: ir.Value, interpolation_mode: int, padding_mode: int, align_corners: bool) -> ir.Value:
    return e.op(
        "GridSample", x, grid,
        mode=_GRID_MODES[interpolation_mode], padding_mode=_GRID_PADDING[padding_mode], align_corners=align_corners,
    )
