"""Pose and energy metrics (torchmetrics ``Metric`` classes; functional forms in ``.functional``).

Pose metrics take ``(..., J, 3)`` joints in mm, h36m17 order; energy metrics take K-bin
probabilities and kcal/h labels. Every class is correct under DDP (states summed, or per-frame /
per-sample records gathered and de-duplicated in ``compute``).
"""

from __future__ import annotations

from pose2met.metrics.energy import EnergyMetrics, GaussianNLL, Vid2BurnMetric
from pose2met.metrics.pose import AUC3DHP, MPJPE, MPJVE, NMPJPE, PCK3DHP, PMPJPE
from pose2met.metrics.protocol import H36M_ACTIONS, MOTIONBERT_H36M_EXCLUDE, H36MProtocol, MPI3DHPProtocol

__all__ = [
    "AUC3DHP",
    "H36M_ACTIONS",
    "MOTIONBERT_H36M_EXCLUDE",
    "MPJPE",
    "MPJVE",
    "NMPJPE",
    "PCK3DHP",
    "PMPJPE",
    "EnergyMetrics",
    "GaussianNLL",
    "H36MProtocol",
    "MPI3DHPProtocol",
    "Vid2BurnMetric",
]
