"""Training losses: the official 3D pose recipe and the KL loss on energy-bin distributions."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class PoseLossWeights:
    """Weights of the pose loss terms (official recipe: 1, 0.5, 20)."""

    mpjpe: float = 1.0
    n_mpjpe: float = 0.5
    velocity: float = 20.0

    def __post_init__(self) -> None:
        values = {"mpjpe": self.mpjpe, "n_mpjpe": self.n_mpjpe, "velocity": self.velocity}
        bad = {k: v for k, v in values.items() if not (isinstance(v, (int, float)) and 0 <= v < math.inf)}
        if bad:
            raise ValueError(f"pose_loss_weights: weights must be finite and >= 0, got {bad}")
        if not any(values.values()):
            raise ValueError(f"pose_loss_weights: at least one weight must be > 0, got {values}")


def _joint_error(pred: Tensor, target: Tensor) -> Tensor:
    """Mean Euclidean distance over all joints and frames; ``(..., J, 3)`` -> scalar."""
    return torch.linalg.vector_norm(pred - target, dim=-1).mean()


def scale_aligned(pred: Tensor, target: Tensor) -> Tensor:
    """``pred`` scaled per frame by the least-squares optimal factor towards ``target``, ``(..., J, 3)``."""
    num = (pred * target).sum(dim=(-1, -2), keepdim=True)
    den = (pred * pred).sum(dim=(-1, -2), keepdim=True).clamp_min(1e-8)
    return pred * (num / den)


def pose_loss(pred: Tensor, target: Tensor, weights: PoseLossWeights) -> dict[str, Tensor]:
    """Official STAPFormer / MotionBERT pose loss on ``(B, T, J, 3)`` root-relative poses.

    Returns the terms and their weighted sum under ``"loss"``: MPJPE, N-MPJPE (per-frame optimal
    scale) and the velocity error (MPJPE of first differences along T).
    """
    terms = {
        "mpjpe": _joint_error(pred, target),
        "n_mpjpe": _joint_error(scale_aligned(pred, target), target),
        "velocity": _joint_error(torch.diff(pred, dim=1), torch.diff(target, dim=1))
        if pred.shape[1] > 1
        else pred.new_zeros(()),
    }
    terms["loss"] = (
        weights.mpjpe * terms["mpjpe"]
        + weights.n_mpjpe * terms["n_mpjpe"]
        + weights.velocity * terms["velocity"]
    )
    return terms


def kcal_kl_loss(logits: Tensor, target_dist: Tensor) -> Tensor:
    """KL(target || softmax(logits)) averaged over the batch; ``(B, K)`` each."""
    return F.kl_div(F.log_softmax(logits.float(), dim=-1), target_dist.float(), reduction="batchmean")
