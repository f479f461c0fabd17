"""Input signatures: the source's own, refined by the user's input specs.

A source states its inputs' names, shapes (``None`` for a dynamic dim) and
dtypes; the user may add what it lacks or narrow it with
:class:`~converter.inputs.InputSpec`: an int fixes a dim, a string names its
symbol, ``None`` leaves it dynamic. The result is the ``tf.TensorSpec`` list the
source is traced with, and the symbol of every dynamic dim.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from converter.errors import InputError
from converter.frontends.tensorflow import naming
from converter.inputs import InputSpec, normalize_inputs


@dataclasses.dataclass
class SourceInput:
    """One input as the source declares it; ``shape``/``dtype`` ``None`` when unknown."""

    name: str
    shape: list[int | None] | None
    dtype: Any = None


def build(
    source: Sequence[SourceInput], inputs: Any = None
) -> tuple[list[Any], dict[str, dict[int, str]]]:
    """The ``tf.TensorSpec`` signature and ``{input: {axis: symbol}}`` for ``source``.

    Args:
        source: the inputs the source declares.
        inputs: ``None`` or a list of :class:`InputSpec` / ``"NAME:SHAPE[:DTYPE]"``;
            matched to ``source`` by name (an unknown name is an error).

    Raises:
        InputError: a spec names no input, or an input's shape or dtype is unknown
            and no spec gives it.
    """
    import tensorflow as tf

    specs = _specs_by_name(source, inputs)
    signature = []
    user_shapes = {}
    for inp in source:
        spec = specs.get(inp.name)
        shape = _merged_shape(inp, spec)
        # InputSpec always carries a dtype (float32 by default): the source's own wins when known
        dtype = inp.dtype if inp.dtype is not None else (spec.dtype if spec is not None else None)
        if dtype is None:
            raise InputError(f"the dtype of input {inp.name!r} is unknown", "give it with --input NAME:SHAPE:DTYPE")
        if spec is not None and spec.shape is not None:
            user_shapes[inp.name] = spec.shape
        signature.append(tf.TensorSpec(shape, tf.as_dtype(dtype), name=inp.name))
    shapes = [s.shape.as_list() for s in signature]
    return signature, naming.input_symbols([i.name for i in source], shapes, user_shapes)


def _specs_by_name(source: Sequence[SourceInput], inputs: Any) -> dict[str, InputSpec]:
    inputs = normalize_inputs(inputs) or []
    if isinstance(inputs, dict) or not all(isinstance(i, InputSpec) for i in inputs):
        raise InputError("TensorFlow sources take input specs (NAME:SHAPE[:DTYPE]), not example values")
    known = {i.name for i in source}
    unknown = [s.name for s in inputs if s.name not in known]
    if unknown:
        raise InputError(
            f"no input named {', '.join(map(repr, unknown))}", f"the inputs are: {', '.join(i.name for i in source)}"
        )
    return {s.name: s for s in inputs}


def _merged_shape(inp: SourceInput, spec: InputSpec | None) -> list[int | None]:
    if spec is None or spec.shape is None:
        if inp.shape is None:
            raise InputError(f"the shape of input {inp.name!r} is unknown", "give it with --input NAME:SHAPE")
        return list(inp.shape)
    given = [d if isinstance(d, int) else None for d in spec.shape]
    if inp.shape is not None:
        if len(inp.shape) != len(given):
            raise InputError(f"input {inp.name!r} has rank {len(inp.shape)}, the spec gives {len(given)} dims")
        for axis, (own, new) in enumerate(zip(inp.shape, given, strict=True)):
            if own is not None and new is not None and own != new:
                raise InputError(f"dim {axis} of input {inp.name!r} is {own}, the spec gives {new}")
            given[axis] = own if new is None else new
    return given
