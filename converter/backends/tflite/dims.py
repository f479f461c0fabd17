"""Symbolic dims: fixed to sizes the user gives (``--input``) where TFLite cannot keep them dynamic."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import ir
from converter.errors import InputError


def specialize_dims(model: ir.Model, sizes: Mapping[str, int]) -> None:
    """Replace the symbolic dims named in ``sizes`` by those sizes, on every value of ``model``.

    Args:
        model: modified in place.
        sizes: ``{symbol: size}``, each symbol one of the model's.

    Raises:
        InputError: a name that is not a symbol of the model's inputs, or a size < 1.

    Example:
        >>> specialize_dims(model, {"seq": 128})   # doctest: +SKIP
    """
    known = set(ir.symbols.symbolic_dims(model))
    unknown = sorted(set(sizes) - known)
    if unknown:
        raise InputError(f"cannot specialize {', '.join(unknown)}: the model's symbolic dims are "
                         f"{', '.join(sorted(known)) or 'none'}")
    bad = sorted(k for k, v in sizes.items() if int(v) < 1)
    if bad:
        raise InputError(f"sizes must be >= 1 ({', '.join(bad)})")
    for value in _all_values(model):
        if value.shape is not None and any(symbol(d) in sizes for d in value.shape):
            value.shape = ir.Shape([int(sizes[symbol(d)]) if symbol(d) in sizes else d for d in value.shape])


def sizes_from_specs(model: ir.Model, specs: Any) -> dict[str, int]:
    """``{symbol: size}`` for the model's symbolic input dims that input specs give as integers.

    ``specs`` are :class:`converter.inputs.InputSpec` (or anything with ``name`` and
    ``shape``); other entries are ignored, so example tensors may be passed as well.

    Example:
        >>> sizes_from_specs(model, [InputSpec.parse("x:2x8x16")])   # doctest: +SKIP
        {'batch': 2, 'x_1': 8}
    """
    sizes: dict[str, int] = {}
    by_name = {v.name: v for v in model.graph.inputs}
    for spec in specs or []:
        value = by_name.get(getattr(spec, "name", None))
        shape = getattr(spec, "shape", None)
        if value is None or value.shape is None or shape is None or len(shape) != len(value.shape):
            continue
        for dim, given in zip(value.shape, shape, strict=True):
            if symbol(dim) is not None and isinstance(given, int):
                sizes[symbol(dim)] = given
    return sizes


def symbol(dim: Any) -> str | None:
    """The name of a symbolic dim, None for a static (or unnamed) one."""
    return dim.value if isinstance(dim, ir.SymbolicDim) else None


def _all_values(model: ir.Model) -> Iterator[ir.Value]:
    """Graph inputs, every node output and every subgraph input (initializers have no symbols)."""
    yield from model.graph.inputs
    for node in ir.traversal.RecursiveGraphIterator(model.graph):
        yield from node.outputs
        for attr in node.attributes.values():
            if attr.type == ir.AttributeType.GRAPH:
                yield from attr.value.inputs
            elif attr.type == ir.AttributeType.GRAPHS:
                for g in attr.value:
                    yield from g.inputs
