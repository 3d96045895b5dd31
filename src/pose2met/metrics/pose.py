"""Pose ``Metric`` classes: running means of per-frame errors, with sum/count states (DDP: sum)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

from pose2met.metrics._checks import check_finite_result
from pose2met.metrics.functional.pose import (
    AUC_THRESHOLDS_MM,
    PCK_THRESHOLD_MM,
    _mean_compute,
    _mean_update,
    auc_3dhp_per_frame,
    mpjpe_per_frame,
    mpjve_per_frame,
    n_mpjpe_per_frame,
    p_mpjpe_per_frame,
    pck_3dhp_per_frame,
)
from pose2met.skeleton import PCK_JOINTS


class _PerFrameMean(Metric):
    """Mean of a per-frame pose metric over every (valid) frame seen.

    ``update(pred (..., J, 3), target (..., J, 3), valid (...) bool | None)`` in mm; ``compute()``
    returns the float64 mean. States: ``total`` (float64) and ``count`` (int64), summed over ranks.
    """

    full_state_update = False
    higher_is_better: bool | None = False
    is_differentiable = True
    total: Tensor
    count: Tensor

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.int64), dist_reduce_fx="sum")

    def _per_frame(self, pred: Tensor, target: Tensor) -> Tensor:
        raise NotImplementedError

    def _valid(self, valid: Tensor | None) -> Tensor | None:
        return valid

    def update(self, pred: Tensor, target: Tensor, valid: Tensor | None = None) -> None:
        """Accumulate the frames of a batch; ``valid`` (shape ``pred.shape[:-2]``) masks frames."""
        name = type(self).__name__
        total, count = _mean_update(self._per_frame(pred, target), self._valid(valid), f"{name}.update")
        check_finite_result(total, pred, target, f"{name}.update")
        self.total += total.to(self.total.device)
        self.count += count.to(self.count.device)

    def compute(self) -> Tensor:
        return _mean_compute(self.total, self.count, f"{type(self).__name__}.compute")


class MPJPE(_PerFrameMean):
    """MPJPE (Protocol 1), mm: mean joint error after aligning the roots (``root_align``).

    Example:
        >>> import torch
        >>> metric = MPJPE()
        >>> target = torch.zeros(2, 17, 3); pred = target.clone()
        >>> pred[..., 1:, 0] = 17.0
        >>> metric.update(pred, target)
        >>> metric.compute()
        tensor(16., dtype=torch.float64)
    """

    def __init__(self, root_align: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.root_align = root_align

    def _per_frame(self, pred: Tensor, target: Tensor) -> Tensor:
        return mpjpe_per_frame(pred, target, self.root_align)


class PMPJPE(_PerFrameMean):
    """P-MPJPE (Protocol 2), mm: MPJPE after per-frame similarity Procrustes alignment."""

    is_differentiable = False

    def _per_frame(self, pred: Tensor, target: Tensor) -> Tensor:
        return p_mpjpe_per_frame(pred, target)


class NMPJPE(_PerFrameMean):
    """N-MPJPE, mm: MPJPE after the optimal per-frame scale of the prediction."""

    def __init__(self, root_align: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.root_align = root_align

    def _per_frame(self, pred: Tensor, target: Tensor) -> Tensor:
        return n_mpjpe_per_frame(pred, target, self.root_align)


class MPJVE(_PerFrameMean):
    """MPJVE, mm per frame: error of first differences along the time axis.

    ``update(pred (..., T, J, 3), target, valid (..., T) | None)``: a frame step counts when both of
    its frames are valid.
    """

    def __init__(self, root_align: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.root_align = root_align

    def _per_frame(self, pred: Tensor, target: Tensor) -> Tensor:
        return mpjve_per_frame(pred, target, self.root_align)

    def _valid(self, valid: Tensor | None) -> Tensor | None:
        if valid is None:
            return None
        if valid.ndim < 1 or valid.shape[-1] < 2:
            raise ValueError(
                f"MPJVE.update: `valid` must have shape (..., T) with T >= 2, got {tuple(valid.shape)}"
            )
        return valid[..., 1:] & valid[..., :-1]


class PCK3DHP(_PerFrameMean):
    """MPI-INF-3DHP PCK in percent: share of the 14 scored joints with error ``< threshold`` mm."""

    higher_is_better = True
    is_differentiable = False

    def __init__(
        self,
        threshold: float = PCK_THRESHOLD_MM,
        root_align: bool = True,
        joints: Sequence[int] = PCK_JOINTS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.threshold = float(threshold)
        self.root_align = root_align
        self.joints = tuple(joints)

    def _per_frame(self, pred: Tensor, target: Tensor) -> Tensor:
        return pck_3dhp_per_frame(pred, target, self.threshold, self.root_align, self.joints)


class AUC3DHP(_PerFrameMean):
    """MPI-INF-3DHP AUC in percent: mean PCK over thresholds 0, 5, ..., 150 mm."""

    higher_is_better = True
    is_differentiable = False

    def __init__(
        self,
        root_align: bool = True,
        joints: Sequence[int] = PCK_JOINTS,
        thresholds: Sequence[float] = AUC_THRESHOLDS_MM,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.root_align = root_align
        self.joints = tuple(joints)
        self.thresholds = tuple(float(t) for t in thresholds)

    def _per_frame(self, pred: Tensor, target: Tensor) -> Tensor:
        return auc_3dhp_per_frame(pred, target, self.root_align, self.joints, self.thresholds)
