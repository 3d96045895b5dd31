"""Two-process DDP (gloo, CPU): each rank trains on its own share of a fresh per-epoch clip subset."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import lightning as L
import pytest
import torch

from pose2met.data.datamodule import Pose2MetDataModule


class _RecordClips(L.LightningModule):
    """Records ``(epoch, sequence_index, first frame_index)`` of every training clip, saved per rank."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(3, 3)
        self.seen: list[tuple[int, int, int]] = []

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        pairs = zip(batch["sequence_index"].tolist(), batch["frame_index"][:, 0].tolist(), strict=True)
        self.seen += [(self.current_epoch, s, f) for s, f in pairs]
        return self.layer(batch["input_2d"]).mean()

    def on_train_end(self) -> None:
        torch.save(self.seen, Path(self.trainer.default_root_dir) / f"seen{self.global_rank}.pt")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


@pytest.mark.slow
def test_ddp_ranks_get_disjoint_fresh_subsets(tiny_file: Callable[..., Path], tmp_path: Path) -> None:
    path = tiny_file(splits=("train", "train", "val", "test"))
    dm = Pose2MetDataModule(path=str(path), num_frames=9, batch_size=2, max_train_clips=6, flip_augment=False)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp_spawn",
        max_epochs=2,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
    )
    trainer.fit(_RecordClips(), datamodule=dm)
    seen = [torch.load(tmp_path / f"seen{rank}.pt") for rank in (0, 1)]
    per_epoch = [[{clip[1:] for clip in s if clip[0] == epoch} for s in seen] for epoch in (0, 1)]
    for rank0, rank1 in per_epoch:
        assert len(rank0) == len(rank1) == 3 and not rank0 & rank1  # 6 clips split 3 + 3, no overlap
    assert per_epoch[0][0] | per_epoch[0][1] != per_epoch[1][0] | per_epoch[1][1]  # a fresh subset per epoch
