"""The command's stderr filter: TensorFlow's native start-up lines dropped, everything else kept.

A child process writes real TensorFlow noise lines (as TF 2.21 prints them) mixed
with ordinary lines, a partial line and a Python warning to fd 2 inside
``filtered_stderr``, with stderr a pipe and with stderr a terminal (a
pseudo-terminal: progress displays must still see a terminal).
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]

_CHILD = textwrap.dedent("""
    import os, sys, warnings
    from converter.cli_stderr import filtered_stderr
    with filtered_stderr():
        print("tty" if sys.stderr.isatty() else "no tty", file=sys.stderr, flush=True)
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n")
        os.write(2, b"I0000 00:00:1795957329.441957   10737 port.cc:153] oneDNN custom operations are on.\\n")
        os.write(2, b"kept line\\n")
        os.write(2, b"To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow "
                    b"with the appropriate compiler flags.\\n")
        warnings.warn("a real warning")
        sys.stderr.write("partial line without newline")
    print("after", file=sys.stderr)
""")


def _check(text: str, tty: bool) -> None:
    assert ("tty" if tty else "no tty") in text.splitlines()[0]
    assert "kept line" in text and "a real warning" in text and "partial line without newline" in text
    assert "after" in text
    for noise in ("absl::InitializeLog", "oneDNN custom operations", "To enable the following instructions"):
        assert noise not in text


def test_noise_is_dropped_when_stderr_is_a_pipe() -> None:
    done = subprocess.run([sys.executable, "-c", _CHILD], cwd=ROOT, capture_output=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    _check(done.stderr.decode(), tty=False)


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs pseudo-terminals")
def test_noise_is_dropped_and_a_terminal_stays_a_terminal() -> None:
    master, slave = os.openpty()
    child = subprocess.Popen([sys.executable, "-c", _CHILD], cwd=ROOT, stderr=slave, stdout=subprocess.DEVNULL,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the terminal's other end closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert child.wait(timeout=60) == 0
    _check(b"".join(chunks).decode().replace("\r\n", "\n"), tty=True)
