"""3D human pose estimation: 2D keypoints -> root-relative 3D joints."""

from __future__ import annotations

from typing import Literal

from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable

from pose2met.lit.losses import PoseLossWeights
from pose2met.lit.task import Pose2MetTask
from pose2met.models import STAPFormer


class HPETask(Pose2MetTask):
    """2D -> 3D lifting with the official loss (MPJPE + 0.5 N-MPJPE + 20 velocity) and flip TTA.

    Args:
        encoder: the STAPFormer encoder.
        pose_loss_weights: weights of the pose loss terms.
        pose_protocol: ``"h36m"`` (per-action P1/P2) or ``"3dhp"`` (PCK/AUC/MPJPE rows).
        motionbert_exclude: skip the 3 S9 sequences the MotionBERT Human3.6M protocol skips.
        test_flip: test-time flip averaging in val/test.
        init_from: checkpoint to initialize matching weights from (a Pose2Met run, or official
            STAPFormer weights: encoder and pose head).
        compile: compile the encoder with ``torch.compile``.
        optimizer: optimizer factory (default AdamW lr 5e-4, wd 0.01).
        lr_scheduler: scheduler factory (default ExponentialLR gamma 0.99 per epoch).
        lr_interval: step the scheduler per ``"epoch"`` or per optimizer ``"step"``.
    """

    def __init__(
        self,
        encoder: STAPFormer,
        pose_loss_weights: PoseLossWeights | None = None,
        pose_protocol: Literal["h36m", "3dhp"] = "h36m",
        motionbert_exclude: bool = False,
        test_flip: bool = True,
        init_from: str | None = None,
        compile: bool = False,
        optimizer: OptimizerCallable | None = None,
        lr_scheduler: LRSchedulerCallable | None = None,
        lr_interval: Literal["epoch", "step"] = "epoch",
    ) -> None:
        super().__init__(
            encoder,
            pose_head=True,
            calorie_head=False,
            input_kind="2d",
            pose_loss_weights=pose_loss_weights,
            pose_protocol=pose_protocol,
            motionbert_exclude=motionbert_exclude,
            test_flip=test_flip,
            init_from=init_from,
            compile=compile,
            optimizer=optimizer,
            lr_scheduler=lr_scheduler,
            lr_interval=lr_interval,
        )
