"""Progress display: shown on terminals, silent in pipes, CI and --json."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from converter.visual import progress

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture(autouse=True)
def _restore(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    yield
    progress.configure(None)


def _terminal() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(force_terminal=True, file=buffer, width=100), buffer


def _work() -> tuple[int, int]:
    with progress.stage("loading [model.onnx]") as outer:
        with progress.stage("checking parity", total=3) as inner:
            for _ in range(3):
                inner.advance()
        outer.advance(5)
    return outer.completed, inner.completed


def test_terminal_shows_each_stage_with_its_counts():
    console, buffer = _terminal()
    progress.configure(None, console=console)
    assert progress.is_enabled()
    assert _work() == (5, 3)
    text = _ANSI.sub("", buffer.getvalue())
    assert "loading [model.onnx]" in text  # brackets are text, not rich markup
    assert "checking parity" in text
    assert re.search(r"\d/3", text) and "/?" in text


def test_silent_in_pipes(capsys):
    progress.configure(None)  # stdout and stderr are pytest's captures, not terminals
    assert not progress.is_enabled()
    assert _work() == (5, 3)
    assert list(progress.track([1, 2], "batches")) == [1, 2]
    out, err = capsys.readouterr()
    assert out == "" and err == ""


def test_silent_in_ci_even_on_a_terminal(monkeypatch):
    monkeypatch.setenv("CI", "true")
    console, buffer = _terminal()
    progress.configure(None, console=console)
    assert not progress.is_enabled()
    _work()
    assert buffer.getvalue() == ""


def test_switched_off_for_json_and_on_when_asked(capsys):
    console, buffer = _terminal()
    progress.configure(False, console=console)
    _work()
    assert buffer.getvalue() == ""
    progress.configure(True, console=console)
    assert list(progress.track(range(4), "batches")) == [0, 1, 2, 3]
    assert "batches" in _ANSI.sub("", buffer.getvalue())
    assert capsys.readouterr() == ("", "")  # only the given console is written to


def test_display_closes_after_an_error():
    console, buffer = _terminal()
    progress.configure(True, console=console)
    with pytest.raises(RuntimeError), progress.stage("saving"):
        raise RuntimeError("disk full")
    assert progress._display["progress"] is None and progress._display["depth"] == 0
    with progress.stage("again", total=1) as p:  # a new display starts cleanly
        p.advance()
    assert "again" in _ANSI.sub("", buffer.getvalue())
