"""Writing inference results atomically: ``.npz`` (NumPy) or ``.json``, via a temporary file + rename.

The command-line tools check every output path up front with :func:`check_new_output`: an existing
file is only replaced with ``--overwrite``, and a file the command reads is never replaced.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pose2met.atomic import atomic_path, write_atomic  # noqa: F401 (re-exported)

OUTPUT_SUFFIXES = (".npz", ".json")


class OutputError(ValueError):
    """An output path or value that cannot be written."""


def check_output_path(path: str | os.PathLike, suffixes: tuple[str, ...] = OUTPUT_SUFFIXES) -> Path:
    """Validate an output path up front (not a folder, suffix, parent folder exists): no wasted work."""
    path = Path(path)
    expected = " or ".join(suffixes)
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; expected a file name ending in {expected}")
    if path.suffix.lower() not in suffixes:
        raise OutputError(f"{path}: output name must end with {expected}")
    if not path.parent.is_dir():
        raise OutputError(f"{path}: folder {path.parent} does not exist")
    return path


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether ``a`` and ``b`` name the same file (resolved paths, or the same inode when both exist)."""
    if Path(a).resolve() == Path(b).resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (or cannot be read): not the same existing file
        return False


def check_new_output(
    path: str | os.PathLike,
    suffixes: tuple[str, ...] = OUTPUT_SUFFIXES,
    *,
    overwrite: bool = False,
    inputs: Mapping[str, str | os.PathLike | None] | None = None,
) -> Path:
    """:func:`check_output_path`, then refuse to replace one of the command's ``inputs`` (``{flag: path}``,
    even with ``overwrite``) or, without ``overwrite``, any existing file."""
    path = check_output_path(path, suffixes)
    for flag, source in (inputs or {}).items():
        if source is not None and same_file(path, source):
            raise OutputError(f"{path}: is the {flag} file this command reads; refusing to overwrite it")
    if os.path.lexists(path) and not overwrite:
        raise OutputError(f"{path} exists; pass --overwrite to replace it")
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
