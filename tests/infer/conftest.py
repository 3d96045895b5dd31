"""Tiny trained checkpoints for the inference tests (trained once per session, a few steps)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch

from pose2met.data.datamodule import Pose2MetDataModule
from pose2met.lit import EnergyTask, TrainingStage
from pose2met.lit.checkpoint import CHECKPOINT_META_KEY
from pose2met.models import STAPFormer

#: Frames per window of the tiny model.
WINDOW = 9


def tiny_encoder() -> STAPFormer:
    return STAPFormer(num_frames=WINDOW, depth=1, dim_feat=16, dim_rep=32, num_heads=2)


@pytest.fixture(scope="session")
def unified_checkpoint(synthmet_tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A unified (2D -> 3D pose + kcal) EnergyTask checkpoint trained for 3 steps on SynthMet tiny."""
    root = tmp_path_factory.mktemp("unified_ckpt")
    task = EnergyTask(
        tiny_encoder(), setting="unified", stages=[TrainingStage("joint", 1)], num_bins=100,
        kcal_range=(0.0, 1000.0),
    )  # fmt: skip
    trainer = L.Trainer(
        accelerator="cpu", devices=1, max_epochs=1, limit_train_batches=3, limit_val_batches=1,
        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        default_root_dir=str(root),
    )  # fmt: skip
    dm = Pose2MetDataModule(path=str(synthmet_tiny), num_frames=WINDOW, batch_size=4, num_workers=0)
    trainer.fit(task, datamodule=dm)
    path = root / "unified.ckpt"
    trainer.save_checkpoint(path)
    return path


@pytest.fixture(scope="session")
def checkpoint_3d_input(unified_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The unified checkpoint relabelled as a 3D-input task (what the ``3d_input`` setting writes)."""
    with torch.serialization.safe_globals([TrainingStage]):
        ckpt = torch.load(unified_checkpoint, map_location="cpu", weights_only=True)
    ckpt[CHECKPOINT_META_KEY]["input_kind"] = "3d"
    path = tmp_path_factory.mktemp("ckpt3d") / "energy-3d.ckpt"
    torch.save(ckpt, path)
    return path
