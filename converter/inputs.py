"""Input specs: ``NAME:SHAPE[:DTYPE]`` from the command line, or objects from the API.

``--input x:batch x 3 x 224 x 224:float32`` gives input ``x`` a shape whose first
dim is the symbol ``batch``. A symbol may carry a range, written after it as
``=MIN..MAX`` with either end left out: ``--input 'ids:batch x seq=..512:int64'``
lets ``seq`` take any size up to 512 (a model with a 512-row position table needs
that). Front ends use specs where the source has no signature (a TorchScript file,
a frozen GraphDef) or to name and bound dynamic dims.

A converted model records the ranges of its symbols, where the source knows them,
in its metadata (:func:`model_symbol_bounds`).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from converter.errors import InputError
from ir.symbols import Dim, parse_shape

_DTYPES = {
    "float32", "float", "float16", "half", "bfloat16", "float64", "double",
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool",
}

#: A bounded symbol in a shape: ``seq=1..512``, ``seq=..512``, ``batch=2..``.
_BOUNDED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(\d*)\.\.(\d*)")
_SEP = re.compile(r"\s*[x×,]\s*|\s+")  # the dim separators of ir.parse_shape

_SYNTAX = (
    "write NAME:SHAPE[:DTYPE], e.g. x:1x3x224x224 or 'ids:batch x seq:int64'; "
    "bound a symbol with =MIN..MAX (either end may be left out), e.g. 'ids:batch x seq=1..512:int64'"
)

#: ``ir.Model.metadata_props`` key of the symbol ranges: JSON ``{"seq": {"min": 1, "max": 512}}``.
SYMBOL_BOUNDS_KEY = "crossgraph.symbol_bounds"

Bound = tuple[int | None, int | None]


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """One model input: its name, shape (ints, symbol names, ``None``), dtype name and symbol ranges.

    ``bounds`` maps a symbol of ``shape`` to ``(min, max)``, either end ``None``
    for "no limit". A symbol shared by several inputs needs its range in one of
    them only. Parsed from ``NAME:SHAPE[:DTYPE]``, where a symbol in ``SHAPE`` may
    be followed by ``=MIN..MAX``: ``seq=1..512``, ``seq=..512``, ``batch=2..``.

    Example:
        >>> spec = InputSpec.parse("input_ids:batch x seq=..512:int64")
        >>> spec.shape, spec.dtype, spec.bounds
        (('batch', 'seq'), 'int64', {'seq': (None, 512)})
        >>> str(spec)
        'input_ids:batch x seq=..512:int64'
    """

    name: str
    shape: tuple[Dim, ...] | None = None
    dtype: str = "float32"
    bounds: Mapping[str, Bound] = dataclasses.field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        symbols = {d for d in self.shape or () if isinstance(d, str)}
        for symbol, bound in self.bounds.items():
            if symbol not in symbols:
                raise InputError(f"input {self.name!r}: a range for {symbol!r}, which is not a symbol of its shape")
            _check_bound(symbol, bound, self.name)

    @classmethod
    def parse(cls, text: str) -> InputSpec:
        """Parse ``NAME:SHAPE[:DTYPE]`` (``x:1x3x224x224``, ``ids:batch x seq=1..512:int64``).

        Raises:
            InputError: the text does not have that form.
        """
        parts = text.split(":")
        if len(parts) not in (2, 3) or not parts[0].strip():
            raise InputError(f"bad --input {text!r}", _SYNTAX)
        name = parts[0].strip()
        try:
            shape, bounds = _parse_bounded_shape(parts[1])
        except ValueError as e:
            raise InputError(f"bad --input {text!r}: {e}", _SYNTAX) from None
        dtype = parts[2].strip().lower() if len(parts) == 3 else "float32"
        if dtype not in _DTYPES:
            raise InputError(f"bad --input {text!r}: unknown dtype {dtype!r}", f"use one of {', '.join(sorted(_DTYPES))}")
        dtype = {"float": "float32", "half": "float16", "double": "float64"}.get(dtype, dtype)
        return cls(name, shape, dtype, bounds)

    def __str__(self) -> str:
        """The spec in ``--input`` syntax, each range written at its symbol's first use."""
        dims, written = [], set()
        for d in self.shape or ():
            text = "?" if d is None else str(d)
            if isinstance(d, str) and d in self.bounds and d not in written:
                lo, hi = self.bounds[d]
                text += f"={'' if lo is None else lo}..{'' if hi is None else hi}"
                written.add(d)
            dims.append(text)
        return f"{self.name}:{' x '.join(dims) if self.shape is not None else '<any shape>'}:{self.dtype}"


def _parse_bounded_shape(text: str) -> tuple[tuple[Dim, ...], dict[str, Bound]]:
    """``parse_shape`` that also accepts ``SYMBOL=MIN..MAX`` dims; returns the shape and the ranges."""
    if "=" not in text and not re.search("[<>]", text):
        return tuple(parse_shape(text)), {}
    dims: list[Dim] = []
    bounds: dict[str, Bound] = {}
    for token in (t for t in _SEP.split(text.strip().strip("[]()")) if t):
        if re.search("[<>]", token):
            raise ValueError(f"bad dim {token!r}: write a range as SYMBOL=MIN..MAX, e.g. seq=..512 or seq=1..512")
        found = _BOUNDED.fullmatch(token)
        if found is None and "=" in token:
            raise ValueError(f"bad bounded dim {token!r}: write SYMBOL=MIN..MAX, e.g. seq=1..512 or seq=..512")
        if found is None:
            dims.extend(parse_shape(token))
            continue
        symbol, lo, hi = found.group(1), found.group(2), found.group(3)
        bound = (int(lo) if lo else None, int(hi) if hi else None)
        if bounds.get(symbol, bound) != bound:
            raise ValueError(f"two ranges for {symbol!r}")
        bounds[symbol] = bound
        dims.append(symbol)
    return tuple(dims), bounds


def _check_bound(symbol: str, bound: Bound, where: str) -> None:
    lo, hi = bound
    if lo is None and hi is None:
        raise InputError(f"input {where!r}: the range of {symbol!r} has neither end", "write seq=1..512 or seq=..512")
    if (lo is not None and lo < 0) or (hi is not None and hi < 2):
        raise InputError(f"input {where!r}: {symbol!r} must range over sizes >= 0 and reach at least 2",
                         "write a fixed size as a number instead of a symbol")
    if lo is not None and hi is not None and lo >= hi:
        raise InputError(f"input {where!r}: the range {lo}..{hi} of {symbol!r} is empty or one size",
                         "give MIN < MAX, or write a fixed size as a number")


def symbol_bounds(specs: Iterable[Any]) -> dict[str, Bound]:
    """The ranges of every symbol across ``specs`` (non-specs are skipped).

    Raises:
        InputError: two specs give one symbol different ranges.

    >>> symbol_bounds([InputSpec.parse("a:batch x seq=..64"), InputSpec.parse("b:batch x seq")])
    {'seq': (None, 64)}
    """
    merged: dict[str, Bound] = {}
    for spec in specs:
        for symbol, bound in getattr(spec, "bounds", {}).items():
            if merged.get(symbol, bound) != bound:
                raise InputError(f"inputs give {symbol!r} two ranges: {_show(merged[symbol])} and {_show(bound)}",
                                 "give the range once, or the same range everywhere")
            merged[symbol] = bound
    return merged


def _show(bound: Bound) -> str:
    lo, hi = bound
    return f"{'' if lo is None else lo}..{'' if hi is None else hi}"


def set_model_symbol_bounds(model: Any, bounds: Mapping[str, Bound]) -> None:
    """Record symbol ranges in ``model.metadata_props`` (kept through ONNX save/load)."""
    if bounds:
        record = {s: {"min": lo, "max": hi} for s, (lo, hi) in sorted(bounds.items())}
        model.metadata_props[SYMBOL_BOUNDS_KEY] = json.dumps(record)


def model_symbol_bounds(model: Any) -> dict[str, Bound]:
    """The symbol ranges a front end recorded on ``model`` (``{}`` when none).

    >>> import ir
    >>> m = ir.Model(ir.Graph([], [], nodes=[]), ir_version=10)
    >>> set_model_symbol_bounds(m, {"seq": (1, 64)})
    >>> model_symbol_bounds(m)
    {'seq': (1, 64)}
    """
    text = model.metadata_props.get(SYMBOL_BOUNDS_KEY)
    if not text:
        return {}
    return {s: (r.get("min"), r.get("max")) for s, r in json.loads(text).items()}


def normalize_inputs(inputs: Any) -> Any:
    """Turn CLI strings into :class:`InputSpec`; leave example tensors and arrays alone.

    Accepts ``None``, a sequence of ``InputSpec`` / ``"NAME:SHAPE[:DTYPE]"`` strings /
    example values, or a mapping of name to example value.
    """
    if inputs is None:
        return None
    if isinstance(inputs, str):
        return [InputSpec.parse(inputs)]
    if isinstance(inputs, Mapping):
        return dict(inputs)
    if isinstance(inputs, Iterable):
        items: Sequence[Any] = list(inputs)
        return [InputSpec.parse(i) if isinstance(i, str) else i for i in items]
    return inputs
