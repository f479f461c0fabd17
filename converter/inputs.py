"""Input specs: ``NAME:SHAPE[:DTYPE]`` from the command line, or objects from the API.

``--input x:batch x 3 x 224 x 224:float32`` gives input ``x`` a shape whose first
dim is the symbol ``batch``. Front ends use specs where the source has no
signature (a TorchScript file, a frozen GraphDef) or to name dynamic dims.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from converter.errors import InputError
from ir.symbols import Dim, parse_shape

_DTYPES = {
    "float32", "float", "float16", "half", "bfloat16", "float64", "double",
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool",
}


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """One model input: its name, shape (ints, symbol names, ``None``) and dtype name."""

    name: str
    shape: tuple[Dim, ...] | None = None
    dtype: str = "float32"

    @classmethod
    def parse(cls, text: str) -> InputSpec:
        """Parse ``NAME:SHAPE[:DTYPE]`` (``x:1x3x224x224``, ``ids:batch x seq:int64``).

        Raises:
            InputError: the text does not have that form.
        """
        parts = text.split(":")
        if len(parts) not in (2, 3) or not parts[0].strip():
            raise InputError(
                f"bad --input {text!r}",
                "write NAME:SHAPE[:DTYPE], e.g. x:1x3x224x224 or ids:batch x seq:int64",
            )
        name = parts[0].strip()
        try:
            shape = tuple(parse_shape(parts[1]))
        except ValueError as e:
            raise InputError(f"bad --input {text!r}: {e}") from None
        dtype = parts[2].strip().lower() if len(parts) == 3 else "float32"
        if dtype not in _DTYPES:
            raise InputError(f"bad --input {text!r}: unknown dtype {dtype!r}", f"use one of {', '.join(sorted(_DTYPES))}")
        return cls(name, shape, {"float": "float32", "half": "float16", "double": "float64"}.get(dtype, dtype))


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
