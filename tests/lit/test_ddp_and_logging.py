"""DDP on two CPU processes and the W&B offline run folder."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import wandb

from pose2met.lit import EnergyTask, TrainingStage
from pose2met.lit.callbacks import ValidationFigures
from pose2met.loggers import Pose2MetWandbLogger

from .test_training import datamodule, tiny_encoder, tiny_trainer

METRIC_KEYS = ("val/mpjpe", "val/p_mpjpe", "val/mae", "val/spc", "val/nll", "val/known/mae", "val/spearman")


def _validate(task: EnergyTask, data: Path, root: Path, devices: int) -> dict[str, float]:
    trainer = tiny_trainer(
        root,
        devices=devices,
        strategy="ddp_spawn" if devices > 1 else "auto",
        limit_val_batches=None,
        num_sanity_val_steps=0,
    )
    return {
        k: float(v) for k, v in trainer.validate(task, datamodule=datamodule(data), verbose=False)[0].items()
    }


@pytest.mark.slow
def test_ddp_two_processes_match_one_process(synthmet_tiny: Path, tmp_path: Path) -> None:
    """Validation metrics of 2 gloo processes, each on half the clips, equal those of 1 process."""
    L.seed_everything(3)
    task = EnergyTask(tiny_encoder(), setting="unified", kcal_range=(0.0, 1000.0))
    single = _validate(task, synthmet_tiny, tmp_path / "one", devices=1)
    ddp = _validate(task, synthmet_tiny, tmp_path / "two", devices=2)
    for key in METRIC_KEYS:
        assert key in single, key
        assert ddp[key] == pytest.approx(single[key], rel=1e-5, abs=1e-5), key


def test_wandb_offline_run_folder_has_metrics(synthmet_tiny: Path, tmp_path: Path) -> None:
    logger = Pose2MetWandbLogger(name="tiny-unified", save_dir=str(tmp_path), online=False)
    stages = [TrainingStage("hpe", 1, 1.0, 0.0), TrainingStage("joint", 1, 1.0, 1.0)]
    task = EnergyTask(tiny_encoder(), setting="unified", stages=stages, kcal_range=(0.0, 1000.0))
    trainer = tiny_trainer(tmp_path, logger=logger, max_epochs=2, callbacks=[ValidationFigures()])
    trainer.fit(task, datamodule=datamodule(synthmet_tiny))
    logger.experiment.finish()
    wandb.teardown()  # waits for the W&B service to flush the offline run to disk
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, runs
    events = list(runs[0].glob("*.wandb"))
    assert len(events) == 1, "no offline event file to `wandb sync`"
    # the offline event log (protobuf records) holds the logged history keys and the config
    data = events[0].read_bytes()
    for key in (b"val/mpjpe", b"val/mae", b"val/known/mae", b"train/stage", b"train/loss_epoch"):
        assert key in data, key
    media = runs[0] / "files" / "media" / "images" / "val"
    assert list(media.glob("skeletons*.png")) and list(media.glob("kcal_scatter*.png")), "figures not logged"


def test_sync_dist_advice_is_silenced_only_for_metrics_synchronized_by_torchmetrics() -> None:
    import warnings

    from lightning.pytorch.utilities.warnings import PossibleUserWarning

    from pose2met.lit.task import silence_synced_metric_advice

    def shown(key: str) -> bool:
        text = (
            f"It is recommended to use `self.log({key!r}, ..., sync_dist=True)` when logging on epoch level"
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # no once-per-place registry
            silence_synced_metric_advice()  # what the task's setup() does, in front of that
            warnings.warn(text, PossibleUserWarning, stacklevel=1)
        return any(issubclass(w.category, PossibleUserWarning) for w in caught)

    assert not shown("val/mpjpe") and not shown("test/known/mae") and not shown("train/stage")
    assert shown("train/loss")  # a per-rank value: Lightning's advice stands
