"""Checkpoint writing that never leaves a truncated file behind.

Lightning's ``TorchCheckpointIO`` saves a local checkpoint through an fsspec transaction whose
temporary file lies in the system's temp folder; when that is another file system, committing copies
it over the target, so a full disk truncates an existing ``last.ckpt`` to nothing. Here a local
checkpoint is written to a temporary file beside the target and renamed over it only when complete.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import fsspec
import torch
from fsspec.implementations.local import LocalFileSystem
from lightning.pytorch.plugins.io import TorchCheckpointIO

from pose2met.atomic import write_atomic


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose local saves are atomic (remote URLs keep Lightning's writer)."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any | None = None
    ) -> None:
        fs, local_path = fsspec.core.url_to_fs(str(path))
        if storage_options is not None or not isinstance(fs, LocalFileSystem):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        target = Path(local_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, lambda tmp: torch.save(checkpoint, tmp))


def use_atomic_checkpoint_io(trainer: Any) -> None:
    """Give ``trainer`` atomic local checkpoint writes unless it was configured with its own writer."""
    if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
        trainer.strategy.checkpoint_io = AtomicCheckpointIO()
