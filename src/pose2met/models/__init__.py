"""Plain ``nn.Module``s: the STAPFormer encoder, its blocks, the pose and calorie heads, presets."""

from __future__ import annotations

from pose2met.models import energy_bins
from pose2met.models.attention import AttentionImpl, attend
from pose2met.models.heads import CalorieHead, PoseHead, pose_motion_features
from pose2met.models.layers import DropPath, FeedForward, TokenBatchNorm
from pose2met.models.mixers import MixSTEMixer, SkeletonGCN, STCAttention, STConvMixer
from pose2met.models.model import Pose2MetModel, PoseLifter
from pose2met.models.stap import STAPAttention
from pose2met.models.stapformer import STAPBlock, STAPFormer, stapformer_preset

__all__ = [
    "AttentionImpl",
    "CalorieHead",
    "DropPath",
    "FeedForward",
    "MixSTEMixer",
    "Pose2MetModel",
    "PoseHead",
    "PoseLifter",
    "STAPAttention",
    "STAPBlock",
    "STAPFormer",
    "STCAttention",
    "STConvMixer",
    "SkeletonGCN",
    "TokenBatchNorm",
    "attend",
    "energy_bins",
    "pose_motion_features",
    "stapformer_preset",
]
