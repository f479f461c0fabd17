"""Small helpers shared by the rule files."""

from __future__ import annotations

import numpy as np

import ir


def const_array(value: ir.Value | None) -> np.ndarray | None:
    """The constant value of ``value`` as numpy (initializer or Constant output), else None."""
    if value is None or value.const_value is None:
        return None
    try:
        return value.const_value.numpy()
    except Exception:  # noqa: BLE001  (a lazy tensor that cannot be read is "not constant")
        return None


def static_shape(value: ir.Value | None) -> tuple[int, ...] | None:
    """The shape of ``value`` if every dim is a known int, else None."""
    if value is None or value.shape is None:
        return None
    if not all(isinstance(d, int) for d in value.shape.dims):
        return None
    return tuple(value.shape.dims)


def rank(value: ir.Value | None) -> int | None:
    """The rank of ``value`` if known."""
    if value is None or value.shape is None:
        return None
    return value.shape.rank()


def attr_ints(node: ir.Node, name: str) -> list[int] | None:
    """An INTS attribute of ``node`` as a list, or None when absent."""
    attr = node.attributes.get(name)
    return None if attr is None else list(attr.as_ints())


def has_single_use(value: ir.Value) -> bool:
    """``value`` feeds exactly one node input and is not a graph output."""
    return len(value.uses()) == 1 and not value.is_graph_output()
