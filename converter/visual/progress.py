"""Progress for long work: a live display on a terminal, and nothing at all elsewhere.

    with progress.stage("loading") as p:              # unknown amount of work: a spinner
        ...
    with progress.stage("checking parity", total=3) as p:
        for batch in batches:
            ...
            p.advance()

Stages may nest; they share one display, a row each, which disappears when the
outermost stage ends (the command's own summary follows it). By default the
display shows only when stdout and stderr are both terminals and the ``CI``
environment variable is unset, so pipes, files, CI logs and ``--json`` output
never see a byte of it; :func:`configure` overrides that (``--json`` calls
``configure(False)``).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_settings: dict[str, Any] = {"enabled": None, "console": None}
_display: dict[str, Any] = {"progress": None, "depth": 0}


def configure(enabled: bool | None = None, *, console: Any = None) -> None:
    """Switch the display on (``True``), off (``False``) or back to detection (``None``).

    Args:
        enabled: ``None`` shows it only on a terminal outside CI (see the module docstring).
        console: the ``rich.console.Console`` to draw on (default: a new one on
            stderr); with one given, detection asks it whether it is a terminal.
    """
    _settings["enabled"] = enabled
    _settings["console"] = console


def is_enabled() -> bool:
    """Whether a stage started now would be shown."""
    if _settings["enabled"] is not None:
        return bool(_settings["enabled"])
    if os.environ.get("CI"):
        return False
    console = _settings["console"]
    if console is not None:
        return bool(console.is_terminal)
    return _isatty(sys.stdout) and _isatty(sys.stderr)


class Stage:
    """A running stage: count work done with :meth:`advance`; counts are kept when hidden too."""

    def __init__(self, name: str, total: int | None, task: Any = None) -> None:
        self.name = name
        self.total = total
        self.completed = 0
        self._task = task

    def advance(self, n: int = 1) -> None:
        """Record ``n`` more units of work done."""
        self.completed += n
        if self._task is not None:
            _display["progress"].update(self._task, completed=self.completed)

    def update(self, *, total: int | None = None, description: str | None = None) -> None:
        """Change the total (once it is known) or the text shown."""
        if total is not None:
            self.total = total
        if description is not None:
            self.name = description
        if self._task is not None:
            _display["progress"].update(self._task, total=self.total, description=_markup(self.name))


@contextlib.contextmanager
def stage(name: str, total: int | None = None) -> Iterator[Stage]:
    """Show ``name`` (and ``completed/total`` counts) while the block runs.

    Args:
        name: what is being done (``"loading"``, ``"optimizing"``).
        total: units of work, if known; else a spinner and a running count.

    Example:
        >>> with stage("converting", total=2) as p:
        ...     p.advance(2)
        >>> p.completed
        2
    """
    if not is_enabled():
        yield Stage(name, total)
        return
    progress = _open()
    task = progress.add_task(_markup(name), total=total)
    try:
        yield Stage(name, total, task)
    finally:
        progress.remove_task(task)
        _close()


def track(items: Iterable[T], name: str, total: int | None = None) -> Iterator[T]:
    """Yield ``items`` inside a :func:`stage`, advancing it once per item."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with stage(name, total) as p:
        for item in items:
            yield item
            p.advance()


def _open() -> Any:
    """The shared display, started by the outermost stage."""
    if _display["progress"] is None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        console = _settings["console"] or Console(stderr=True)
        progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=console, transient=True,
        )
        progress.start()
        _display["progress"] = progress
    _display["depth"] += 1
    return _display["progress"]


def _close() -> None:
    _display["depth"] -= 1
    if _display["depth"] == 0:
        _display["progress"].stop()
        _display["progress"] = None


def _markup(text: str) -> str:
    from rich.markup import escape

    return escape(text)  # a model path may hold [brackets]


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # replaced or closed streams
        return False
