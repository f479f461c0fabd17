"""crossgraph's user-facing errors.

Every error a user can cause (bad path, bad file, unsupported op, unwritable
destination) is a :class:`CrossgraphError`: one message saying what is wrong,
where, and what to do. The CLI prints it on one line (no traceback unless
``--debug``) and exits with its ``exit_code``: 2 for bad input or an unsupported
model, 1 for a parity failure.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable


class CrossgraphError(Exception):
    """A failure the user can act on.

    Args:
        message: what is wrong, and where (the path, the node).
        hint: what to do about it.
        exit_code: the CLI exit status (2: bad input or unsupported model).
    """

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None, *, exit_code: int | None = None) -> None:
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code
        super().__init__(message if not hint else f"{message}; {hint}")


class InputError(CrossgraphError):
    """The source, destination or an option is unusable (missing, corrupt, unknown format)."""


class NotYetSupportedError(CrossgraphError):
    """A format or conversion path that crossgraph does not implement yet."""


class UnsupportedOpsError(CrossgraphError):
    """The model uses ops with no translation; lists every one at once, with counts.

    Args:
        framework: the source framework (``"PyTorch"``, ``"TensorFlow"``, ``"ONNX"``).
        ops: one entry per occurrence: ``(op name, source name of the node)``.
    """

    def __init__(self, framework: str, ops: Iterable[tuple[str, str | None]], hint: str | None = None) -> None:
        ops = list(ops)
        self.ops = ops
        counts = Counter(op for op, _ in ops)
        where: dict[str, list[str]] = {}
        for op, src in ops:
            if src:
                where.setdefault(op, []).append(src)
        parts = []
        for op, n in sorted(counts.items()):
            names = where.get(op, [])
            shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
            parts.append(f"{op} x{n}" + (f" ({shown})" if shown else ""))
        message = f"{len(counts)} unsupported {framework} op(s): " + "; ".join(parts)
        super().__init__(message, hint or "file an issue with this list, or convert from another format")


class ParityError(CrossgraphError):
    """The converted model's outputs differ from the source's beyond tolerance.

    ``report`` holds the :class:`converter.parity.ParityReport` when there is one.
    """

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None, *, report: object = None) -> None:
        super().__init__(message, hint)
        self.report = report
