"""Functional forms of the pose and energy metrics (tensors in, tensors out)."""

from __future__ import annotations

from pose2met.metrics.functional.energy import (
    NLL_CLIP,
    average_ranks,
    distribution_moments,
    gaussian_nll,
    gaussian_target,
    rowwise_spearman,
    vid2burn_metrics,
    vid2burn_per_sample,
)
from pose2met.metrics.functional.pose import (
    AUC_THRESHOLDS_MM,
    PCK_THRESHOLD_MM,
    auc_3dhp,
    auc_3dhp_per_frame,
    mpjpe,
    mpjpe_per_frame,
    mpjve,
    mpjve_per_frame,
    n_mpjpe,
    n_mpjpe_per_frame,
    p_mpjpe,
    p_mpjpe_per_frame,
    pck_3dhp,
    pck_3dhp_per_frame,
    procrustes_align,
)

__all__ = [
    "AUC_THRESHOLDS_MM",
    "NLL_CLIP",
    "PCK_THRESHOLD_MM",
    "auc_3dhp",
    "auc_3dhp_per_frame",
    "average_ranks",
    "distribution_moments",
    "gaussian_nll",
    "gaussian_target",
    "mpjpe",
    "mpjpe_per_frame",
    "mpjve",
    "mpjve_per_frame",
    "n_mpjpe",
    "n_mpjpe_per_frame",
    "p_mpjpe",
    "p_mpjpe_per_frame",
    "pck_3dhp",
    "pck_3dhp_per_frame",
    "procrustes_align",
    "rowwise_spearman",
    "vid2burn_metrics",
    "vid2burn_per_sample",
]
