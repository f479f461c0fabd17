"""Keep the frameworks' native start-up chatter off the command's stderr.

TensorFlow 2.21 writes lines such as ``I0000 ... port.cc:153] oneDNN custom
operations are on ...`` and ``WARNING: All log messages before
absl::InitializeLog() is called are written to STDERR`` from C++ before its
logging is configured, so ``TF_CPP_MIN_LOG_LEVEL`` cannot silence them, and
every process that imports TensorFlow (the command, and the parity check's
loader subprocesses) prints them again. :func:`filtered_stderr` routes file
descriptor 2 through a pipe for the life of the command and drops exactly those
lines; everything else (crossgraph's own errors, warnings and tracebacks) passes
through unchanged and in order. When stderr is a terminal the pipe is a
pseudo-terminal of the same size, so progress displays still see a terminal;
partial lines that cannot be noise (a progress bar's redraws) pass at once.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from collections.abc import Iterator

#: Lines dropped: absl/glog info lines (``I`` + MMDD) and the notices TensorFlow prints on import.
NOISE = re.compile(
    rb"^(I\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w.]+:\d+\] "
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|To enable the following instructions: .* rebuild TensorFlow"
    rb"|INFO: Created TensorFlow Lite XNNPACK delegate)"
)


@contextlib.contextmanager
def filtered_stderr() -> Iterator[None]:
    """Within the block, lines written to fd 2 that match :data:`NOISE` are dropped.

    Does nothing when stderr is not a real file descriptor (tests, embedding).
    """
    try:
        sys.stderr.flush()
        original = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    read_end, write_end = _channel(original)
    os.dup2(write_end, 2)
    os.close(write_end)
    pump = threading.Thread(target=_forward, args=(read_end, original), daemon=True)
    pump.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(original, 2)  # closes the pipe's last write end held here: the pump sees EOF
        pump.join(timeout=5)
        os.close(original)


#: How noise lines begin: a partial line that does not begin so is forwarded at once.
_NOISE_STARTS = (b"I0", b"I1", b"WARNING: All log", b"To enable the following", b"INFO: Created TensorFlow Lite")


def _channel(original: int) -> tuple[int, int]:
    """``(read end, write end)``: a pseudo-terminal like ``original`` if it is a terminal, else a pipe."""
    if not os.isatty(original):
        return os.pipe()
    import fcntl
    import pty
    import termios

    master, slave = pty.openpty()
    attrs = termios.tcgetattr(slave)
    attrs[1] &= ~termios.ONLCR  # keep "\n" as written; the real terminal translates it
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    with contextlib.suppress(OSError):
        fcntl.ioctl(slave, termios.TIOCSWINSZ, fcntl.ioctl(original, termios.TIOCGWINSZ, b"\0" * 8))
    return master, slave


def _could_be_noise(partial: bytes) -> bool:
    return any(start[: len(partial)] == partial[: len(start)] for start in _NOISE_STARTS)


def _forward(read_end: int, target: int) -> None:
    """Copy lines from the channel to ``target`` except the noise; ends at EOF (EIO for a pty)."""
    pending = b""
    try:
        while True:
            try:
                chunk = os.read(read_end, 65536)
            except OSError:  # a pseudo-terminal whose other end closed
                break
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            kept = b"".join(line + b"\n" for line in lines if not NOISE.match(line))
            if pending and not _could_be_noise(pending):
                kept, pending = kept + pending, b""
            if kept:
                os.write(target, kept)
        if pending and not NOISE.match(pending):
            os.write(target, pending)
    finally:
        os.close(read_end)
