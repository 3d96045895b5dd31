"""LightningModules: 3D pose estimation, energy expenditure estimation and unified training."""

from pose2met.lit.energy import EnergyTask, TrainingStage
from pose2met.lit.hpe import HPETask
from pose2met.lit.losses import PoseLossWeights
from pose2met.lit.task import Pose2MetTask

__all__ = ["EnergyTask", "HPETask", "Pose2MetTask", "PoseLossWeights", "TrainingStage"]
