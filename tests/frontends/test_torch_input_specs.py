"""The ``--input NAME:SHAPE[:DTYPE]`` syntax with symbol ranges (``seq=1..512``), as the docs state it.

The forms without ranges parse exactly as ``ir.parse_shape`` does (the syntax every
front end already accepts); a range is written once, after its symbol; every
malformed range is refused with a message that shows the right form.
"""

from __future__ import annotations

import pytest

from converter.errors import InputError
from converter.inputs import InputSpec, normalize_inputs, symbol_bounds
from ir.symbols import parse_shape


@pytest.mark.parametrize("shape", ["1x3x224x224", "batch x 3 x 224 x 224", "batch,seq", "?x3", "scalar", "[batch, 4]"])
def test_shapes_without_ranges_parse_as_before(shape: str) -> None:
    spec = InputSpec.parse(f"x:{shape}:int64")
    assert spec == InputSpec("x", tuple(parse_shape(shape)), "int64")
    assert spec.bounds == {}


@pytest.mark.parametrize(("text", "shape", "bounds"), [
    ("ids:batch x seq=..512:int64", ("batch", "seq"), {"seq": (None, 512)}),
    ("ids:batchxseq=1..512:int64", ("batch", "seq"), {"seq": (1, 512)}),
    ("x:batch=2.. x 3 x 224 x 224", ("batch", 3, 224, 224), {"batch": (2, None)}),
    ("x:batch=1..8,seq=..64", ("batch", "seq"), {"batch": (1, 8), "seq": (None, 64)}),
    ("x:[seq=..64, seq]", ("seq", "seq"), {"seq": (None, 64)}),
])
def test_ranges_follow_their_symbol(text: str, shape: tuple[object, ...], bounds: dict[str, object]) -> None:
    spec = InputSpec.parse(text)
    assert (spec.shape, spec.bounds) == (shape, bounds)
    assert InputSpec.parse(str(spec)) == spec  # str() writes the same syntax back


@pytest.mark.parametrize(("text", "says"), [
    ("ids:batch x seq<=512", "SYMBOL=MIN..MAX"),
    ("ids:batch x seq=512", "SYMBOL=MIN..MAX"),
    ("ids:batch x 4=..8", "SYMBOL=MIN..MAX"),
    ("ids:batch x seq=..", "neither end"),
    ("ids:batch x seq=8..8", "empty or one size"),
    ("ids:batch x seq=..1", "at least 2"),
    ("ids:seq=..8 x seq=..9", "two ranges"),
])
def test_bad_ranges_are_refused_with_the_right_form(text: str, says: str) -> None:
    with pytest.raises(InputError, match=says.replace(".", r"\.")):
        InputSpec.parse(text)


def test_the_syntax_error_shows_a_range() -> None:
    with pytest.raises(InputError, match=r"seq=1\.\.512"):
        InputSpec.parse("ids")


def test_api_ranges_must_name_a_symbol_of_the_shape() -> None:
    assert InputSpec("ids", ("batch", "seq"), "int64", {"seq": (1, 64)}).bounds == {"seq": (1, 64)}
    with pytest.raises(InputError, match="not a symbol of its shape"):
        InputSpec("ids", ("batch", 7), "int64", {"seq": (1, 64)})


def test_specs_stay_hashable_and_ranges_merge_across_inputs() -> None:
    a, b = normalize_inputs(["a:batch x seq=..64", "b:batch x seq"])
    assert len({a, b}) == 2
    assert symbol_bounds([a, b]) == {"seq": (None, 64)}
    with pytest.raises(InputError, match="two ranges"):
        symbol_bounds([a, InputSpec.parse("c:seq=..32")])
