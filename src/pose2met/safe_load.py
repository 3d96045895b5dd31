"""Weights-only loading of PyTorch files, with one-line errors that say what is wrong with the file."""

from __future__ import annotations

import os
import pickle
import re
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

#: What ``torch.load`` raises for a file it cannot read (``KeyError``: unknown pickle opcodes, e.g. text).
LOAD_ERRORS = (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, OSError, KeyError)


def describe_load_error(err: BaseException) -> str:
    """A one-line reason for a failed ``torch.load(..., weights_only=True)``."""
    text = str(err)
    refused = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text) or re.search(
        r"allowlisted via `add_safe_globals`, but got <class '([\w.]+)'>", text
    )
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


@contextmanager
def quiet_protocol_warning() -> Iterator[None]:
    """Silence the weights-only unpickler's pickle-protocol warning (it fails with a clear error after)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
        yield


def numpy_data_globals() -> list[Any]:
    """What ``torch.save`` pickles for NumPy scalars and numeric arrays, e.g. a best-MPJPE
    ``np.float64`` that a training script stores beside the weights (the official STAPFormer one
    does). Data only: object arrays stay refused. Files of NumPy 1 name the module ``numpy.core``."""
    import numpy as np

    core = np._core if hasattr(np, "_core") else np.core  # NumPy 2 / 1
    dtypes = {type(np.dtype(code)) for code in "?bBhHiIlLqQefdgFD"}
    functions = (core.multiarray.scalar, core.multiarray._reconstruct)
    modules = ("numpy.core.multiarray", "numpy._core.multiarray")
    aliases = [(f, f"{module}.{f.__name__}") for f in functions for module in modules]
    return [*aliases, np.ndarray, np.dtype, *sorted(dtypes, key=str)]


def load_torch_file(
    path: str | os.PathLike, error: type[Exception], allowed_globals: Sequence[Any] = ()
) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)``; an unreadable file raises ``error``.

    Args:
        path: a file written by ``torch.save``.
        error: the exception class raised (with the path and a one-line reason) when loading fails.
        allowed_globals: extra classes the file may pickle (trusted dataclasses of our own), besides
            NumPy scalars and numeric arrays (:func:`numpy_data_globals`).
    """
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: checkpoint file not found")
    allowed = [*numpy_data_globals(), *allowed_globals]
    try:
        with torch.serialization.safe_globals(allowed), quiet_protocol_warning():
            content = torch.load(path, map_location="cpu", weights_only=True)
    except LOAD_ERRORS as err:
        raise error(f"{path}: not a readable PyTorch checkpoint ({describe_load_error(err)})") from err
    damaged = damaged_member(path)
    if damaged is not None:  # torch.load does not check the archive's checksums
        raise error(f"{path}: corrupted checkpoint (checksum mismatch in {damaged}); save or copy it again")
    return content


def damaged_member(path: Path) -> str | None:
    """The first member of a zip-format ``torch.save`` file whose CRC-32 does not match its bytes
    (members saved without one, ``compute_crc32=False``, are not checked)."""
    if not zipfile.is_zipfile(path):
        return None
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if info.CRC == 0 and info.file_size > 0:
                continue  # written without a checksum
            try:
                with archive.open(info) as member:  # zipfile compares the CRC-32 at the member's end
                    while member.read(1 << 22):
                        pass
            except (zipfile.BadZipFile, OSError):
                return info.filename
    return None


#: ``ckpt_path`` values that Lightning resolves itself (not files).
LIGHTNING_CKPT_ALIASES = frozenset({"best", "last", "hpc", "registry"})


def is_alias(ckpt_path: str) -> bool:
    """Whether ``ckpt_path`` is one of Lightning's aliases (``best``, ``last``, ``registry:...``)."""
    return ckpt_path in LIGHTNING_CKPT_ALIASES or ckpt_path.startswith("registry:")


def load_remote_checkpoint(url: str, error: type[Exception]) -> Any:
    """Read a checkpoint URL (``https://``, ``s3://``, ``file://``, ...) the way Lightning will, weights
    only; a download or read failure raises ``error`` naming the URL. ``http(s)`` files land in torch's
    hub cache, so Lightning's own load that follows does not download them again."""
    from lightning.fabric.utilities import cloud_io  # Lightning's own reader; imported only for URLs

    try:
        with quiet_protocol_warning():
            return cloud_io._load(url, map_location="cpu", weights_only=True)
    except Exception as err:  # network and filesystem back ends raise their own exception types
        raise error(f"{url}: could not read the checkpoint ({describe_load_error(err)})") from err


def check_checkpoint_path(ckpt_path: str | os.PathLike | None, error: type[Exception]) -> Any:
    """Fail early, in one line, on a ``--ckpt_path`` that Lightning could not read.

    Lightning's aliases (``best``, ``last``, ...) pass (None is returned); a local file or a URL must
    load weights-only with torch's default allowed types, as LightningCLI itself loads it, and its
    content is returned.
    """
    if ckpt_path is None or is_alias(os.fspath(ckpt_path)):
        return None
    text = os.fspath(ckpt_path)
    return load_remote_checkpoint(text, error) if "://" in text else load_torch_file(text, error)
