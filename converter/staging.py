"""Atomic writes: a destination is replaced only when the whole conversion succeeded.

The back end writes into a fresh temporary directory beside the destination (same
file system, so the final move is a rename). On success every staged entry is
moved into place; on any failure the temporary directory is removed and an
existing destination is left untouched. Nothing is ever written to the source.

Two conversions may write the same destination at once (threads or processes):
their staged writes never meet (each has its own temporary directory) and their
commits are serialized by an exclusive lock on a hidden lock file beside the
destination, so a model file and its external data always come from the same
writer: the last one to commit wins, whole.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import tempfile
from collections.abc import Iterator

from converter.errors import InputError


def check_destination(destination: pathlib.Path, *, is_dir: bool) -> None:
    """Refuse a destination that cannot be (re)written, before any work is done.

    Raises:
        InputError: its directory is missing or not writable, or it is an existing
            directory that a file would replace, or a non-empty directory that is
            not a SavedModel.
    """
    parent = destination.parent
    if not parent.is_dir():
        raise InputError(f"{destination}: the directory {parent} does not exist", "create it first, or choose another destination")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{destination}: the directory {parent} is not writable", "choose a destination you can write to")
    if destination.is_dir():
        if not is_dir:
            raise InputError(
                f"{destination}: is an existing directory",
                "give a file name for the destination (e.g. model.onnx)",
            )
        if any(destination.iterdir()) and not (destination / "saved_model.pb").exists():
            raise InputError(
                f"{destination}: is a non-empty directory that is not a SavedModel; refusing to replace it",
                "choose a new directory name",
            )
    elif destination.exists() and is_dir:
        raise InputError(f"{destination}: is an existing file; a SavedModel is a directory", "choose another destination")
    elif destination.exists() and not os.access(destination, os.W_OK):
        raise InputError(f"{destination}: exists and is not writable", "choose another destination")


@contextlib.contextmanager
def staged(destination: pathlib.Path) -> Iterator[pathlib.Path]:
    """Yield a temporary path to write ``destination``'s content to; commit on success.

    Files the back end writes beside the staged path (external data) are moved too.
    """
    destination = pathlib.Path(destination).absolute()
    try:
        tmpdir = pathlib.Path(tempfile.mkdtemp(prefix=f".{destination.name}.crossgraph-", dir=destination.parent))
    except OSError as e:
        raise InputError(f"{destination}: cannot write in {destination.parent} ({e.strerror})",
                         "choose a destination you can write to") from None
    try:
        try:
            yield tmpdir / destination.name
            with _commit_lock(destination):
                _commit(tmpdir, destination.parent)
        except OSError as e:
            raise InputError(f"{destination}: writing failed ({e.strerror or e})",
                             "check free space and permissions; nothing was replaced") from None
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


@contextlib.contextmanager
def _commit_lock(destination: pathlib.Path) -> Iterator[None]:
    """Hold an exclusive lock for committing ``destination`` (``flock`` on a hidden lock file).

    The lock file is removed by its holder before unlocking; a waiter that then
    wakes holding a lock on the removed file notices (its inode is no longer the
    path's) and locks again, so every commit holds the one live lock.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: commits are not serialized
        yield
        return
    lock = destination.with_name(f".{destination.name}.crossgraph-lock")
    while True:
        fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if _inode(lock) == os.fstat(fd).st_ino:
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    try:
        yield
    finally:
        os.unlink(lock)
        os.close(fd)  # releases the lock


def _inode(path: pathlib.Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


def _commit(tmpdir: pathlib.Path, parent: pathlib.Path) -> None:
    # The main entry goes last, so a model file never points at data not yet in place.
    entries = sorted(tmpdir.iterdir(), key=lambda p: (not p.name.endswith(".data"), p.name))
    for entry in entries:
        target = parent / entry.name
        if entry.is_dir():
            backup = None
            if target.exists():
                backup = target.with_name(f".{target.name}.crossgraph-old")
                shutil.rmtree(backup, ignore_errors=True)
                os.replace(target, backup)
            os.replace(entry, target)
            if backup is not None:
                shutil.rmtree(backup, ignore_errors=True)
        else:
            os.replace(entry, target)
