"""Trainer precisions: half-precision weights must not round the targets and labels of the metrics."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import torch
from tests.lit.test_training import datamodule, tiny_encoder, tiny_trainer

from pose2met.lit import EnergyTask


class RecordingTask(EnergyTask):
    """An energy task that keeps the batches its steps receive."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(tiny_encoder(), **kwargs)
        self.seen: list[dict[str, torch.Tensor]] = []

    def _shared_step(self, batch: Mapping[str, Any], stage: str) -> Any:
        self.seen.append({k: batch[k].detach().clone() for k in ("input_2d", "target_3d", "kcal")})
        return super()._shared_step(batch, stage)  # type: ignore[arg-type]


def test_bf16_true_keeps_targets_and_labels_exact(synthmet_tiny: Path, tmp_path: Path) -> None:
    task = RecordingTask(setting="standard", kcal_range=(0.0, 2000.0))
    trainer = tiny_trainer(tmp_path, precision="bf16-true", limit_train_batches=2, limit_val_batches=1)
    trainer.fit(task, datamodule=datamodule(synthmet_tiny))
    assert {p.dtype for p in task.model.parameters()} == {torch.bfloat16}
    with h5py.File(synthmet_tiny) as f:
        labels = np.asarray(f["sequences/kcal"][:], dtype=np.float32)
    assert (
        len(task.seen) == 4
    )  # the sanity check (one batch: limit_val_batches), two training steps, validation
    for batch in task.seen:
        assert batch["target_3d"].dtype == batch["kcal"].dtype == torch.float32
        # bf16 would round most of them: 8 bits of mantissa leave steps of 1-4 kcal/h above 256
        assert np.isin(batch["kcal"].numpy(), labels).all()
    rounded = torch.from_numpy(labels).bfloat16().float().numpy()
    assert (rounded != labels).mean() > 0.5  # the check above could fail: bf16 changes most labels
    assert np.isfinite(float(trainer.callback_metrics["val/mae"]))


def test_16_true_training_is_refused(synthmet_tiny: Path, tmp_path: Path) -> None:
    task = EnergyTask(tiny_encoder(), setting="standard")
    with pytest.raises(ValueError, match="trainer.precision 16-true cannot train: AdamW's eps"):
        tiny_trainer(tmp_path, precision="16-true").fit(task, datamodule=datamodule(synthmet_tiny))
