"""Opset rules: the default opset and versioned registries of per-op functions.

Kernels (one table per runtime) and front-end / back-end translations (one table
per source or target framework) are all :class:`OpRegistry` instances. An entry is
keyed by op name and the opset version it applies *from*; lookup for a model at
opset ``v`` takes the newest entry with ``since <= v``, the rule ONNX itself uses
to version operators. Entries may also be registered for one device (``"cuda"``);
a device entry takes precedence over the common one on that device.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Iterator
from typing import Any

import onnx_ir

#: The opset front ends emit when they build new graphs. onnxruntime 1.31 loads
#: opsets up to 26, but several ops of opsets 22-26 have no kernel in it yet (and
#: tf2onnx / torch.export decompositions target <= 21), so 21 is the newest opset
#: every emitted model runs on completely.
DEFAULT_OPSET = 21

_ONNX_DOMAINS = ("", "ai.onnx")


def model_opset(model: onnx_ir.Model, domain: str = "") -> int:
    """The model's opset version for ``domain`` (the default ONNX domain if omitted).

    Raises:
        KeyError: the model does not import ``domain``.
    """
    imports = model.opset_imports
    if domain in _ONNX_DOMAINS:
        for d in _ONNX_DOMAINS:
            if d in imports:
                return imports[d]
    return imports[domain]


def op_key(op_type: str, domain: str = "") -> str:
    """The registry key of an op: its name in the default ONNX domain, ``"domain::Op"`` in any other.

    >>> op_key("Relu"), op_key("TreeEnsemble", "ai.onnx.ml")
    ('Relu', 'ai.onnx.ml::TreeEnsemble')
    """
    return op_type if domain in _ONNX_DOMAINS else f"{domain}::{op_type}"


def split_op_key(key: str) -> tuple[str, str]:
    """``(domain, op_type)`` of a registry key made by :func:`op_key` (domain ``""`` for the default one)."""
    domain, sep, op_type = key.rpartition("::")
    return (domain, op_type) if sep else ("", key)


@functools.cache
def contrib_ops(domain: str) -> frozenset[str]:
    """The ops onnxruntime defines in ``domain`` (``"com.microsoft"``: its contrib ops), if it is installed."""
    try:
        from onnxruntime.capi.onnxruntime_pybind11_state import get_all_operator_schema
    except ImportError:
        return frozenset()
    return frozenset(s.name for s in get_all_operator_schema() if s.domain == domain)


def op_schema(key: str, version: int) -> Any:
    """The schema of a registry key at ``version``: ``onnx.defs``' or, for onnxruntime's
    contrib domains, onnxruntime's (inputs and outputs carry ``.option``). ``None`` if unknown."""
    import onnx.defs

    domain, op_type = split_op_key(key)
    try:
        return onnx.defs.get_schema(op_type, version, domain)
    except onnx.defs.SchemaError:
        pass
    if op_type not in contrib_ops(domain):
        return None
    from onnxruntime.capi.onnxruntime_pybind11_state import get_all_operator_schema

    found = [s for s in get_all_operator_schema() if s.domain == domain and s.name == op_type and s.since_version <= version]
    return max(found, key=lambda s: s.since_version, default=None)


def node_opset(model: onnx_ir.Model, node: onnx_ir.Node) -> int:
    """The version of ``node``'s domain that ``model`` imports (``DEFAULT_OPSET`` / 1 when it imports none)."""
    try:
        return model_opset(model, node.domain)
    except KeyError:
        return DEFAULT_OPSET if node.domain in _ONNX_DOMAINS else 1


@dataclasses.dataclass(frozen=True)
class Registration:
    """One registered function: ``op`` from opset ``since``, optionally for one device."""

    op: str
    since: int
    device: str | None
    fn: Callable[..., Any]


class OpRegistry:
    """A table of functions keyed by op name, opset version and device.

    Args:
        name: what the table is for, used in error messages (``"torch kernels"``).
        validate: how op names are checked when registered: ``"onnx"`` requires an
            op of the default ONNX domain known to ``onnx.defs``; a compiled regex
            or pattern string requires a full match (``r"aten::\\w+(\\.\\w+)?"``);
            ``None`` accepts any name.

    Example:
        >>> table = OpRegistry("demo kernels")
        >>> @table.register("Relu", since=14)
        ... def relu(x): return x
        >>> table.lookup("Relu", opset=21).__name__
        'relu'
    """

    def __init__(self, name: str, *, validate: str | re.Pattern[str] | None = "onnx") -> None:
        self.name = name
        self._validate = re.compile(validate) if isinstance(validate, str) and validate != "onnx" else validate
        self._entries: dict[str, list[Registration]] = {}

    def register(
        self, op: str, *, since: int = 1, device: str | None = None
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator registering ``fn`` for ``op`` from opset ``since`` (and ``device``).

        Decorators stack when one body serves several ops or versions.

        Raises:
            ValueError: the op name is unknown, or ``(op, since, device)`` is taken.
        """
        self._check_name(op)

        def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
            entries = self._entries.setdefault(op, [])
            for e in entries:
                if e.since == since and e.device == device:
                    raise ValueError(
                        f"{self.name}: {op!r} (since opset {since}, device {device or 'any'}) "
                        f"is already registered by {e.fn.__module__}.{e.fn.__qualname__}"
                    )
            entries.append(Registration(op, since, device, fn))
            entries.sort(key=lambda e: e.since)
            return fn

        return decorate

    def _check_name(self, op: str) -> None:
        if self._validate is None:
            return
        if self._validate == "onnx":
            import onnx.defs

            domain, op_type = split_op_key(op)
            if not onnx.defs.has(op_type, domain) and op_type not in contrib_ops(domain):
                where = f"domain {domain!r}" if domain else "the ONNX default domain"
                raise ValueError(f"{self.name}: {op!r} is not an operator of {where}")
        elif not self._validate.fullmatch(op):
            raise ValueError(f"{self.name}: {op!r} does not match {self._validate.pattern!r}")

    def lookup(self, op: str, opset: int | None = None, device: str | None = None) -> Callable[..., Any]:
        """The function for ``op`` at ``opset`` on ``device``.

        Takes the newest registration with ``since <= opset``; among those, one
        registered for ``device`` wins over a common one of the same or older version.

        Raises:
            NotImplementedError: no registration applies; the message names op,
                table, opset and device.
        """
        reg = self.find(op, opset, device)
        if reg is None:
            where = f" at opset {opset}" if opset is not None else ""
            dev = f" on {device}" if device else ""
            known = sorted({e.since for e in self._entries.get(op, [])})
            extra = f" (registered from opsets {known})" if known else ""
            raise NotImplementedError(f"{self.name}: no entry for {op!r}{where}{dev}{extra}")
        return reg.fn

    def find(self, op: str, opset: int | None = None, device: str | None = None) -> Registration | None:
        """Like :meth:`lookup` but returns the :class:`Registration` or ``None``."""
        best: Registration | None = None
        for e in self._entries.get(op, []):
            if opset is not None and e.since > opset:
                continue
            if e.device is not None and e.device != device:
                continue
            if best is None or e.since > best.since or (e.since == best.since and e.device is not None):
                best = e
        return best

    def __contains__(self, op: object) -> bool:
        return op in self._entries

    def __iter__(self) -> Iterator[Registration]:
        for entries in self._entries.values():
            yield from entries

    def ops(self) -> list[str]:
        """Registered op names, sorted."""
        return sorted(self._entries)

    def __repr__(self) -> str:
        return f"OpRegistry({self.name!r}, {len(self._entries)} ops)"
