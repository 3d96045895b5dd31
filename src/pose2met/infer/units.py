"""Model outputs -> root-relative millimetres (or clearly labelled normalized units).

* ``camera`` models (Pose2Met default target) predict root-relative camera coordinates in metres:
  mm = output x 1000, no intrinsics needed.
* ``image25d`` models and official STAPFormer weights predict the MotionBERT 2.5D space: x, y in
  normalized image units (``2 / W`` per pixel) and depth on the same scale, root-relative. Back to
  pixels: ``p = output * W / 2``. A pixel offset at the root's depth ``Z`` is ``Z / f`` mm (pinhole),
  so with intrinsics ``mm = p * Z / (fx, fy, fx)`` (depth on the x scale, as in training). ``Z`` is
  ``--root-depth`` when given; otherwise it is solved from the subject's height: the ankle-to-head
  chain of the predicted skeleton (hip-knee-ankle averaged over both legs, plus
  pelvis-spine-thorax-neck-head) is set to ``CHAIN_HEIGHT_FRACTION x body height`` (median over
  frames, so one depth for the clip). Without intrinsics the output stays normalized.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pose2met.checks import is_positive_number

#: Fraction of standing height spanned by the h36m17 ankle-to-head chain (the joints sit above the
#: soles; in Human3.6M subjects the chain is about 1.62 m for 1.70 m tall people).
CHAIN_HEIGHT_FRACTION = 0.95
DEFAULT_BODY_HEIGHT_MM = 1700.0
_LEGS = ((1, 2, 3), (4, 5, 6))  # hip, knee, ankle (right, left)
_TRUNK = (0, 7, 8, 9, 10)  # pelvis, spine, thorax, neck, head


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole camera intrinsics in pixels."""

    fx: float
    fy: float
    cx: float
    cy: float

    def __post_init__(self) -> None:
        if not (np.isfinite([self.fx, self.fy, self.cx, self.cy]).all() and self.fx > 0 and self.fy > 0):
            raise ValueError(f"--intrinsics: FX and FY must be positive finite numbers, got {self}")


def chain_length(pose: np.ndarray) -> np.ndarray:
    """Ankle-to-head chain length of ``pose (..., 17, 3)`` -> ``(...,)`` (same units as ``pose``)."""

    def path(joints: tuple[int, ...]) -> np.ndarray:
        seg = pose[..., joints[1:], :] - pose[..., joints[:-1], :]
        return np.linalg.norm(seg, axis=-1).sum(-1)

    legs = 0.5 * (path(_LEGS[0]) + path(_LEGS[1]))
    return legs + path(_TRUNK)


@dataclass
class MetricPose:
    """Root-relative 3D joints with their units.

    Attributes:
        joints: ``(T, 17, 3)``.
        in_mm: whether ``joints`` are millimetres (else normalized image units).
        units: human-readable description of the units.
        root_depth_mm: the root depth used for ``image25d`` -> mm (``None`` otherwise).
    """

    joints: np.ndarray
    in_mm: bool
    units: str
    root_depth_mm: float | None = None


def to_output_units(
    pose: np.ndarray,
    target_space: str,
    width: float,
    intrinsics: Intrinsics | None = None,
    root_depth_mm: float | None = None,
    body_height_mm: float = DEFAULT_BODY_HEIGHT_MM,
) -> MetricPose:
    """Model output ``pose (T, 17, 3)`` in ``target_space`` -> root-relative :class:`MetricPose`."""
    pose = np.asarray(pose, dtype=np.float64)
    pose = pose - pose[..., :1, :]
    axes = "camera axes (x right, y down, z away from the camera)"
    if target_space == "camera":
        return MetricPose(pose * 1000.0, True, f"millimetres, root-relative (pelvis at 0), {axes}")
    if target_space != "image25d":
        raise ValueError(f"unknown target space {target_space!r}; expected 'camera' or 'image25d'")
    if intrinsics is None:
        return MetricPose(
            pose,
            False,
            "normalized image units (MotionBERT 2.5D: 1 unit = W/2 pixels; depth on the same scale), "
            "root-relative; pass --intrinsics FX FY CX CY for millimetres",
        )
    # offsets in pixels, divided by the focal lengths: millimetres per millimetre of root depth
    per_depth = pose * (width / 2.0) / np.array([intrinsics.fx, intrinsics.fy, intrinsics.fx])
    how = "--root-depth"
    if root_depth_mm is None:
        if not is_positive_number(body_height_mm):
            raise ValueError(
                f"--body-height must be a positive number of millimetres, got {body_height_mm:g}"
            )
        chain = float(np.median(chain_length(per_depth)))
        if not (np.isfinite(chain) and chain > 0):
            raise ValueError("cannot solve the root depth: the predicted skeleton has zero or infinite size")
        root_depth_mm = CHAIN_HEIGHT_FRACTION * body_height_mm / chain
        how = f"solved from a body height of {body_height_mm:g} mm"
        if not is_positive_number(root_depth_mm):
            raise ValueError(
                f"cannot solve the root depth from --body-height {body_height_mm:g}: got {root_depth_mm:g} mm"
            )
    elif not is_positive_number(root_depth_mm):
        raise ValueError(f"--root-depth must be a positive number of millimetres, got {root_depth_mm:g}")
    units = f"millimetres, root-relative (pelvis at 0), {axes}; root depth {root_depth_mm:.0f} mm ({how})"
    return MetricPose(per_depth * root_depth_mm, True, units, float(root_depth_mm))
