"""Atomic file writes: a unique temporary file beside the target, renamed over it on success.

A failed or interrupted write never leaves a half-written target, an existing target is replaced
only by a complete file, and concurrent writers never rename each other's temporary files. The data
reach the disk (``fsync``) before the rename, and the rename itself is flushed with its folder, so a
power loss leaves the old file or the new one. A process killed by SIGKILL mid-write leaves its
hidden temporary file (``.NAME.XXXXXXXX.tmp.SUFFIX``) beside the target; it is safe to delete.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path


def _create_temp(path: Path) -> Path:
    """Create an empty, unique temporary file beside ``path`` with the normal mode of a new file.

    ``os.open(..., 0o666)`` lets the system apply the umask (and default ACLs), as for any new file;
    ``tempfile.mkstemp`` would give 0600, which ``os.replace`` would keep.
    """
    for _ in range(100):
        tmp = path.parent / f".{path.stem}.{secrets.token_hex(4)}.tmp{path.suffix}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"{path}: cannot create a temporary file in {path.parent}")


def _sync(path: Path) -> None:
    """Flush a written file's data to the disk (read-write: Windows refuses fsync on read-only handles)."""
    fd = os.open(path, os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_folder(folder: Path) -> None:
    """Flush a folder's entries (the rename) on POSIX; file systems that cannot are skipped."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed."""
    path = Path(path)
    tmp = _create_temp(path)
    try:
        yield tmp
        _sync(tmp)
        os.replace(tmp, path)
        _sync_folder(path.parent)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_atomic(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` and move the result to ``path`` only if it succeeds."""
    path = Path(path)
    with atomic_path(path) as tmp:
        write(tmp)
    return path


def unwritable_reason(path: str | os.PathLike) -> str | None:
    """Why a file cannot be created at ``path`` (its folder, or the first existing ancestor that would
    hold the missing ones, is not a writable folder); ``None`` when it can."""
    folder = Path(path).parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is not a folder"
    if not os.access(folder, os.W_OK):
        return f"the folder {folder} is not writable"
    return None
