"""Input normalization, the two 3D target spaces and left/right flipping.

Conventions (``docs/data_format.md``):

* **2D input** (MotionBERT): ``x' = x / w * 2 - 1``, ``y' = y / w * 2 - h / w`` for an image of
  ``w x h`` pixels, so the image centre maps to ``(0, 0)`` and both axes share the scale ``2 / w``.
  The confidence is the third channel.
* **3D targets**, root-relative (root = joint 0):

  * ``camera``: camera coordinates in metres, ``(P - P_root) / 1000`` with ``P`` in mm.
  * ``image25d`` (MotionBERT): ``x, y`` = normalized image coordinates of the ground-truth
    projection minus the root's; ``z = (Z - Z_root) / factor_2_5d * 2 / w``. All three channels
    return to mm as ``target * w / 2 * factor_2_5d`` (``factor_2_5d`` = mm per pixel at root depth).

The functions accept NumPy arrays or torch tensors (results keep the input's type, device and
dtype) unless noted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar

import numpy as np
import torch
from torch import Tensor

from pose2met.skeleton import NUM_JOINTS, ROOT, flip_permutation

Array = TypeVar("Array", np.ndarray, Tensor)
TargetSpace = Literal["camera", "image25d"]
TARGET_SPACES: tuple[str, ...] = ("camera", "image25d")
_FLIP_PERM = flip_permutation()


def _split_xy(xy: Array) -> tuple[Array, Array]:
    if xy.shape[-1] < 2:
        raise ValueError(f"expected a last axis with x, y (>= 2 channels), got shape {tuple(xy.shape)}")
    return xy[..., 0], xy[..., 1]


def _stack(x: Array, y: Array, like: Array) -> Array:
    if isinstance(like, Tensor):
        return torch.stack([x, y], dim=-1)
    return np.stack([x, y], axis=-1)


def normalize_2d(xy: Array, width: Any, height: Any) -> Array:
    """Pixel coordinates ``(..., 2)`` -> normalized ``x / w * 2 - 1``, ``y / w * 2 - h / w``.

    ``width``/``height`` are scalars or arrays broadcastable to ``xy[..., 0]`` (e.g. ``(B, 1, 1)``
    for ``xy`` of shape ``(B, T, J, 2)``).
    """
    x, y = _split_xy(xy)
    return _stack(x / width * 2 - 1, y / width * 2 - height / width, xy)


def denormalize_2d(xy_norm: Array, width: Any, height: Any) -> Array:
    """Inverse of :func:`normalize_2d`: ``x = (x' + 1) * w / 2``, ``y = (y' + h / w) * w / 2``."""
    x, y = _split_xy(xy_norm)
    return _stack((x + 1) * width / 2, (y + height / width) * width / 2, xy_norm)


def root_relative(joints: Array) -> Array:
    """Subtract the root joint: ``(..., J, C) -> (..., J, C)``."""
    return joints - joints[..., ROOT : ROOT + 1, :]


def camera_target(joints_3d_mm: Array) -> Array:
    """Camera-space joints in mm ``(..., J, 3)`` -> root-relative metres ``(..., J, 3)``."""
    return root_relative(joints_3d_mm) / 1000.0


def image25d_target(joints_2d_px: Array, joints_3d_mm: Array, factor_2_5d: Array, width: Any) -> Array:
    """The MotionBERT 2.5D target, root-relative.

    Args:
        joints_2d_px: ground-truth projection in pixels ``(..., T, J, 2)``.
        joints_3d_mm: camera-space joints in mm ``(..., T, J, 3)`` (only depth ``Z`` is used).
        factor_2_5d: mm per pixel at root depth ``(..., T)``.
        width: image width in pixels (scalar or broadcastable to ``(..., T)``).

    Returns:
        ``(..., T, J, 3)``: ``x, y`` = ``(p - p_root) * 2 / w`` (normalized image coordinates minus the
        root's), ``z = (Z - Z_root) / factor_2_5d * 2 / w``.
    """
    xy = root_relative(joints_2d_px) * 2 / _expand(width, joints_2d_px, 2)
    dz = root_relative(joints_3d_mm[..., 2:3])
    scale = 2 / (_expand(factor_2_5d, dz, 2) * _expand(width, dz, 2))
    z = dz * scale
    if isinstance(xy, Tensor):
        return torch.cat([xy, z], dim=-1)
    return np.concatenate([xy, z], axis=-1)


def _expand(value: Any, like: Array, trailing: int) -> Any:
    """Append ``trailing`` singleton axes to an array-valued ``value`` (scalars pass through)."""
    if isinstance(value, (Tensor, np.ndarray)) and value.ndim > 0:
        return value[(...,) + (None,) * trailing]
    return value


def target_to_mm(target: Tensor, batch: Mapping[str, Any], space: str) -> Tensor:
    """Root-relative target ``(B, T, J, 3)`` in ``space`` -> root-relative mm ``(B, T, J, 3)``.

    ``camera``: ``target * 1000``. ``image25d``: ``target * w / 2 * factor_2_5d`` using
    ``batch["image_size"]`` ``(B, 2)`` (width, height) and ``batch["factor_2_5d"]`` ``(B, T)``.
    """
    if target.ndim != 4 or target.shape[-1] != 3:
        raise ValueError(f"target_to_mm: expected target of shape (B, T, J, 3), got {tuple(target.shape)}")
    if space == "camera":
        return target * 1000.0
    if space != "image25d":
        raise ValueError(f"target_to_mm: unknown target space '{space}'; expected one of {TARGET_SPACES}")
    for key in ("image_size", "factor_2_5d"):
        if key not in batch:
            raise KeyError(f"target_to_mm(space='image25d') needs batch['{key}']")
    width = batch["image_size"][:, 0].to(device=target.device, dtype=target.dtype)
    factor = batch["factor_2_5d"].to(device=target.device, dtype=target.dtype)
    if factor.shape != target.shape[:2]:
        raise ValueError(
            f"target_to_mm: batch['factor_2_5d'] has shape {tuple(factor.shape)}, "
            f"expected {tuple(target.shape[:2])}"
        )
    scale = width[:, None] / 2 * factor  # (B, T)
    return target * scale[:, :, None, None]


def flip_pose(x: Array) -> Array:
    """Mirror a normalized / root-relative pose: negate channel 0 (x) and swap left/right joints.

    Works on ``(..., J, C)`` arrays or tensors with ``J = 17`` (h36m17 order); flipping twice
    returns the input. Normalized 2D inputs are centred on the image centre and 3D targets are
    root-relative, so the mirror about the vertical axis is ``x -> -x``.
    """
    if x.ndim < 2 or x.shape[-2] != NUM_JOINTS:
        raise ValueError(f"flip_pose: expected (..., {NUM_JOINTS}, C), got shape {tuple(x.shape)}")
    channels = x.shape[-1]
    if isinstance(x, Tensor):
        sign = torch.ones(channels, device=x.device, dtype=x.dtype)
        sign[0] = -1
        perm = torch.as_tensor(_FLIP_PERM, device=x.device)
        return x.index_select(-2, perm) * sign
    sign = np.ones(channels, dtype=x.dtype)
    sign[0] = -1
    return x[..., _FLIP_PERM, :] * sign
