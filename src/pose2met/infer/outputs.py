"""Writing inference results atomically: ``.npz`` (NumPy) or ``.json``, via a temporary file + rename."""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

OUTPUT_SUFFIXES = (".npz", ".json")


class OutputError(ValueError):
    """An output path or value that cannot be written."""


def check_output_path(path: str | os.PathLike, suffixes: tuple[str, ...] = OUTPUT_SUFFIXES) -> Path:
    """Validate an output path up front (suffix, existing parent folder) so no work is wasted."""
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise OutputError(f"{path}: output name must end with one of {suffixes}")
    if not path.parent.is_dir():
        raise OutputError(f"{path}: folder {path.parent} does not exist")
    if path.is_dir():
        raise OutputError(f"{path}: is a folder")
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_atomic(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` and move the result to ``path`` only if it succeeds."""
    path = Path(path)
    with atomic_path(path) as tmp:
        write(tmp)
    return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, str) or value is None:
        return value
    raise OutputError(f"cannot write a value of type {type(value).__name__} to JSON")


def write_result(path: str | os.PathLike, record: Mapping[str, Any]) -> Path:
    """Write ``record`` to ``path`` (``.npz``: one array per key; ``.json``: nested lists, NaN as null)."""
    path = check_output_path(path)
    if path.suffix.lower() == ".json":
        text = json.dumps({k: _jsonable(v) for k, v in record.items()}, indent=1)
        return write_atomic(path, lambda tmp: tmp.write_text(text))
    arrays = {k: np.asarray(v) for k, v in record.items()}

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would append '.npz' to a name
            np.savez_compressed(f, **arrays)

    return write_atomic(path, save)
