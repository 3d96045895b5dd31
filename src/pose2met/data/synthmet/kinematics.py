"""Rotations, forward and inverse kinematics and smooth-signal helpers (vectorized NumPy).

Frames: the SynthMet world and body frames are right-handed, ``x`` to the subject's right, ``y``
forward (the facing direction), ``z`` up; lengths in mm, angles in radians.

Joint rotations are Euler angles ``(x, y, z)`` composed as ``Ry(y) @ Rx(x) @ Rz(z)`` (``z``, the
axial twist, acts first); the rotation of joint ``j`` turns the segments from ``j`` to its
children. The root (pelvis) orientation is ``Rz(yaw) @ Rx(pitch) @ Ry(roll)``.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from pose2met.skeleton import NUM_JOINTS, PARENTS

_PLANES = ((1, 2), (2, 0), (0, 1))  # the (i, j) plane each axis rotates


def axis_rotation(angle: np.ndarray, axis: int) -> np.ndarray:
    """Rotation matrices about ``axis`` (0=x, 1=y, 2=z): ``(...,)`` angles -> ``(..., 3, 3)``."""
    angle = np.asarray(angle, dtype=np.float64)
    c, s = np.cos(angle), np.sin(angle)
    out = np.zeros((*angle.shape, 3, 3))
    i, j = _PLANES[axis]
    out[..., axis, axis] = 1.0
    out[..., i, i] = c
    out[..., j, j] = c
    out[..., i, j] = -s
    out[..., j, i] = s
    return out


def joint_rotations(angles: np.ndarray) -> np.ndarray:
    """Local joint rotations ``Ry(a_y) @ Rx(a_x) @ Rz(a_z)``: ``(..., 3)`` -> ``(..., 3, 3)``."""
    return (
        axis_rotation(angles[..., 1], 1) @ axis_rotation(angles[..., 0], 0) @ axis_rotation(angles[..., 2], 2)
    )


def root_rotations(pitch: np.ndarray, roll: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """Pelvis orientation ``Rz(yaw) @ Rx(pitch) @ Ry(roll)``, shape ``(..., 3, 3)``."""
    return axis_rotation(yaw, 2) @ axis_rotation(pitch, 0) @ axis_rotation(roll, 1)


def forward_kinematics(root_rot: np.ndarray, local_rot: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Joint positions relative to the root.

    Args:
        root_rot: ``(B, T, 3, 3)`` pelvis orientation in the world.
        local_rot: ``(B, T, J, 3, 3)`` local joint rotations (joint 0's is applied after the root's).
        offsets: ``(B, J, 3)`` rest offsets of every joint from its parent, mm (row 0 unused).

    Returns:
        ``(B, T, J, 3)`` positions, mm, with the root at the origin. Bone lengths equal the offsets'
        norms in every frame (rigid bones).
    """
    b, t = root_rot.shape[:2]
    glob = np.empty((b, t, NUM_JOINTS, 3, 3))
    pos = np.zeros((b, t, NUM_JOINTS, 3))
    glob[:, :, 0] = root_rot @ local_rot[:, :, 0]
    for j in range(1, NUM_JOINTS):
        p = PARENTS[j]
        pos[:, :, j] = pos[:, :, p] + np.einsum("btik,bk->bti", glob[:, :, p], offsets[:, j])
        glob[:, :, j] = glob[:, :, p] @ local_rot[:, :, j]
    return pos


def soft_min(a: np.ndarray, b: np.ndarray | float, tau: float) -> np.ndarray:
    """Smooth minimum ``-tau * log(exp(-a/tau) + exp(-b/tau))`` (at most ``tau*log 2`` below min)."""
    return -tau * np.logaddexp(-np.asarray(a) / tau, -np.asarray(b) / tau)


def leg_ik(
    target: np.ndarray, thigh: np.ndarray, shank: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two-link leg inverse kinematics in the pelvis frame.

    Args:
        target: ``(..., 3)`` ankle position relative to the hip joint, mm (below the hip).
        thigh, shank: segment lengths, broadcastable to ``target[..., 0]``.

    Returns:
        ``(hip_x, hip_y, knee_flexion)`` in radians: the hip's Euler angles (x: flexion forward,
        y: ab/adduction) and the knee flexion (applied as an x rotation of ``-knee_flexion``). The
        reach is softly clamped just below full extension, so targets out of reach give a nearly
        straight leg pointing at them.
    """
    x, y, z = target[..., 0], target[..., 1], target[..., 2]
    down = np.maximum(-z, 1.0)
    hip_y = np.arctan2(-x, down)
    h = np.hypot(x, down)
    reach = thigh + shank
    dist = soft_min(np.hypot(y, h), 0.995 * reach, tau=4.0)
    dist = np.maximum(dist, np.abs(thigh - shank) + 50.0)
    alpha = np.arctan2(y, h)
    beta = np.arccos(np.clip((thigh**2 + dist**2 - shank**2) / (2 * thigh * dist), -1.0, 1.0))
    interior = np.arccos(np.clip((thigh**2 + shank**2 - dist**2) / (2 * thigh * shank), -1.0, 1.0))
    return alpha + beta, hip_y, np.pi - interior


def smootherstep(x: np.ndarray) -> np.ndarray:
    """C2 ramp from 0 (``x <= 0``) to 1 (``x >= 1``): ``6x^5 - 15x^4 + 10x^3``."""
    x = np.clip(x, 0.0, 1.0)
    return x**3 * (x * (6 * x - 15) + 10)


def window(
    phase: np.ndarray, center: np.ndarray | float, half_width: np.ndarray | float, edge: float
) -> np.ndarray:
    """Periodic smooth window on the cycle phase: 1 within ``half_width`` of ``center``, 0 outside.

    Distances are wrapped to ``[0, 0.5]`` cycles; the edges ramp over ``edge`` cycles (centred on
    ``center +- half_width``).
    """
    delta = np.abs((phase - center + 0.5) % 1.0 - 0.5)
    return smootherstep((half_width + edge / 2 - delta) / edge)


def ramp(phase: np.ndarray, start: float, end: float) -> np.ndarray:
    """Smooth 0->1 ramp over ``[start, end]`` of a (non-wrapped) normalized phase."""
    return smootherstep((phase - start) / (end - start))


def plateau(phase: np.ndarray, up: tuple[float, float], down: tuple[float, float]) -> np.ndarray:
    """Periodic 0..1 profile on ``phase mod 1``: rises over ``up``, holds, falls over ``down``."""
    u = phase % 1.0
    return ramp(u, *up) - ramp(u, *down)


def bump(s: np.ndarray, peak: float = 0.5, power: float = 2.0) -> np.ndarray:
    """Smooth bump on ``s`` in [0, 1] peaking (value 1) at ``peak``; 0 outside [0, 1].

    ``b(s) = (s^a (1-s)^c) / max`` with ``a / (a + c) = peak`` and ``a + c = 2 * power``.
    """
    a, c = 2 * power * peak, 2 * power * (1 - peak)
    s = np.clip(s, 0.0, 1.0)
    return s**a * (1 - s) ** c / (peak**a * (1 - peak) ** c)


def smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma_frames: float) -> np.ndarray:
    """Low-pass (Gaussian-filtered) white noise along axis 1, scaled to unit standard deviation."""
    noise = gaussian_filter1d(rng.standard_normal(shape), sigma_frames, axis=1, mode="reflect")
    impulse = np.zeros(int(8 * sigma_frames) + 1)
    impulse[len(impulse) // 2] = 1.0
    gain = np.sqrt(np.sum(gaussian_filter1d(impulse, sigma_frames, mode="constant") ** 2))
    return noise / gain
