"""Dynamic dims between input specs, ``torch.export`` and the IR.

1. Each spec symbol becomes one ``torch.export.Dim``, with the spec's range
   (``seq=1..512`` -> ``Dim("seq", min=1, max=512)``) and an example size inside it.
2. When torch.export refuses the dims because the model itself only accepts a
   range (``seq = Dim('seq', max=64)``: a 64-row position table), the export is
   retried with that range (:func:`model_imposed_bounds`); the range is recorded
   with the model like a user's. Any other suggested fix (``batch = 4``, ``b = a``)
   would change what the user asked for: :func:`constraint_error` turns it into one
   ``InputError`` that gives the ``--input`` to use instead. A guard equating sizes
   computed two ways (``trunc(2.0 * float(w)) == 2 * w``: a float ``scale_factor``
   against integer arithmetic) holds for every size, but torch cannot prove it: the
   error says to compute both the same way. A branch on tensor values (``if
   x.sum() > 0``) is named with the user's line and ``torch.where`` / ``torch.cond``.
   A guard that excludes one size (``seq - 1 != 1``: a dim that would broadcast
   if it were 1, or ``seq != 64``: a branch taken at the table's last row) comes
   with no suggested fix; the size is cut off the nearer end of the range
   (``seq=3..512``, ``seq=..63``), which keeps every other size the user asked for.
3. The names of the program's symbols (``s27``) are recovered from the export's
   shape environment, which remembers each ``Dim``'s name while the program
   lives (a ``.pt2`` file does not keep them, see :func:`~converter.frontends.torch.pt2.saved_dim_names`).
4. The ranges torch settled on become the model's recorded symbol bounds.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any

import torch

import ir
from converter.errors import InputError
from converter.inputs import Bound, InputSpec

#: Example sizes are picked below this unless a range asks for more.
_MAX_EXAMPLE = 64
#: At most this many sizes are cut off a range's end to leave out a size a guard excludes.
_MAX_CUT = 2

_FIXES = re.compile(r"Suggested fixes:\n((?:[ \t]+\S.*\n?)+)")
_FIX = re.compile(r"\s*([A-Za-z_]\w*) = (.+?)\s*")
_DIM = re.compile(r"Dim\('(\w+)'(?:, min=(\d+))?(?:, max=(\d+))?\)")
#: ``Not all values of seq = L['x'].size()[1] in the specified range ... satisfy the generated guard G.``
_UNSATISFIED = re.compile(r"Not all values of (\w+) = (\S+) in the specified range.*? satisfy the generated guard (.+)\.\s*$",
                          re.MULTILINE)


def make_dim(symbol: str, bound: Bound | None) -> Any:
    """``torch.export.Dim(symbol)`` with the spec's range (at least 1 when no minimum is given)."""
    lo, hi = bound or (None, None)
    return torch.export.Dim(symbol, min=1 if lo is None else lo, max=hi)


def example_size(bound: Bound | None, avoid: set[int]) -> int:
    """A size >= 2 inside ``bound``, unlike those in ``avoid`` where possible (so no dims get unified)."""
    lo, hi = bound or (None, None)
    first = max(2, lo or 0)
    last = hi if hi is not None else max(first, _MAX_EXAMPLE)
    candidates = range(first, min(last, first + 4 * _MAX_EXAMPLE) + 1)
    return next((n for n in candidates if n not in avoid), first)


def dim_names(ep: Any) -> dict[str, str]:
    """The export's symbols (``s27``) -> the names of the ``Dim``s they came from, where torch kept them.

    torch.export records each Dim's name against the input dim it was given for
    (``L['x'].size()[1]`` -> ``seq``) in the program's shape environment, which
    lives as long as the ExportedProgram object (not in a saved file).
    """
    names: dict[str, str] = {}
    for node in ep.graph.nodes:
        if node.op != "placeholder":
            continue
        for d in getattr(node.meta.get("val"), "shape", ()):
            if isinstance(d, torch.SymInt) and d.node.expr.is_Symbol and d.node.expr.name not in names:
                name = _debug_name(d.node.shape_env, d.node.expr)
                if name:
                    names[d.node.expr.name] = name
    return names


def _debug_name(env: Any, symbol: Any) -> str | None:
    """The Dim name the shape environment knows for ``symbol`` (internal tables: absent -> None)."""
    debug = getattr(env, "source_name_to_debug_name", None) or {}
    for source in (getattr(env, "var_to_sources", None) or {}).get(symbol, ()):
        name = debug.get(getattr(source, "name", None))
        if isinstance(name, str) and name.isidentifier():
            return name
    return None


def symbol_ranges(ep: Any, symbols: dict[str, str]) -> dict[str, Bound]:
    """The ranges torch.export settled on, by the user's symbol names (an open top is ``None``)."""
    ranges: dict[str, Bound] = {}
    for expr, vr in ep.range_constraints.items():
        user = symbols.get(getattr(expr, "name", ""))
        if user is None or not vr.lower.is_Integer:
            continue
        ranges[user] = (int(vr.lower), int(vr.upper) if vr.upper.is_Integer else None)
    return ranges


# ---- torch.export's suggested fixes -------------------------------------------------


def constraint_error(error: BaseException, specs: Sequence[InputSpec] | None) -> InputError | None:
    """An ``InputError`` naming the ``--input`` to use, from torch.export's suggested fixes; None if it has none.

    Args:
        error: what ``torch.export.export`` raised.
        specs: the input specs the dims came from (``None``: example tensors with
            the user's own ``dynamic_shapes``, so the hint speaks of ``Dim``s).
    """
    found = _FIXES.search(str(error))
    fixes = [m.groups() for m in map(_FIX.fullmatch, found.group(1).splitlines()) if m] if found else []
    if not fixes:
        return _guard_error(error)
    head = str(error).strip().splitlines()[0].split(" For more information")[0].rstrip("!")
    message = f"torch.export failed: {head}: " + "; ".join(_describe(name, fix) for name, fix in fixes)
    if specs is None:
        return InputError(message, "in dynamic_shapes, use " + ", ".join(f"{n} = {f}" for n, f in fixes))
    try:
        changed = _apply_fixes(_named_specs(specs), fixes)
    except InputError:  # a fix no spec can express (a range of one size): torch's own words
        changed = []
    if not changed:
        return InputError(message, "torch suggests " + ", ".join(f"{n} = {f}" for n, f in fixes))
    return InputError(message, "use " + " ".join(f"--input '{s}'" for s in changed))


def model_imposed_bounds(error: BaseException, specs: Sequence[InputSpec] | None) -> list[InputSpec] | None:
    """``specs`` with the ranges torch.export found the model imposes, when every suggested fix is a range.

    A range is what the model accepts anyway (slicing a 512-row table by ``seq``
    fails above 512 in eager PyTorch too), so taking it keeps the user's request.
    Sizes a guard excludes near an end of the range (:func:`excluded_sizes`) are cut
    off it. ``None`` when there is no fix, a fix that is not a range, an excluded size
    too far inside the range, or nothing changes.
    """
    if specs is None:
        return None
    found = _FIXES.search(str(error))
    fixes = [m.groups() for m in map(_FIX.fullmatch, found.group(1).splitlines()) if m] if found else []
    ranges = [(name, _DIM.fullmatch(fix)) for name, fix in fixes]
    excluded = excluded_sizes(error)
    if not (ranges or excluded) or not all(dim for _, dim in ranges):
        return None
    named = bounded = _named_specs(specs)
    try:
        for name, dim in ranges:
            bounded = _bounded(bounded, name, (_int(dim.group(2)), _int(dim.group(3))))
        for name, size in excluded:
            bounded = _bounded(bounded, name, _without(_bound_of(bounded, name), size))
    except InputError:
        return None
    return bounded if bounded != named else None


def excluded_sizes(error: BaseException) -> list[tuple[str, int]]:
    """The (symbol, size) pairs that torch.export's unsatisfied guards of the form ``d + k != n`` exclude.

    >>> excluded_sizes(Exception("... Not all values of seq = L['x'].size()[1] in the specified range "
    ...                          "seq <= 512 satisfy the generated guard ((-1) + L['x'].size()[1]) != 1."))
    [('seq', 2)]
    """
    pairs = []
    for name, source, guard in _UNSATISFIED.findall(str(error)):
        size = _excluded_by(guard, source)
        if size is not None and (name, size) not in pairs:
            pairs.append((name, size))
    return pairs


def _excluded_by(guard: str, source: str) -> int | None:
    """``n - k`` for a guard ``source != n`` or ``(k + source) != n``; None for any other guard."""
    lhs, sep, rhs = guard.rpartition(" != ")
    if not sep or not rhs.strip().lstrip("-").isdigit():
        return None
    lhs = lhs.strip()
    if lhs == source:
        return int(rhs)
    offset = re.fullmatch(r"\(\(?(-?\d+)\)? \+ " + re.escape(source) + r"\)", lhs)
    return int(rhs) - int(offset.group(1)) if offset else None


def _bound_of(specs: list[InputSpec], symbol: str) -> Bound:
    return next((s.bounds[symbol] for s in specs if symbol in s.bounds), (None, None))


def _without(bound: Bound, size: int) -> Bound:
    """``bound`` with ``size`` cut off its nearer end (an open range's far end is unknown: the lower one)."""
    lo, hi = bound[0] if bound[0] is not None else 1, bound[1]
    if hi is not None and hi - size < size - lo:
        cut = (lo, size - 1)
    else:
        cut = (size + 1, hi)
    dropped = (cut[0] - lo) + (hi - cut[1] if hi is not None else 0)
    if size < lo or (hi is not None and size > hi) or dropped > _MAX_CUT or (hi is not None and cut[0] > cut[1]):
        raise InputError(f"{size} cannot be cut off {lo}..{hi}")  # a guard in mid-range: not a range problem
    return cut


def _guard_error(error: BaseException) -> InputError | None:
    """An ``InputError`` quoting the first guard torch.export found some sizes of a symbol break,
    or naming the line that branches on tensor values; None if neither."""
    found = _UNSATISFIED.search(str(error))
    if found is None:
        return _data_dependent_error(error)
    name, source, guard = found.groups()
    guard = guard.replace(source, name)
    message = f"torch.export failed: the model needs {guard} for some sizes of {name}"
    if "sym_float" in guard:
        return InputError(
            message + ": sizes computed in two ways (through a float, as interpolate's scale_factor does, and "
            "with integers) that torch cannot prove equal",
            f"compute both the same way (e.g. F.interpolate(x, size=(2 * h, 2 * w)) where an integer size meets "
            f"it), or give {name} a fixed size")
    return InputError(message, f"give {name} a range where that holds (--input NAME:...x {name}=MIN..MAX), or a fixed size")


#: torch.export's "Could not guard on data-dependent expression", and the user's frame it quotes.
_DATA_DEPENDENT = re.compile(r"Could not guard on data-dependent expression")
_CALL = re.compile(r'The following call raised this error:\n\s*File "([^"]+)", line (\d+), in \w+\n\s*(.+)')


def _data_dependent_error(error: BaseException) -> InputError | None:
    """An ``InputError`` for Python control flow on tensor values, naming the user's line if torch quotes it."""
    text = str(error)
    if not _DATA_DEPENDENT.search(text):
        return None
    call = _CALL.search(text)
    where = f" ({call.group(1)}:{call.group(2)}: {call.group(3).strip()})" if call else ""
    return InputError(f"torch.export failed: forward branches in Python on a tensor's values{where}, "
                      "which an exported graph cannot hold",
                      "compute both sides and pick with torch.where, or use torch.cond")


def _describe(name: str, fix: str) -> str:
    dim = _DIM.fullmatch(fix)
    if dim:
        lo, hi = dim.group(2), dim.group(3)
        if lo and hi:
            return f"the model accepts {name} only from {lo} to {hi}"
        return f"the model accepts {name} only up to {hi}" if hi else f"the model accepts {name} only from {lo}"
    if fix.isdigit():
        return f"the model fixes {name} to {fix}"
    if fix.isidentifier():
        return f"{name} must equal {fix}"
    return f"{name} must be {fix}"


def _named_specs(specs: Sequence[InputSpec]) -> list[InputSpec]:
    """Specs whose unnamed dynamic dims carry the names the export gave them (``x_1``)."""
    return [
        dataclasses.replace(s, shape=tuple(ir.default_symbol(s.name, a) if d is None else d for a, d in enumerate(s.shape or ())))
        for s in specs
    ]


def _apply_fixes(specs: list[InputSpec], fixes: list[tuple[str, str]]) -> list[InputSpec]:
    """The specs that the fixes change, changed: a range added, a symbol made a size or another symbol."""
    before = list(specs)
    for name, fix in fixes:
        dim = _DIM.fullmatch(fix)
        if dim:
            specs = _bounded(specs, name, (_int(dim.group(2)), _int(dim.group(3))))
        elif fix.isdigit() or fix.isidentifier():
            specs = _substituted(specs, name, int(fix) if fix.isdigit() else fix)
    return [s for s, old in zip(specs, before, strict=True) if s != old]


def _bounded(specs: list[InputSpec], symbol: str, bound: Bound) -> list[InputSpec]:
    """``bound`` given to ``symbol`` in the first spec that names it, removed from the others."""
    owner = next((i for i, s in enumerate(specs) if symbol in (s.shape or ())), None)
    out = []
    for i, s in enumerate(specs):
        bounds = {k: v for k, v in s.bounds.items() if k != symbol}
        if i == owner:
            lo, hi = s.bounds.get(symbol, (None, None))
            bounds[symbol] = (bound[0] if bound[0] is not None else lo, bound[1] if bound[1] is not None else hi)
        out.append(dataclasses.replace(s, bounds=bounds))
    return out


def _substituted(specs: list[InputSpec], symbol: str, value: int | str) -> list[InputSpec]:
    """``symbol`` replaced by a size or another symbol everywhere (its range dropped)."""
    return [
        dataclasses.replace(s, shape=tuple(value if d == symbol else d for d in s.shape or ()),
                            bounds={k: v for k, v in s.bounds.items() if k != symbol})
        for s in specs
    ]


def _int(text: str | None) -> int | None:
    return int(text) if text else None
