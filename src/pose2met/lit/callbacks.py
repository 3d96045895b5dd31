"""Callbacks: stage-aware checkpoint selection, validation figures (skeletons, kcal scatter), run summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import matplotlib.pyplot as plt
import numpy as np
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from pose2met.data.transforms import target_to_mm
from pose2met.viz import kcal_scatter_figure, skeleton_comparison_figure


def run_dir(trainer: L.Trainer) -> Path:
    """Folder of this run's files: the logger's run folder, else ``default_root_dir``."""
    logger = trainer.logger
    if (
        isinstance(logger, WandbLogger)
        and logger.experiment is not None
        and getattr(logger.experiment, "dir", None)
    ):
        return Path(logger.experiment.dir).parent
    if logger is not None and logger.log_dir:
        return Path(logger.log_dir)
    return Path(trainer.default_root_dir)


class StageAwareCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` whose best-by-metric choice skips epochs the module marks unselectable.

    A staged schedule (unified: an HPE stage, then the joint stage) validates every epoch, but an
    epoch whose stage leaves a head untrained must not become the "best" checkpoint: after the HPE
    stage the calorie head still outputs its initial, nearly flat distribution, whose argmax MAE
    can beat a trained one by chance. Modules expose ``selectable_epoch() -> bool``; modules
    without it are handled exactly as by ``ModelCheckpoint``. ``save_last`` is unaffected.
    """

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning (2.6) saves ``last.ckpt`` here even under ``fast_dev_run``, which writes nothing else;
        # a later ``--ckpt_path last`` would then resume from the one-batch smoke run
        if not trainer.fast_dev_run:
            super().on_train_end(trainer, pl_module)

    def check_monitor_top_k(self, trainer: L.Trainer, current: torch.Tensor | None = None) -> bool:
        selectable = getattr(trainer.lightning_module, "selectable_epoch", None)
        if callable(selectable) and not selectable():
            return False
        return super().check_monitor_top_k(trainer, current)


class ValidationFigures(L.Callback):
    """Every ``every_n_epochs`` validation: predicted vs true 3D skeletons and a kcal scatter.

    Figures go to ``<run dir>/figures/`` as PNG and, with W&B, to the run as images; under
    ``fast_dev_run`` they are drawn (the code runs) but not saved, like everything else of such a run.
    """

    def __init__(self, num_skeletons: int = 4, every_n_epochs: int = 1) -> None:
        self.num_skeletons = num_skeletons
        self.every_n_epochs = every_n_epochs
        self._poses: tuple[np.ndarray, np.ndarray] | None = None
        self._kcal: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def _active(self, trainer: L.Trainer) -> bool:
        return not trainer.sanity_checking and trainer.current_epoch % self.every_n_epochs == 0

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._poses, self._kcal = None, []

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        *_: Any,
    ) -> None:
        if not self._active(trainer) or not isinstance(outputs, dict):
            return
        if "pose_3d" in outputs and self._poses is None:
            space = getattr(pl_module, "target_space", "camera")
            pred = target_to_mm(outputs["pose_3d"].float(), batch, space)
            true = target_to_mm(batch["target_3d"].float(), batch, space)
            frame = pred.shape[1] // 2
            n = min(self.num_skeletons, pred.shape[0])
            self._poses = (pred[:n, frame].cpu().numpy(), true[:n, frame].cpu().numpy())
        if "kcal_expectation" in outputs:
            known = batch.get("known", torch.ones_like(batch["kcal"], dtype=torch.bool))
            self._kcal.append(
                (batch["kcal"].cpu().numpy(), outputs["kcal_expectation"].cpu().numpy(), known.cpu().numpy())
            )

    @rank_zero_only
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._active(trainer):
            return
        figures = {}
        if self._poses is not None:
            figures["skeletons"] = skeleton_comparison_figure(
                self._poses[0], self._poses[1], titles=[f"sample {i}" for i in range(len(self._poses[0]))]
            )
        if self._kcal:
            true, pred, known = (np.concatenate(parts) for parts in zip(*self._kcal, strict=True))
            figures["kcal_scatter"] = kcal_scatter_figure(true, pred, known)
        if trainer.fast_dev_run:
            for fig in figures.values():
                plt.close(fig)
            return
        out_dir = run_dir(trainer) / "figures"
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, fig in figures.items():
            path = out_dir / f"val_{name}_epoch{trainer.current_epoch:03d}.png"
            fig.savefig(path, dpi=80)
            plt.close(fig)
            if isinstance(trainer.logger, WandbLogger):
                trainer.logger.log_image(key=f"val/{name}", images=[str(path)], step=trainer.global_step)


class RunSummary(L.Callback):
    """Prints where checkpoints and logs went, and the final test metrics."""

    @rank_zero_only
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.fast_dev_run:
            print("[pose2met] fast_dev_run: no checkpoint, log or figure written", flush=True)
            return
        ckpt = trainer.checkpoint_callback
        lines = [f"[pose2met] run folder: {run_dir(trainer)}"]
        if isinstance(ckpt, ModelCheckpoint):
            lines.append(f"[pose2met] checkpoints: {ckpt.dirpath} (best: {ckpt.best_model_path or '-'})")
        print("\n".join(lines), flush=True)

    @rank_zero_only
    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        results = getattr(pl_module, "last_test_results", {})
        headline = [
            k
            for k in results
            if k.split("/", 1)[1]
            in {"mpjpe", "p_mpjpe", "pck", "auc", "mae", "spc", "nll", "known/mae", "unknown/mae"}
        ]
        if headline:
            print("[pose2met] test: " + ", ".join(f"{k}={results[k]:.3f}" for k in headline), flush=True)
        if not trainer.fast_dev_run:
            print(f"[pose2met] logs: {run_dir(trainer)}", flush=True)
