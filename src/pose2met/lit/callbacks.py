"""Callbacks: stage-aware checkpoint selection, validation figures (skeletons, kcal scatter), run summary."""

from __future__ import annotations

import difflib
import os
import re
import signal
import sys
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import matplotlib.pyplot as plt
import numpy as np
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only
from lightning.pytorch.utilities.exceptions import MisconfigurationException, SIGTERMException

from pose2met.data.transforms import target_to_mm
from pose2met.lit.checkpoint_io import use_atomic_checkpoint_io
from pose2met.viz import kcal_scatter_figure, skeleton_comparison_figure

#: Torch's error in the main process when SIGTERM or SIGINT to the process group killed a loader worker.
WORKER_KILLED = re.compile(r"DataLoader worker \(pid \d+\) is killed by signal: (Terminated|Interrupt)")


def is_interrupt(exception: BaseException) -> bool:
    """Ctrl-C, SIGTERM (Lightning's exception), or a loader worker killed by either."""
    if isinstance(exception, (KeyboardInterrupt, SIGTERMException)):
        return True
    return isinstance(exception, RuntimeError) and WORKER_KILLED.search(str(exception)) is not None


#: Names Lightning's ModelCheckpoint always offers as monitors.
LIGHTNING_MONITORS = ("epoch", "step")


def monitor_problem(
    monitor: str | None, logged: list[str], groups: Sequence[str] = (), train_only: Sequence[str] = ()
) -> str | None:
    """Why ``monitor`` will never be logged, given the names a (sanity-check) validation logged, or
    None when it may be.

    ``groups`` are the evaluation split's actions / activities / sequences: a per-group name
    (``val/mae/boxing``) is accepted when another group's name of the same metric was logged, since
    the sanity check's batches hold only some groups. Training logs the validation's loss terms
    under ``train/`` (``train/loss``, ``train/loss_step``, ``train/pose_mpjpe_epoch``, ...) and
    ``train_only`` names, but no evaluation metric. ``lr-*`` (a LearningRateMonitor's) is left to
    Lightning.
    """
    if monitor is None or monitor.startswith("lr-") or not any(name.startswith("val/") for name in logged):
        return None
    loss_terms = [name[4:] for name in logged if re.fullmatch(r"val/(loss|pose_\w+|kcal_kl)", name)]
    train = {f"train/{term}{suffix}" for term in loss_terms for suffix in ("", "_step", "_epoch")}
    known = sorted({*logged, *train, *train_only, *LIGHTNING_MONITORS})
    if monitor in known:
        return None
    metric, _, group = monitor.rpartition("/")
    if group in groups and {f"{metric}/{other}" for other in groups}.intersection(logged):
        return None
    as_val = "val/" + monitor.removeprefix("train/")
    if monitor.startswith("train/") and as_val in logged:
        hint = f"; evaluation metrics are logged in validation only: did you mean {as_val!r}?"
    elif close := difflib.get_close_matches(monitor, known, n=1):
        hint = f"; did you mean {close[0]!r}?"
    else:
        hint = f" (it logs {', '.join(known[:10])}, ...)"
    return f"--checkpoint.monitor {monitor!r}: this task never logs it{hint}"


def evaluation_groups(pl_module: L.LightningModule) -> list[str]:
    """The action / activity / sequence names of the module's validation metrics (per-group rows)."""
    metrics = getattr(pl_module, "metrics", {})
    group = metrics["val"] if "val" in metrics else {}
    names: list[str] = []
    for metric in group.values():
        for attribute in ("actions", "activities", "sequences"):
            names += list(getattr(metric, attribute, None) or [])
    return names


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

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        use_atomic_checkpoint_io(trainer)

    def on_sanity_check_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Check ``monitor`` against the names the sanity check's validation logged: Lightning checks
        it only after the first training epoch's validation."""
        train_only = ["train/stage"] if getattr(pl_module, "stages", None) else []
        logged = list(trainer.callback_metrics)
        problem = monitor_problem(self.monitor, logged, evaluation_groups(pl_module), train_only)
        if problem:
            raise MisconfigurationException(problem)

    # ------------------------------------------------- last.ckpt every epoch
    def _save_last_if_behind(self, trainer: L.Trainer) -> bool:
        """Write ``last.ckpt`` when it is behind the current step; whether it was written.

        Lightning 2.6 writes it only in a step that also saved a top-k checkpoint, so after the
        monitored metric stops improving it would stay at the best epoch and ``--ckpt_path last``
        would silently re-train the epochs since."""
        if not self.save_last or self._last_global_step_saved == trainer.global_step:
            return False
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        return True

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if not self._should_skip_saving_checkpoint(trainer) and self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_behind(trainer)

    # ------------------------------------------------------------ interrupts
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """A first Ctrl-C lets the running step finish, then stops with ``last.ckpt`` saved; a second
        stops at once. One process only: ranks of a DDP run could stop at different steps."""
        self._stop_requested = False
        self._default_sigint: Any = None
        if (
            self.save_last
            and trainer.world_size == 1
            and threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        ):
            self._default_sigint = signal.signal(signal.SIGINT, self._request_stop)

    def _request_stop(self, signum: int, frame: Any) -> None:
        if self._stop_requested:
            raise KeyboardInterrupt
        self._stop_requested = True
        print(
            "\n[pose2met] Ctrl-C: stopping after this training step and saving last.ckpt "
            "(Ctrl-C again stops at once)",
            file=sys.stderr,
            flush=True,
        )

    def _restore_sigint(self) -> None:
        if getattr(self, "_default_sigint", None) is not None:
            signal.signal(signal.SIGINT, self._default_sigint)
            self._default_sigint = None

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        if getattr(self, "_stop_requested", False):
            raise KeyboardInterrupt

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_skip_saving_checkpoint(trainer) and not self._should_save_on_train_epoch_end(
            trainer
        ):
            self._save_last_if_behind(trainer)
        if getattr(self, "_stop_requested", False) and not trainer.sanity_checking:
            raise KeyboardInterrupt  # Ctrl-C during a validation inside fit: stop once it is done

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        """Ctrl-C or SIGTERM while fitting: save ``last.ckpt`` so that ``--ckpt_path last`` resumes
        from the interrupted step. Nothing is saved for other exceptions (the state may be broken) or
        inside a step (its batch-norm statistics are half updated)."""
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # Lightning's, while it shuts down
            self._default_sigint = None
        self._restore_sigint()
        super().on_exception(trainer, pl_module, exception)
        if not is_interrupt(exception) or not self.save_last:
            return
        if trainer.state.fn != TrainerFn.FITTING or trainer.fast_dev_run or trainer.sanity_checking:
            return
        if trainer.world_size > 1 and not isinstance(exception, SIGTERMException):
            return  # ranks stop at different points; Lightning coordinates only SIGTERM
        progress = trainer.fit_loop.epoch_loop.batch_progress.current
        if progress.started > progress.processed:
            rank_zero_info("[pose2met] interrupted inside a training step: no checkpoint saved")
        elif self._save_last_if_behind(trainer):
            rank_zero_info(
                f"[pose2met] interrupted: saved {self.last_model_path} (step {trainer.global_step})"
            )

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._restore_sigint()
        super().teardown(trainer, pl_module, stage)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning (2.6) saves ``last.ckpt`` here even under ``fast_dev_run``, which writes nothing else;
        # a later ``--ckpt_path last`` would then resume from the one-batch smoke run
        if not trainer.fast_dev_run:
            super().on_train_end(trainer, pl_module)

    # ------------------------------------------------------------ resumed runs
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """A run resumed into a new folder (a new ``version_N``) keeps ranking the earlier folders' best
        checkpoints (Lightning would start afresh and could pick a worse epoch as the best); their
        files are never deleted (see :meth:`_remove_checkpoint`)."""
        if state_dict.get("dirpath", self.dirpath) == self.dirpath:
            super().load_state_dict(state_dict)
            return
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The dirpath has changed")
            super().load_state_dict(state_dict)
        kept = {p: v for p, v in (state_dict.get("best_k_models") or {}).items() if os.path.isfile(p)}
        if kept:
            ranked = sorted(kept.items(), key=lambda item: float(item[1]), reverse=self.mode == "max")
            self.best_k_models = dict(ranked)
            self.best_model_path, self.best_model_score = ranked[0]
            self.kth_best_model_path, self.kth_value = ranked[-1]

    def _remove_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        if self.dirpath is not None and Path(self.dirpath) not in Path(filepath).parents:
            return  # an earlier run's file, outranked after a resume: it stays where it is
        super()._remove_checkpoint(trainer, filepath)

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
