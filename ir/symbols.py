"""Symbolic dims: naming them, parsing shapes that use them, binding them to sizes.

A dynamic dim is an ``onnx_ir.SymbolicDim`` with a name. Front ends name them the
same way: ``batch`` for dim 0 of every input, ``<input>_<axis>`` for any other
unnamed dynamic dim, or the user's own name (``seq``) given with ``--input``.
Names are kept through every pass and back end, so ``batch`` in the source is
``batch`` in the result.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import onnx_ir

Dim = int | str | None

_SEP = re.compile(r"\s*[x×,]\s*|\s+")


def default_symbol(input_name: str, axis: int) -> str:
    """The symbol a front end gives an unnamed dynamic dim.

    >>> default_symbol("input_ids", 0), default_symbol("input_ids", 1)
    ('batch', 'input_ids_1')
    """
    if axis == 0:
        return "batch"
    safe = re.sub(r"[^0-9A-Za-z_]", "_", input_name).strip("_") or "input"
    return f"{safe}_{axis}"


def parse_shape(text: str) -> list[Dim]:
    """Parse ``1x3x224x224``, ``batch x 3 x 224 x 224`` or ``batch,seq`` into dims.

    Integers become ``int``; ``?`` or ``-1`` becomes ``None`` (dynamic, unnamed);
    anything else is a symbol name. An empty string or ``scalar`` is rank 0.

    Raises:
        ValueError: a dim is neither an integer >= 0, ``?``/``-1``, nor an identifier.

    >>> parse_shape("batch x 3 x 224x224")
    ['batch', 3, 224, 224]
    """
    text = text.strip()
    if text in ("", "scalar", "[]", "()"):
        return []
    text = text.strip("[]()")
    dims: list[Dim] = []
    for tok in (t for t in _SEP.split(text) if t):
        if re.fullmatch(r"\d+", tok):
            dims.append(int(tok))
        elif tok in ("?", "-1"):
            dims.append(None)
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", tok):
            dims.append(tok)
        else:
            raise ValueError(
                f"bad dim {tok!r} in shape {text!r}: use integers or symbol names, "
                "e.g. 1x3x224x224 or 'batch x 3 x 224 x 224'"
            )
    return dims


def symbolic_dims(model: onnx_ir.Model) -> list[str]:
    """Names of the symbolic dims on the model's graph inputs and outputs, in order of appearance."""
    seen: dict[str, None] = {}
    for value in [*model.graph.inputs, *model.graph.outputs]:
        if value.shape is None:
            continue
        for d in value.shape:
            if isinstance(d, onnx_ir.SymbolicDim) and d.value is not None:
                seen.setdefault(d.value, None)
    return list(seen)


def bind_symbols(
    model: onnx_ir.Model,
    sizes: Mapping[str, int] | None = None,
    *,
    default: int | None = 1,
) -> dict[str, tuple[int, ...]]:
    """Concrete shapes for the model's graph inputs, binding each symbol to a size.

    Args:
        model: the model whose (non-initializer) graph inputs are bound.
        sizes: ``{symbol: size}``; a symbol not named takes ``default``.
        default: size of unbound symbols and unnamed dynamic dims; ``None`` makes
            an unbound dim an error.

    Returns:
        ``{input name: shape}``. The same symbol gets the same size everywhere.

    Raises:
        ValueError: an input has unknown rank, or a dim is unbound and ``default`` is None.
    """
    sizes = dict(sizes or {})
    shapes: dict[str, tuple[int, ...]] = {}
    initializers = set(model.graph.initializers)
    for value in model.graph.inputs:
        if value.name in initializers:
            continue
        if value.shape is None:
            raise ValueError(f"input {value.name!r} has unknown rank: give its shape with --input")
        shapes[value.name] = tuple(_bind_dim(value.name, i, d, sizes, default) for i, d in enumerate(value.shape))
    return shapes


def _bind_dim(name: str, axis: int, dim: object, sizes: dict[str, int], default: int | None) -> int:
    if isinstance(dim, int):
        return dim
    symbol = dim.value if isinstance(dim, onnx_ir.SymbolicDim) else None
    if symbol is not None and symbol in sizes:
        return int(sizes[symbol])
    if default is None:
        raise ValueError(f"dim {axis} of input {name!r} ({symbol or '?'}) has no size: bind it")
    if symbol is not None:
        sizes[symbol] = default
    return default


def make_shape(dims: Sequence[Dim]) -> onnx_ir.Shape:
    """An ``onnx_ir.Shape`` from ints, symbol names and ``None``."""
    return onnx_ir.Shape([d if isinstance(d, int) else onnx_ir.SymbolicDim(d) for d in dims])
