"""Tensor creation: full/zeros/ones/empty (and their ``_like``/``new_`` forms), arange, scalar_tensor.

Sizes may be SymInts, so ``full`` is ``ConstantOfShape`` of a run-time shape.
``empty`` is zeros: its contents are unspecified, and zeros are a valid choice.
The dtype is always the FX node's output dtype.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import ir
from converter.frontends.torch.emit import Emitter
from converter.frontends.torch.ops import ATEN


def _filled(e: Emitter, shape: ir.Value, value: Any) -> ir.Value:
    dt = e.out_dtype
    if isinstance(value, ir.Value):
        return e.op("Expand", e.cast(value, dt), shape)
    return e.op("ConstantOfShape", shape, value=ir.tensor(np.array([value], dtype=dt.numpy())))


@ATEN.register("aten::full")
def full(e: Emitter, size: list[Any], fill_value: Any, **kwargs: Any) -> ir.Value:
    return _filled(e, e.shape_vector(size), fill_value)


@ATEN.register("aten::zeros")
@ATEN.register("aten::empty.memory_format")
@ATEN.register("aten::empty_permuted")
@ATEN.register("aten::empty_strided")
def zeros(e: Emitter, size: list[Any], *args: Any, **kwargs: Any) -> ir.Value:
    return _filled(e, e.shape_vector(size), 0)


@ATEN.register("aten::ones")
def ones(e: Emitter, size: list[Any], **kwargs: Any) -> ir.Value:
    return _filled(e, e.shape_vector(size), 1)


@ATEN.register("aten::full_like")
def full_like(e: Emitter, x: ir.Value, fill_value: Any, **kwargs: Any) -> ir.Value:
    return _filled(e, e.shape_of(x), fill_value)


@ATEN.register("aten::zeros_like")
@ATEN.register("aten::empty_like")
def zeros_like(e: Emitter, x: ir.Value, **kwargs: Any) -> ir.Value:
    return _filled(e, e.shape_of(x), 0)


@ATEN.register("aten::ones_like")
def ones_like(e: Emitter, x: ir.Value, **kwargs: Any) -> ir.Value:
    return _filled(e, e.shape_of(x), 1)


@ATEN.register("aten::new_full")
def new_full(e: Emitter, x: ir.Value, size: list[Any], fill_value: Any, **kwargs: Any) -> ir.Value:
    return _filled(e, e.shape_vector(size), fill_value)


@ATEN.register("aten::new_zeros")
@ATEN.register("aten::new_empty")
def new_zeros(e: Emitter, x: ir.Value, size: list[Any], **kwargs: Any) -> ir.Value:
    return _filled(e, e.shape_vector(size), 0)


@ATEN.register("aten::new_ones")
def new_ones(e: Emitter, x: ir.Value, size: list[Any], **kwargs: Any) -> ir.Value:
    return _filled(e, e.shape_vector(size), 1)


@ATEN.register("aten::scalar_tensor")
def scalar_tensor(e: Emitter, value: Any, **kwargs: Any) -> ir.Value:
    return e.operand(value, e.out_dtype)


_RANGE_TYPES = (ir.DataType.FLOAT, ir.DataType.DOUBLE, ir.DataType.INT16, ir.DataType.INT32, ir.DataType.INT64)


@ATEN.register("aten::arange.start_step")
@ATEN.register("aten::arange.start")
def arange(e: Emitter, start: Any, end: Any, step: Any = 1, **kwargs: Any) -> ir.Value:
    dt = e.out_dtype
    if dt not in _RANGE_TYPES:  # counted in int64 (or float), then cast
        wide = ir.DataType.DOUBLE if dt.is_floating_point() else ir.DataType.INT64
        return e.cast(e.op("Range", e.operand(start, wide), e.operand(end, wide), e.operand(step, wide)), dt)
    return e.op("Range", e.operand(start, dt), e.operand(end, dt), e.operand(step, dt))


@ATEN.register("aten::arange")
def arange_end(e: Emitter, end: Any, **kwargs: Any) -> ir.Value:
    return arange(e, 0, end, 1)
