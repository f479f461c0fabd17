"""Neural-network layers: convolution, normalization, pooling, resizing, dropout.

- ``convolution`` -> ``Conv`` / ``ConvTranspose`` (torch's weight layouts are ONNX's).
- batch norm (inference) -> ``BatchNormalization``; layer norm -> ``LayerNormalization``;
  group norm -> ``InstanceNormalization`` over ``(N, G, -1)`` plus the per-channel affine.
- max-pool indices are torch's per-plane flat indices: ONNX's (flat over the
  whole tensor) modulo H*W.
- ``adaptive_avg_pool`` -> ``GlobalAveragePool`` for output size 1, else an
  ``AveragePool`` when the input size is a static multiple of the output size.
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


@ATEN.register("aten::_native_batch_norm_legit_no_training")
def batch_norm_no_training(
    e: Emitter, x: ir.Value, weight: Any, bias: Any, mean: ir.Value, var: ir.Value, momentum: float, eps: float
) -> tuple[ir.Value, None, None]:
    channels = mean.shape[0]
    weight = _channel_param(e, weight, channels, 1.0, x.dtype)
    bias = _channel_param(e, bias, channels, 0.0, x.dtype)
    return e.op("BatchNormalization", x, weight, bias, mean, var, epsilon=float(eps)), None, None


@ATEN.register("aten::native_layer_norm")
def native_layer_norm(
    e: Emitter, x: ir.Value, normalized_shape: list[int], weight: Any, bias: Any, eps: float
) -> tuple[ir.Value, None, None]:
    if weight is None:
        weight = e.const(np.ones(normalized_shape), x.dtype)
    out = e.op("LayerNormalization", x, weight, bias, axis=-len(normalized_shape), epsilon=float(eps))
    return out, None, None


@ATEN.register("aten::layer_norm")
def layer_norm(
    e: Emitter, x: ir.Value, normalized_shape: list[int], weight: Any = None, bias: Any = None, eps: float = 1e-5, cudnn_enable: bool = True
) -> ir.Value:
    return native_layer_norm(e, x, normalized_shape, weight, bias, eps)[0]


@ATEN.register("aten::native_group_norm")
def native_group_norm(
    e: Emitter, x: ir.Value, weight: Any, bias: Any, n: Any, channels: int, hw: Any, groups: int, eps: float
) -> tuple[ir.Value, None, None]:
    grouped = e.op("Reshape", x, e.ints([0, groups, -1]))
    ones = e.const(np.ones([groups]), x.dtype)
    zeros = e.const(np.zeros([groups]), x.dtype)
    normed = e.op("InstanceNormalization", grouped, ones, zeros, epsilon=float(eps))
    out = e.op("Reshape", normed, e.shape_of(x))
    affine_shape = e.ints([channels] + [1] * (rank(x) - 2))
    if weight is not None:
        out = e.op("Mul", out, e.op("Reshape", weight, affine_shape))
    if bias is not None:
        out = e.op("Add", out, e.op("Reshape", bias, affine_shape))
    return out, None, None


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
    if divisor_override is not None:
        raise NotImplementedError("avg_pool with divisor_override")
    attrs = _pool_attrs(kernel_size, stride, padding, rank(x) - 2)
    return e.op("AveragePool", x, ceil_mode=ceil_mode, count_include_pad=count_include_pad, **attrs)


@ATEN.register("aten::_adaptive_avg_pool2d")
@ATEN.register("aten::adaptive_avg_pool2d")
@ATEN.register("aten::_adaptive_avg_pool3d")
@ATEN.register("aten::adaptive_avg_pool1d")
def adaptive_avg_pool(e: Emitter, x: ir.Value, output_size: list[int]) -> ir.Value:
    n = rank(x) - 2
    output_size = _per_dim(output_size, n)
    if all(s == 1 for s in output_size):
        return e.op("GlobalAveragePool", x)
    spatial = list(x.shape)[2:]
    if not all(isinstance(d, int) and d % s == 0 for d, s in zip(spatial, output_size, strict=True)):
        raise NotImplementedError("adaptive_avg_pool with a dynamic or non-divisible input size")
    kernel = [d // s for d, s in zip(spatial, output_size, strict=True)]
    return e.op("AveragePool", x, kernel_shape=kernel, strides=kernel)


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

