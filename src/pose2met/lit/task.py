"""Shared LightningModule machinery: model assembly, inputs, test-time flip, metrics, optimizers."""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.plugins import HalfPrecision
from lightning.pytorch.plugins.layer_sync import TorchSyncBatchNorm
from lightning.pytorch.utilities import rank_zero_warn
from lightning.pytorch.utilities.warnings import PossibleUserWarning
from torch import Tensor

from pose2met.checks import is_positive_number
from pose2met.data.transforms import flip_pose, target_to_mm
from pose2met.lit.checkpoint import CHECKPOINT_META_KEY, load_weights_into, model_meta
from pose2met.lit.losses import PoseLossWeights, kcal_kl_loss, pose_loss
from pose2met.metrics import MOTIONBERT_H36M_EXCLUDE, EnergyMetrics, H36MProtocol, MPI3DHPProtocol
from pose2met.models import CalorieHead, Pose2MetModel, PoseHead, STAPFormer
from pose2met.models.energy_bins import distribution_expectation, gaussian_target

Stage = Literal["train", "val", "test"]
RNG_KEY = "pose2met_rng"
_H36M_SOURCE = re.compile(r"(act_\d+_subact_\d+)")


def h36m_sequence_key(name: str) -> str:
    """``s_09_act_05_subact_02_ca_01`` -> ``act_05_subact_02`` (the MotionBERT exclusion key)."""
    match = _H36M_SOURCE.search(name)
    return match.group(1) if match else name


def silence_synced_metric_advice() -> None:
    """Hide Lightning's advice to log with ``sync_dist=True`` for keys that are synchronized already.

    Epoch metrics come from torchmetrics, which synchronizes them over the ranks, and the stage
    index is the same everywhere; a second all-reduce would be redundant, and under DDP the advice
    would be printed for every key. Per-rank values (``train/loss``) keep it.
    """
    warnings.filterwarnings(
        "ignore",
        message=r"It is recommended to use `self\.log\('(val/|test/|train/stage')",
        category=PossibleUserWarning,
    )


#: The evaluation splits whose metrics each Lightning stage needs.
EVAL_SPLITS_OF_STAGE = {"fit": ("val",), "validate": ("val",), "test": ("test",), "predict": ()}

#: Trainer precisions whose gradient scaler skips steps with a non-finite loss.
FP16_LOSS_SCALING = ("16-mixed", "16")


def keep_batches_in_float32(trainer: L.Trainer | None) -> None:
    """Stop ``bf16-true`` / ``16-true`` from casting every float tensor of a batch to half precision.

    Lightning casts whole batches, so the 3D targets and kcal/h labels would be rounded before the
    losses and metrics (bf16 keeps 8 bits: a 4 m root depth moves by up to 16 mm, 300 kcal/h by 1).
    Only the model input follows the model's dtype (:meth:`Pose2MetTask.model_input`).
    """
    plugin = getattr(trainer, "precision_plugin", None)
    if isinstance(plugin, HalfPrecision):
        plugin.convert_input = _unchanged  # type: ignore[method-assign]


def _unchanged(data: Any) -> Any:
    return data


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite."""


class Pose2MetTask(L.LightningModule):
    """Base task: a STAPFormer encoder with a pose head and/or a calorie head.

    Subclasses (:class:`~pose2met.lit.HPETask`, :class:`~pose2met.lit.EnergyTask`) choose the heads,
    the input and the loss; this class owns everything they share.

    Args:
        encoder: the STAPFormer encoder (``class_path`` / ``init_args`` in YAML).
        pose_head: attach the 3D pose head.
        calorie_head: attach the calorie head.
        input_kind: ``"2d"`` feeds ``batch["input_2d"]``, ``"3d"`` feeds ``batch["target_3d"]``.
        num_bins: number of energy bins K of the calorie head.
        kcal_range: ``(min, max)`` kcal/h covered by the bins.
        kcal_sigma: std (kcal/h) of the Gaussian target distribution.
        calorie_pose_features: the calorie head also reads features of the predicted 3D pose.
        pose_loss_weights: MPJPE / N-MPJPE / velocity weights of the pose loss.
        pose_protocol: how pose metrics are reported: Human3.6M per-action or MPI-INF-3DHP rows.
        motionbert_exclude: Human3.6M only: skip the three S9 sequences the MotionBERT protocol skips.
        energy_eval: what one energy sample is: ``"clip"`` (each T-frame window) or ``"sequence"``
            (each video: the mixture of its windows' distributions, weighted by real frames).
        test_flip: average the predictions of the input and its left/right flip in val/test.
        init_from: checkpoint whose matching weights initialize the model (e.g. an HPE run), or
            weights saved by the official STAPFormer code (converted for this encoder's settings).
        compile: compile the encoder with ``torch.compile`` (in place: checkpoint keys unchanged).
        optimizer: optimizer factory; default AdamW(lr=5e-4, weight_decay=0.01).
        lr_scheduler: scheduler factory; default ExponentialLR(gamma=0.99).
        lr_interval: step the scheduler once per ``"epoch"`` or once per optimizer ``"step"`` (for
            per-step schedules such as OneCycleLR or a warm-up).
    """

    def __init__(
        self,
        encoder: STAPFormer,
        *,
        pose_head: bool = True,
        calorie_head: bool = False,
        input_kind: Literal["2d", "3d"] = "2d",
        num_bins: int = 500,
        kcal_range: tuple[float, float] = (0.0, 500.0),
        kcal_sigma: float = 10.0,
        calorie_pose_features: bool = False,
        pose_loss_weights: PoseLossWeights | None = None,
        pose_protocol: Literal["h36m", "3dhp"] = "h36m",
        motionbert_exclude: bool = False,
        energy_eval: Literal["clip", "sequence"] = "clip",
        test_flip: bool = True,
        init_from: str | None = None,
        compile: bool = False,
        optimizer: OptimizerCallable | None = None,
        lr_scheduler: LRSchedulerCallable | None = None,
        lr_interval: Literal["epoch", "step"] = "epoch",
    ) -> None:
        super().__init__()
        if not (pose_head or calorie_head):
            raise ValueError("a task needs at least one head: set pose_head and/or calorie_head")
        self.save_hyperparameters(ignore=["encoder", "optimizer", "lr_scheduler"])
        dim_rep = encoder.dim_rep
        self.model = Pose2MetModel(
            encoder,
            pose_head=PoseHead(dim_rep) if pose_head else None,
            calorie_head=CalorieHead(
                dim_rep,
                num_bins=num_bins,
                kcal_min=kcal_range[0],
                kcal_max=kcal_range[1],
                use_pose_features=calorie_pose_features,
            )
            if calorie_head
            else None,
        )
        self.input_kind = input_kind
        if not is_positive_number(kcal_sigma):
            raise ValueError(
                f"kcal_sigma (std of the kcal/h target distribution) must be > 0, got {kcal_sigma}"
            )
        self.kcal_sigma = kcal_sigma
        self.pose_loss_weights = pose_loss_weights or PoseLossWeights()
        self.pose_protocol = pose_protocol
        self.motionbert_exclude = motionbert_exclude
        if energy_eval not in ("clip", "sequence"):
            raise ValueError(f"energy_eval must be 'clip' or 'sequence', got {energy_eval!r}")
        self.energy_eval = energy_eval
        self.test_flip = test_flip
        self.init_from = init_from
        self._warned_bins = False  # labels outside the energy bins: reported once per run
        self.optimizer_factory = optimizer
        self.scheduler_factory = lr_scheduler
        if lr_interval not in ("epoch", "step"):
            raise ValueError(f"lr_interval must be 'epoch' or 'step', got {lr_interval!r}")
        self.lr_interval = lr_interval
        self.check_optimizer_settings()
        self.metrics: torch.nn.ModuleDict = torch.nn.ModuleDict()
        if init_from:
            load_weights_into(self.model, init_from, self.input_kind)
        if compile:
            self.model.encoder.compile()

    # ------------------------------------------------------------------ setup
    @property
    def has_pose(self) -> bool:
        return self.model.pose_head is not None

    @property
    def has_kcal(self) -> bool:
        return self.model.calorie_head is not None

    def check_trainer_settings(self, stage: str = "fit", trainer: L.Trainer | None = None) -> None:
        """Refuse trainer settings the model cannot honour, in one line (``trainer``: the one about to
        run this module, before it is attached; default the attached one):

        * ``sync_batchnorm`` (when fitting, the only stage Lightning converts in): its conversion swaps
          each token batch norm for a plain ``SyncBatchNorm`` that treats the frame axis as channels;
        * Apple MPS: metrics and energy targets are accumulated in float64, which MPS lacks;
        * ``accumulate_grad_batches`` below 1 and a negative or non-finite ``gradient_clip_val``
          (Lightning divides by the first and silently skips clipping for the second);
        * training in ``16-true``: AdamW's ``eps`` (1e-8) is 0 in float16, so the first update makes
          the weights of every parameter without gradient NaN.
        """
        trainer = trainer if trainer is not None else self._trainer
        strategy = trainer.strategy if trainer is not None else None
        # Lightning's own layer sync (sync_batchnorm=True) converts the model after setup()
        planned = isinstance(getattr(strategy, "_layer_sync", None), TorchSyncBatchNorm)
        if stage == "fit" and (planned or any(isinstance(m, torch.nn.SyncBatchNorm) for m in self.modules())):
            raise ValueError(
                "trainer.sync_batchnorm: not supported by STAPFormer's channel-last batch norms; set "
                "--trainer.sync_batchnorm false (each GPU then normalizes over its own batch, as the "
                "DataParallel training of MotionBERT-style code does)"
            )
        if stage == "fit" and trainer is not None:
            accumulate = getattr(trainer, "accumulate_grad_batches", 1)
            if accumulate < 1:
                raise ValueError(f"trainer.accumulate_grad_batches must be >= 1, got {accumulate}")
            clip = getattr(trainer, "gradient_clip_val", None)
            if clip is not None and not 0 <= float(clip) < float("inf"):
                raise ValueError(f"trainer.gradient_clip_val must be >= 0 and finite (0: off), got {clip}")
            if str(getattr(trainer, "precision", "")) == "16-true":
                raise ValueError(
                    "trainer.precision 16-true cannot train: AdamW's eps (1e-8) is 0 in float16 and the "
                    "first step turns weights NaN; use 16-mixed (CUDA), bf16-mixed or bf16-true"
                )
        if strategy is not None and strategy.root_device.type == "mps":
            raise ValueError(
                "trainer.accelerator: Apple MPS is not supported (metrics and energy targets are "
                "accumulated in float64, which MPS lacks); use --trainer.accelerator cpu or a CUDA GPU"
            )

    def on_fit_start(self) -> None:
        self.check_trainer_settings()
        self.warn_without_validation()

    def warn_without_validation(self) -> None:
        """Say so when no epoch of the run validates (``max_epochs`` below ``check_val_every_n_epoch``):
        no best checkpoint is saved, and the test after ``fit`` scores the last weights."""
        trainer = self._trainer
        every = getattr(trainer, "check_val_every_n_epoch", None)
        epochs = getattr(trainer, "max_epochs", None)
        if trainer is None or not every or epochs is None or not 0 <= epochs < every:
            return
        if trainer.fast_dev_run or not trainer.limit_val_batches:
            return
        rank_zero_warn(
            f"no validation in this run: trainer.max_epochs {epochs} < trainer.check_val_every_n_epoch "
            f"{every}, so no best checkpoint is saved and the test after fit scores the last weights; "
            f"set --trainer.check_val_every_n_epoch {max(epochs, 1)} to validate"
        )

    def warn_labels_outside_bins(self, path: object, kcal: Sequence[float]) -> None:
        """Warn when kcal/h labels fall outside the energy bins: targets and predictions are clamped to
        the edge bins there, so those sequences are learned and scored against the range's end."""
        head = self.model.calorie_head
        labels = torch.as_tensor(kcal, dtype=torch.float64)
        low, high = float(head.kcal_min), float(head.kcal_max)
        outside = int(((labels < low) | (labels > high)).sum())
        if outside and not self._warned_bins:
            self._warned_bins = True
            rank_zero_warn(
                f"{path}: {outside} of {len(labels)} sequences have kcal/h labels outside the bins' range "
                f"[{low:g}, {high:g}] (labels {labels.min():.1f} to {labels.max():.1f}); they are clamped to "
                "the edge bins: widen --model.init_args.kcal_range to cover them"
            )

    def h36m_exclusions(self, dm: Any, split: str) -> tuple[tuple[str, str], ...] | None:
        """MotionBERT's three skipped S9 sequences, when ``motionbert_exclude`` asks for them; they are
        found by the MotionBERT source names, which a file converted from another source lacks
        (the exclusion would silently skip nothing)."""
        if not self.motionbert_exclude:
            return None
        names = dm.source_names(split)
        if not any(_H36M_SOURCE.search(name) for name in names):
            first = f"e.g. {names[0]!r}" if names else "none stored"
            raise ValueError(
                f"{dm.path}: motionbert_exclude needs MotionBERT source names in /sequences/name (like "
                f"'s_09_act_05_subact_02_ca_01'), but the {split!r} split has none ({first}); convert "
                "Human3.6M from the MotionBERT pickle (data_prep/h36m.py --motionbert-pkl) or set "
                "--model.init_args.motionbert_exclude false (the three sequences are then scored)"
            )
        return MOTIONBERT_H36M_EXCLUDE

    def check_data(self, dm: Any) -> None:
        """Refuse a data file without the arrays the heads are trained and scored on."""
        if (self.has_pose or self.input_kind == "3d") and not dm.has_3d:
            raise ValueError(f"{dm.path}: the task needs 3D joints (/frames/joints_3d) but the file has none")
        if self.has_kcal and not dm.has_kcal:
            raise ValueError(f"{dm.path}: the task needs kcal labels (/sequences/kcal) but the file has none")

    def setup(self, stage: str) -> None:
        """Check the data fit the task and build the metric sets of the splits ``stage`` scores."""
        silence_synced_metric_advice()
        self.check_trainer_settings(stage)
        keep_batches_in_float32(self._trainer)
        dm = self.trainer.datamodule if self.trainer is not None else None
        if dm is None:
            raise ValueError("Pose2Met tasks need a Pose2MetDataModule (trainer.datamodule is None)")
        self.check_data(dm)
        if self.has_kcal:
            self.warn_labels_outside_bins(dm.path, dm.file.sequences["kcal"])
        self.target_space = dm.target_space
        # only the splits this stage scores: a file without test sequences can still be fitted and
        # validated (the test after fit calls setup("test") again)
        for split in EVAL_SPLITS_OF_STAGE.get(stage, ("val", "test")):
            if split in self.metrics:
                continue
            group: dict[str, torch.nn.Module] = {}
            data_split = dm.hparams.val_split if split == "val" else dm.hparams.test_split
            if self.has_pose:
                group["pose"] = (
                    MPI3DHPProtocol(sequences=dm.sequence_names(data_split))
                    if self.pose_protocol == "3dhp"
                    else H36MProtocol(
                        actions=dm.split_actions(data_split),
                        exclude=self.h36m_exclusions(dm, data_split),
                    )
                )
            if self.has_kcal:
                group["energy"] = EnergyMetrics(
                    self.model.calorie_head.bin_centers.detach().clone(),
                    sigma=self.kcal_sigma,
                    activities=dm.activities,
                    per_sequence=self.energy_eval == "sequence",
                )
            self.metrics[split] = torch.nn.ModuleDict(group)

    # ---------------------------------------------------------------- forward
    def model_input(self, batch: Mapping[str, Any]) -> Tensor:
        """The encoder input ``(B, T, J, 3)``: normalized 2D + confidence, or root-relative 3D, in the
        model's dtype (batches stay float32 under half precision: :func:`keep_batches_in_float32`)."""
        x = batch["input_2d"] if self.input_kind == "2d" else batch["target_3d"]
        return x.to(self.dtype) if x.is_floating_point() else x

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return self.model(x)

    def predict_with_flip(self, x: Tensor) -> dict[str, Tensor]:
        """Predictions averaged over the input and its left/right flip (test-time augmentation)."""
        out = self.model(x)
        flipped = self.model(flip_pose(x))
        merged: dict[str, Tensor] = {}
        if "pose_3d" in out:
            merged["pose_3d"] = 0.5 * (out["pose_3d"] + flip_pose(flipped["pose_3d"]))
        if "kcal_logits" in out:
            # log of the mean of the two distributions, exact in the far tails (no clamp: bins below a
            # floor would tie and change SPC's ranks)
            both = torch.logaddexp(
                out["kcal_logits"].float().log_softmax(-1), flipped["kcal_logits"].float().log_softmax(-1)
            )
            merged["kcal_logits"] = both - math.log(2.0)
        return merged

    # ------------------------------------------------------------------ steps
    def loss_weights(self) -> tuple[float, float]:
        """Weights of the pose loss and the kcal loss in the total loss (subclasses may schedule)."""
        return 1.0, 1.0

    def _shared_step(self, batch: Mapping[str, Any], stage: Stage) -> tuple[Tensor, dict[str, Tensor]]:
        x = self.model_input(batch)
        use_flip = stage != "train" and self.test_flip
        out = self.predict_with_flip(x) if use_flip else self.model(x)
        w_pose, w_kcal = self.loss_weights()
        total = x.new_zeros(())
        logs: dict[str, Tensor] = {}
        # a head whose weight is 0 in training (a schedule stage) gets no loss at all, so its
        # parameters get no gradient and the optimizer leaves them untouched (no weight decay)
        if self.has_pose and (w_pose > 0 or stage != "train"):
            terms = pose_loss(out["pose_3d"].float(), batch["target_3d"].float(), self.pose_loss_weights)
            logs.update({f"pose_{k}": v for k, v in terms.items()})
            total = total + w_pose * terms["loss"]
        if self.has_kcal and (w_kcal > 0 or stage != "train"):
            centers = self.model.calorie_head.bin_centers
            target = gaussian_target(batch["kcal"], centers, sigma=self.kcal_sigma)
            logs["kcal_kl"] = kcal_kl_loss(out["kcal_logits"], target)
            total = total + w_kcal * logs["kcal_kl"]
        logs["loss"] = total
        batch_size = x.shape[0]
        self.log_dict(
            {f"{stage}/{k}": v.detach() for k, v in logs.items()},
            on_step=stage == "train",
            on_epoch=True,
            prog_bar=False,
            batch_size=batch_size,
            sync_dist=stage != "train",
        )
        if stage == "train":
            self.log("train/loss_step", total.detach(), prog_bar=True, on_step=True, on_epoch=False)
        else:
            self._update_metrics(out, batch, stage)
        return total, out

    def _update_metrics(self, out: Mapping[str, Tensor], batch: Mapping[str, Any], stage: Stage) -> None:
        group = self.metrics[stage]
        if "pose" in group:
            pred_mm = target_to_mm(out["pose_3d"].float(), batch, self.target_space)
            true_mm = target_to_mm(batch["target_3d"].float(), batch, self.target_space)
            metric = group["pose"]
            if isinstance(metric, MPI3DHPProtocol):  # 3DHP rows are its test sequences TS1..TS6
                metric.update(pred_mm, true_mm, batch["frame_index"], batch["valid"], list(batch["subject"]))
            else:
                metric.update(
                    pred_mm,
                    true_mm,
                    batch["frame_index"],
                    batch["valid"],
                    list(batch["action"]),
                    sequence=_sequence_keys(batch.get("sequence")),
                    subject=list(batch["subject"]),
                )
        if "energy" in group:
            group["energy"].update(
                # float64, like the target: in float32 the far tails underflow to zeros, whose ties change SPC
                out["kcal_logits"].double().softmax(-1),
                batch["kcal"],
                known=batch.get("known"),
                activity=list(batch["action"]),
                sequence=batch["sequence_index"],
                weight=(batch["frame_index"] >= 0).sum(-1),  # real (not padded) frames of each window
            )

    def _log_epoch_metrics(self, stage: Stage) -> dict[str, float]:
        results: dict[str, float] = {}
        for metric in self.metrics[stage].values():
            for key, value in metric.compute().items():
                results[f"{stage}/{key}"] = float(value)
            metric.reset()
        # computed values are already synchronized over ranks: identical everywhere
        self.log_dict(results, sync_dist=False, rank_zero_only=False)
        return results

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor:
        loss = self._shared_step(batch, "train")[0]
        # stop at the first non-finite loss, before NaN weights reach a checkpoint; every rank takes
        # the same decision (a rank stopping alone would leave the others waiting in the all-reduce);
        # fp16 loss scaling ("16-mixed") skips such steps by design, so it is left alone
        if str(self.trainer.precision) in FP16_LOSS_SCALING:
            return loss
        finite = self.trainer.strategy.reduce_boolean_decision(bool(torch.isfinite(loss)), all=True)
        if not finite:
            raise TrainingDiverged(
                f"the training loss became non-finite at step {self.global_step} (epoch "
                f"{self.current_epoch}; this process: {float(loss)}): training diverged; lower the "
                "learning rate (--model.init_args.optimizer.init_args.lr) or check the data"
            )
        return loss

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> dict[str, Tensor]:
        """Returns detached predictions for callbacks (figures): pose and kcal expectation."""
        out = self._shared_step(batch, "val")[1]
        result = {"pose_3d": out["pose_3d"].detach()} if "pose_3d" in out else {}
        if "kcal_logits" in out:
            probs = out["kcal_logits"].detach().float().softmax(-1)
            result["kcal_expectation"] = distribution_expectation(probs, self.model.calorie_head.bin_centers)
        return result

    def test_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        self._shared_step(batch, "test")

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            # the sanity check sees a few batches: "no frames of action X" warnings are expected noise
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                self.last_val_results = self._log_epoch_metrics("val")
            return
        self.last_val_results = self._log_epoch_metrics("val")

    def on_test_epoch_end(self) -> None:
        self.last_test_results = self._log_epoch_metrics("test")

    def predict_step(self, batch: Mapping[str, Any], batch_idx: int) -> dict[str, Tensor]:
        x = self.model_input(batch)
        return self.predict_with_flip(x) if self.test_flip else self.model(x)

    # ------------------------------------------------------------- optimizer
    def build_optimizer(
        self, params: list[torch.nn.Parameter]
    ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
        """The configured optimizer over ``params`` and its scheduler (default: AdamW, ExponentialLR 0.99)."""
        if self.optimizer_factory is None:
            optimizer = torch.optim.AdamW(params, lr=5e-4, weight_decay=0.01)
        else:
            try:
                optimizer = self.optimizer_factory(params)
            except ValueError as err:  # torch's check of lr, betas, ...: name the config key
                raise ValueError(f"model.init_args.optimizer: {err}") from None
        if self.scheduler_factory is None:
            return optimizer, torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.99)
        try:
            return optimizer, self.scheduler_factory(optimizer)
        except ValueError as err:
            raise ValueError(f"model.init_args.lr_scheduler: {err}") from None

    def check_optimizer_settings(self) -> None:
        """Build the optimizer once on a probe parameter, so that a settings error (e.g. a negative
        learning rate) surfaces when the task is built, before any run folder is made. Other failures
        (an optimizer that needs accelerator parameters) are left to :meth:`configure_optimizers`."""
        try:
            optimizer, scheduler = self.build_optimizer([torch.nn.Parameter(torch.zeros(1))])
        except ValueError:
            raise
        except Exception:  # noqa: BLE001 - not a settings error; the real build reports it
            return
        self.check_scheduler_settings(optimizer, scheduler, self.lr_interval)

    @staticmethod
    def check_scheduler_settings(
        optimizer: torch.optim.Optimizer, scheduler: Any, interval: str = "epoch", probes: int = 3
    ) -> None:
        """Step the scheduler of a probe optimizer ``probes`` times (epochs or steps: ``interval``): it
        must run and keep every learning rate finite and >= 0 (``StepLR(step_size=0)`` divides by zero,
        a negative ``gamma`` flips the sign). ``ReduceLROnPlateau`` is refused: it needs a monitored
        metric, which Pose2Met's schedule (``lr_interval``) does not pass."""
        name = type(scheduler).__name__
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            raise ValueError(
                "model.init_args.lr_scheduler: ReduceLROnPlateau is not supported (it needs a monitored "
                "metric); use a schedule such as ExponentialLR, StepLR or CosineAnnealingLR"
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "scheduler.step() before optimizer.step()": a probe
            for probe in range(1, probes + 1):
                try:
                    scheduler.step()
                except ZeroDivisionError as err:
                    raise ValueError(
                        f"model.init_args.lr_scheduler: {name} fails when stepped ({err}); check its "
                        "settings (e.g. step_size >= 1)"
                    ) from None
                except Exception:  # noqa: BLE001 - e.g. a schedule shorter than the probe: not ours
                    return
                lrs = [group["lr"] for group in optimizer.param_groups]
                if not all(0 <= lr < float("inf") for lr in lrs):
                    raise ValueError(
                        f"model.init_args.lr_scheduler: {name} makes the learning rate {lrs[0]} after "
                        f"{probe} {interval}(s); expected finite values >= 0 (e.g. gamma in (0, 1])"
                    )

    def lr_scheduler_step(self, scheduler: Any, metric: Any) -> None:
        """Step the schedule; a schedule shorter than the run (``OneCycleLR``'s ``total_steps``) stops
        with the config key and the run's length instead of torch's traceback."""
        try:
            scheduler.step()
        except ValueError as err:
            per_step = self.lr_interval == "step"
            where = f"step {self.global_step}" if per_step else f"epoch {self.current_epoch}"
            length = getattr(self._trainer, "estimated_stepping_batches", None) if per_step else None
            runs = f"; this run takes {length} optimizer steps" if length is not None else ""
            raise ValueError(
                f"model.init_args.lr_scheduler: {type(scheduler).__name__} failed at {where} ({err}){runs}"
            ) from None

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer, scheduler = self.build_optimizer([p for p in self.parameters() if p.requires_grad])
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": self.lr_interval},
        }

    # ------------------------------------------------------------ checkpoint
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store the model description (for :func:`pose2met.lit.checkpoint.load_model`) and RNG states.

        The torch RNG drives dropout (flips are seeded per item by the sampler); restoring it makes a
        run resumed from a mid-epoch checkpoint continue exactly as the uninterrupted run. The loader
        position counts finished batches only: a checkpoint written by an interrupt after the next
        batch was fetched resumes with that batch.
        """
        checkpoint[CHECKPOINT_META_KEY] = model_meta(self)
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            rng["cuda"] = torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None
        trainer = self._trainer
        if trainer is not None and trainer.training:
            finished = trainer.fit_loop.epoch_loop.batch_progress.current.processed
            loop_state = checkpoint.get("loops", {}).get("fit_loop", {}).get("state_dict", {})
            for state in loop_state.get("combined_loader", []):
                if isinstance(state, dict) and "served" in state:  # a ResumableDataLoader's position
                    state["served"] = finished
        checkpoint[RNG_KEY] = rng

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # applied in on_train_start: the sanity check and loader set-up in between draw numbers
        self._rng_to_restore = checkpoint.get(RNG_KEY)

    def on_train_start(self) -> None:
        rng, self._rng_to_restore = getattr(self, "_rng_to_restore", None), None
        if not rng:
            return
        torch.set_rng_state(rng["torch"])
        if rng.get("cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state(rng["cuda"], self.device if self.device.type == "cuda" else None)


def _sequence_keys(names: Sequence[str] | None) -> list[str] | None:
    return None if names is None else [h36m_sequence_key(n) for n in names]
