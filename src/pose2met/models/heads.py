"""Heads on the STAPFormer motion representation ``(B, T, J, d_e)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from einops import reduce
from torch import Tensor, nn

from pose2met.models.energy_bins import centers_mismatch, make_bin_centers
from pose2met.models.layers import restore_exact_buffer

#: Name of the calorie head's bin-centre buffer (a setting of the task, checked rather than learned).
BIN_CENTERS = "bin_centers"

#: Pose features per joint used by :class:`CalorieHead` (``use_pose_features=True``).
POSE_FEATURES_PER_JOINT = 3


class PoseHead(nn.Module):
    """3D pose regression, ``Linear(d_e -> dim_out)`` per joint and frame: ``(B, T, J, d_e) -> (..., 3)``."""

    def __init__(self, dim_rep: int, dim_out: int = 3) -> None:
        super().__init__()
        self.dim_rep, self.dim_out = dim_rep, dim_out
        self.linear = nn.Linear(dim_rep, dim_out)
        nn.init.trunc_normal_(self.linear.weight, std=0.02, a=-0.04, b=0.04)
        nn.init.zeros_(self.linear.bias)

    def forward(self, rep: Tensor) -> Tensor:
        return self.linear(rep)


def pose_motion_features(pose: Tensor, eps: float = 1e-4) -> Tensor:
    """Per-joint motion statistics of a pose sequence, log-compressed: ``(B, T, J, 3) -> (B, 3 J)``.

    For each joint: mean speed ``|x_{t+1} - x_t|``, mean acceleration ``|x_{t+1} - 2 x_t + x_{t-1}|``
    (per frame, in the units of ``pose``) and the spread of its positions over time (root of the
    summed per-axis variances); each as ``log(eps + value)``. Statistics that need more frames than
    given are zero before the log.
    """
    b, t, j, _ = pose.shape
    zeros = pose.new_zeros(b, j)
    speed = (pose[:, 1:] - pose[:, :-1]).norm(dim=-1).mean(1) if t > 1 else zeros
    accel = (pose[:, 2:] - 2 * pose[:, 1:-1] + pose[:, :-2]).norm(dim=-1).mean(1) if t > 2 else zeros
    spread = (pose - pose.mean(1, keepdim=True)).square().sum(-1).mean(1).sqrt()
    return torch.log(eps + torch.cat([speed, accel, spread], dim=-1))


class CalorieHead(nn.Module):
    """Energy-expenditure head: representation (and optionally predicted pose) -> logits over K bins.

    Pooling: the mean and the max of the representation over frames and joints, concatenated
    (``2 d_e``). With ``use_pose_features``, :func:`pose_motion_features` of the predicted 3D pose
    (``3 J`` values) are appended. Then ``LayerNorm -> Linear(hidden) -> GELU -> Dropout -> Linear(K)``.

    ``bin_centers`` (buffer, ``(K,)``, kcal/h) are the centres of K equal bins over
    ``[kcal_min, kcal_max]``; decode the softmax of the logits with
    :mod:`pose2met.models.energy_bins`. They stay exact and at least float32 through casts
    (:func:`restore_exact_buffer`; bf16 would merge neighbouring centres) and through loading.
    """

    def __init__(
        self,
        dim_rep: int,
        num_bins: int = 500,
        kcal_min: float = 0.0,
        kcal_max: float = 500.0,
        hidden: int = 512,
        use_pose_features: bool = False,
        num_joints: int = 17,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.dim_rep, self.num_bins = dim_rep, int(num_bins)
        self.kcal_min, self.kcal_max = float(kcal_min), float(kcal_max)
        self.use_pose_features, self.num_joints = use_pose_features, num_joints
        self.register_buffer(BIN_CENTERS, make_bin_centers(num_bins, kcal_min, kcal_max))
        dim_in = 2 * dim_rep + (POSE_FEATURES_PER_JOINT * num_joints if use_pose_features else 0)
        self.mlp = nn.Sequential(
            nn.LayerNorm(dim_in),
            nn.Linear(dim_in, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_bins),
        )
        for layer in self.mlp:
            if isinstance(layer, nn.Linear):
                nn.init.trunc_normal_(layer.weight, std=0.02, a=-0.04, b=0.04)
                nn.init.zeros_(layer.bias)

    def _exact_centers(self, dtype: torch.dtype) -> Tensor:
        return make_bin_centers(self.num_bins, self.kcal_min, self.kcal_max, dtype=dtype)

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> CalorieHead:
        dtype_before = self.bin_centers.dtype
        super()._apply(fn, recurse)
        restore_exact_buffer(self, BIN_CENTERS, dtype_before, self._exact_centers)
        return self

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        """Stored centres must be this head's bins (up to bf16 rounding); they are then set exactly."""
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        stored = state_dict.get(prefix + BIN_CENTERS)
        if not isinstance(stored, Tensor) or stored.shape != self.bin_centers.shape:
            return  # missing or misshapen: reported by the strict load itself
        exact = self._exact_centers(torch.float64)
        error = centers_mismatch(stored, exact)
        if error is not None:
            error_msgs.append(
                f"{prefix}{BIN_CENTERS}: the stored bins differ from this head's {self.num_bins} bins "
                f"over [{self.kcal_min}, {self.kcal_max}] kcal/h by up to {error:.3g} kcal/h "
                "(another kcal_range?)"
            )
            return
        with torch.no_grad():
            self.bin_centers.copy_(exact)

    def forward(self, rep: Tensor, pose_3d: Tensor | None = None) -> Tensor:
        """``rep (B, T, J, d_e)`` and ``pose_3d (B, T, J, 3)`` (iff ``use_pose_features``) -> ``(B, K)``."""
        if rep.dim() != 4 or rep.shape[-1] != self.dim_rep:
            raise ValueError(
                f"CalorieHead: rep must have shape (B, T, J, {self.dim_rep}), got {tuple(rep.shape)}"
            )
        pooled = [reduce(rep, "b t j c -> b c", "mean"), reduce(rep, "b t j c -> b c", "max")]
        if self.use_pose_features:
            expected = (rep.shape[0], rep.shape[1], self.num_joints, 3)
            if pose_3d is None or tuple(pose_3d.shape) != expected:
                got = None if pose_3d is None else tuple(pose_3d.shape)
                raise ValueError(
                    f"CalorieHead(use_pose_features=True) needs pose_3d of shape {expected}, got {got}"
                )
            pooled.append(pose_motion_features(pose_3d).to(rep.dtype))
        return self.mlp(torch.cat(pooled, dim=-1))

    def extra_repr(self) -> str:
        return (
            f"bins={self.num_bins} over [{self.kcal_min}, {self.kcal_max}] kcal/h, "
            f"use_pose_features={self.use_pose_features}"
        )
