"""Energy expenditure estimation (kcal/h): the paper's four settings, with a staged schedule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from pose2met.checks import finite_float
from pose2met.lit.losses import PoseLossWeights
from pose2met.lit.task import Pose2MetTask
from pose2met.models import STAPFormer

EnergySetting = Literal["standard", "3d_input", "3d_finetune", "unified"]


@dataclass
class TrainingStage:
    """One stage of a schedule: ``epochs`` epochs with these loss weights."""

    name: str
    epochs: int
    pose_weight: float = 1.0
    kcal_weight: float = 1.0


#: The unified schedule when none is given: an HPE stage, then the joint stage.
DEFAULT_UNIFIED_STAGES = (TrainingStage("hpe", 5, 1.0, 0.0), TrainingStage("joint", 5, 1.0, 1.0))


class EnergyTask(Pose2MetTask):
    """kcal/h estimation from pose sequences.

    Settings (paper, Tables 3 and 8):

    * ``standard``: 2D input -> kcal (calorie head only).
    * ``3d_input``: root-relative 3D input -> kcal.
    * ``3d_finetune``: 2D input -> kcal, encoder initialized from an HPE checkpoint (``init_from``),
      so the representation starts from what 2D -> 3D lifting learned.
    * ``unified``: 2D input, pose and calorie heads, joint loss
      ``pose_weight * pose_loss + kcal_weight * KL``; ``stages`` run in order in one ``fit``
      (default: an HPE stage, then the joint stage), and can start from ``init_from`` too.

    Args:
        encoder: the STAPFormer encoder.
        setting: one of the settings above.
        stages: schedule of the unified setting (ignored by the others); ``trainer.max_epochs`` is
            set to their total.
        num_bins: energy bins K.
        kcal_range: ``(min, max)`` kcal/h of the bins.
        kcal_sigma: std of the Gaussian target distribution (kcal/h).
        calorie_pose_features: calorie head also reads features of the predicted 3D pose (unified).
        pose_loss_weights: weights of the pose loss terms (unified).
        energy_eval: one energy sample per ``"clip"`` (T-frame window) or per ``"sequence"`` (video).
        test_flip: test-time flip averaging.
        init_from: checkpoint to initialize matching weights from (required by ``3d_finetune``): a
            Pose2Met HPE run, or official STAPFormer weights.
        compile: compile the encoder with ``torch.compile``.
        optimizer: optimizer factory.
        lr_scheduler: scheduler factory.
        lr_interval: step the scheduler per ``"epoch"`` or per optimizer ``"step"``.
    """

    def __init__(
        self,
        encoder: STAPFormer,
        setting: EnergySetting = "standard",
        stages: list[TrainingStage] | None = None,
        num_bins: int = 500,
        kcal_range: tuple[float, float] = (0.0, 500.0),
        kcal_sigma: float = 10.0,
        calorie_pose_features: bool = False,
        pose_loss_weights: PoseLossWeights | None = None,
        energy_eval: Literal["clip", "sequence"] = "clip",
        test_flip: bool = True,
        init_from: str | None = None,
        compile: bool = False,
        optimizer: OptimizerCallable | None = None,
        lr_scheduler: LRSchedulerCallable | None = None,
        lr_interval: Literal["epoch", "step"] = "epoch",
    ) -> None:
        if setting == "3d_finetune" and not init_from:
            raise ValueError(
                "setting '3d_finetune' needs init_from: pass --model.init_args.init_from <the checkpoint "
                "of an HPE run> (e.g. runs/<run>/checkpoints/last.ckpt of make train-hpe)"
            )
        unified = setting == "unified"
        super().__init__(
            encoder,
            pose_head=unified,
            calorie_head=True,
            input_kind="3d" if setting == "3d_input" else "2d",
            num_bins=num_bins,
            kcal_range=kcal_range,
            kcal_sigma=kcal_sigma,
            calorie_pose_features=calorie_pose_features and unified,
            pose_loss_weights=pose_loss_weights,
            energy_eval=energy_eval,
            test_flip=test_flip,
            init_from=init_from,
            compile=compile,
            optimizer=optimizer,
            lr_scheduler=lr_scheduler,
            lr_interval=lr_interval,
        )
        self.setting = setting
        ignored = [
            name
            for name, given in (("stages", stages), ("calorie_pose_features", calorie_pose_features))
            if given
        ]
        if ignored and not unified:
            rank_zero_warn(
                f"EnergyTask: {' and '.join(ignored)} apply to setting 'unified' only; ignored for "
                f"setting {setting!r}"
            )
        self.stages = (list(stages) if stages else list(DEFAULT_UNIFIED_STAGES)) if unified else []
        for stage in self.stages:
            if stage.epochs <= 0:
                raise ValueError(f"stage '{stage.name}': epochs must be positive, got {stage.epochs}")
            weights = (stage.pose_weight, stage.kcal_weight)
            if not all(finite_float(w) is not None and w >= 0 for w in weights) or not any(weights):
                raise ValueError(
                    f"stage '{stage.name}': pose_weight and kcal_weight must be finite, >= 0 and not both 0, "
                    f"got {weights}"
                )

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if self.stages and stage == "fit":
            total = sum(s.epochs for s in self.stages)
            if self.trainer.max_epochs != total:
                rank_zero_info(f"unified schedule: max_epochs set to the stages' total, {total}")
                self.trainer.fit_loop.max_epochs = total

    def current_stage(self) -> TrainingStage | None:
        """The schedule stage of the current epoch (None outside a staged run)."""
        if not self.stages:
            return None
        epoch, end = self.current_epoch, 0
        for stage in self.stages:
            end += stage.epochs
            if epoch < end:
                return stage
        return self.stages[-1]

    def selectable_epoch(self) -> bool:
        """Whether this epoch may be the best checkpoint: not in a stage that leaves kcal untrained."""
        stage = self.current_stage()
        return stage is None or stage.kcal_weight > 0

    def loss_weights(self) -> tuple[float, float]:
        stage = self.current_stage()
        return (1.0, 1.0) if stage is None else (stage.pose_weight, stage.kcal_weight)

    def on_train_epoch_start(self) -> None:
        stage = self.current_stage()
        if stage is not None:
            self.log("train/stage", float(self.stages.index(stage)), on_step=False, on_epoch=True)
