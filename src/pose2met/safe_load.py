"""Weights-only loading of PyTorch files, with one-line errors that say what is wrong with the file."""

from __future__ import annotations

import os
import pickle
import re
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

#: What ``torch.load`` raises for a file it cannot read (``KeyError``: unknown pickle opcodes, e.g. text).
LOAD_ERRORS = (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, OSError, KeyError)


def describe_load_error(err: BaseException) -> str:
    """A one-line reason for a failed ``torch.load(..., weights_only=True)``."""
    text = str(err)
    refused = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if refused:
        return (
            f"it stores the Python object {refused[1]}, which safe (weights-only) loading refuses; "
            "if you trust the file, load it with torch.load(weights_only=False) and re-save its state dict"
        )
    if isinstance(err, (EOFError, KeyError)) or "Unsupported operand" in text:
        return "empty, truncated or not written by torch.save"
    if "zip archive" in text:
        return "truncated or corrupted zip archive"
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return f"{type(err).__name__}: {first_line}" if first_line else type(err).__name__


def load_torch_file(
    path: str | os.PathLike, error: type[Exception], allowed_globals: Sequence[type] = ()
) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)``; an unreadable file raises ``error``.

    Args:
        path: a file written by ``torch.save``.
        error: the exception class raised (with the path and a one-line reason) when loading fails.
        allowed_globals: extra classes the file may pickle (trusted dataclasses of our own).
    """
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: checkpoint file not found")
    try:
        with torch.serialization.safe_globals(list(allowed_globals)), warnings.catch_warnings():
            # the weights-only unpickler warns about pickle protocols before failing on them
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except LOAD_ERRORS as err:
        raise error(f"{path}: not a readable PyTorch checkpoint ({describe_load_error(err)})") from err


#: ``ckpt_path`` values that Lightning resolves itself (not files).
LIGHTNING_CKPT_ALIASES = frozenset({"best", "last", "hpc", "registry"})


def local_checkpoint_file(ckpt_path: str | os.PathLike | None) -> str | None:
    """``ckpt_path`` if it names a local file; None for None, Lightning's aliases and remote URLs."""
    if ckpt_path is None:
        return None
    text = os.fspath(ckpt_path)
    if text in LIGHTNING_CKPT_ALIASES or text.startswith("registry:") or "://" in text:
        return None
    return text


def check_checkpoint_path(ckpt_path: str | os.PathLike | None, error: type[Exception]) -> Any:
    """Fail early, in one line, on a ``--ckpt_path`` file that Lightning could not read.

    Lightning's aliases (``best``, ``last``, ...) and remote URLs pass (None is returned); a local
    file must load weights-only with torch's default allowed types, as LightningCLI itself loads it,
    and its content is returned.
    """
    path = local_checkpoint_file(ckpt_path)
    return None if path is None else load_torch_file(path, error)
