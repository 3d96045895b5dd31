"""Cyclic stepping patterns: walking, jogging, marching, skipping and high knees.

One stride cycle per unit of phase; the right foot is planted for phase in ``[0, duty)``, the
left half a cycle later. The body's centre of mass follows a path along the heading at the speed
``stride * cadence * g(u)``, ``g = 1 - surge * cos(4 pi (u - duty / 2))`` (slowest at
mid-stance). Footprints are placed in the world where each foot lands, ``land * duty * stride``
ahead of the path point at heel strike (computed from the path point and heading at mid-stance)
and beside it by the hip width; they stay fixed through stance (no skating, also in double
support and on curved paths) and are joined in swing by a cosine-eased move (zero velocity at
both ends, the foot rising / lowering vertically over the first / last 3 % of the swing) plus a
lift bump; the heel (ankle) rises over the last half of stance. The pelvis
height follows the planted legs (inverted pendulum in walking, knee compression in running).
With ``duty < 0.5`` there are flight phases with a ballistic clearance ``g * T_flight^2 / 8``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from pose2met.data.synthmet.kinematics import bump, smootherstep, soft_min, window
from pose2met.data.synthmet.posing import (
    ARMS,
    DEG,
    NECK,
    SPINE,
    THORAX,
    Drive,
    Pattern,
    effective_leg,
    heading_targets,
)

GRAVITY_MM = 9806.65  # mm/s^2
CONTACT_EDGE = 0.06  # cycles over which a contact weight ramps
REACH = 0.985  # planted legs extend to at most this fraction of their length
CLEARANCE = 0.03  # extra lift / leg length that sets the foot down at a finite vertical speed
SWING_STILL = 0.03  # share of the swing at each end where the foot only rises / lowers


@dataclass(frozen=True)
class GaitStyle:
    """Shape of a stepping pattern (angles in degrees, lengths as fractions of the leg length)."""

    duty: float  # stance fraction of the stride
    lift: float  # peak swing lift of the ankle / leg length
    lift_peak: float  # where in the swing the lift peaks (0..1)
    stance_knee: float  # knee flexion at contact
    stance_knee_bump: float  # extra knee flexion at mid-stance
    arm_swing: float  # shoulder flexion amplitude
    arm_flex: float  # mean shoulder flexion
    elbow: float  # mean elbow flexion
    elbow_swing: float  # elbow flexion amplitude
    lean: float  # forward trunk lean
    pelvis_yaw: float  # pelvis rotation amplitude
    pelvis_list: float  # pelvis drop amplitude
    heel_rise: float = 0.05  # ankle rise at the end of stance / leg length
    step_width: float = 0.0  # extra outward foot placement / leg length
    surge: float = 0.0  # relative speed fluctuation of the centre of mass (slowest at mid-stance)
    land: float = 0.5  # share of the stance travel that lies ahead of the centre of mass at landing


WALK = GaitStyle(0.60, 0.15, 0.35, 4, 20, 18, 0, 18, 10, 3, 4, 3, heel_rise=0.10, surge=0.08, land=0.37)
JOG = GaitStyle(0.38, 0.30, 0.45, 12, 22, 28, 5, 85, 12, 8, 5, 3, surge=0.05, land=0.42)
MARCH = GaitStyle(0.58, 0.30, 0.45, 4, 8, 40, 5, 6, 4, 0, 3, 2, heel_rise=0.08, surge=0.06, land=0.4)
SKIP = GaitStyle(0.30, 0.30, 0.50, 10, 18, 36, 8, 60, 20, 4, 5, 3, surge=0.08, land=0.45)
HIGH_KNEES = GaitStyle(0.36, 0.42, 0.50, 10, 14, 30, 10, 85, 15, 4, 3, 2, step_width=0.05)


def _interp(xq: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Linear interpolation of increasing ``x`` with linear extrapolation beyond both ends."""
    out = np.interp(xq, x, y)
    lo, hi = xq < x[0], xq > x[-1]
    out[lo] = y[0] + (xq[lo] - x[0]) * (y[1] - y[0]) / (x[1] - x[0])
    out[hi] = y[-1] + (xq[hi] - x[-1]) * (y[-1] - y[-2]) / (x[-1] - x[-2])
    return out


def _rotate(theta: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotate body-frame vectors ``(x right, y forward)`` by the heading ``theta`` about z."""
    c, s = np.cos(theta), np.sin(theta)
    return x * c - y * s, x * s + y * c


def _footprints(
    phase: np.ndarray,
    heading: np.ndarray,
    path: np.ndarray,
    lateral: np.ndarray,
    ahead: np.ndarray,
    mid: np.ndarray,
) -> np.ndarray:
    """World xy ``(B, K, 2)`` of the footprint of cycles ``k0 .. k0 + K - 1`` (``k0 = floor(min phase) - 1``).

    The footprint of cycle ``k`` lies ``ahead`` in front of and ``lateral`` to the right of the
    path point at mid-stance (``phase == k + mid``), in that moment's heading (interpolated, or
    extrapolated beyond the sequence); at mid-stance the turning body is thus centred over it.
    """
    b, t = phase.shape
    k0 = np.floor(phase.min(axis=1)).astype(int) - 1
    n_cycles = int((np.floor(phase.max(axis=1)).astype(int) - k0).max()) + 3
    frames = np.arange(t, dtype=np.float64)
    prints = np.empty((b, n_cycles, 2))
    for i in range(b):  # per instance (vectorized over cycles)
        when = _interp(k0[i] + mid[i] + np.arange(n_cycles, dtype=np.float64), phase[i], frames)
        theta = _interp(when, frames, heading[i])
        dx, dy = _rotate(theta, lateral[i], ahead[i])
        prints[i, :, 0] = _interp(when, frames, path[i, :, 0]) + dx
        prints[i, :, 1] = _interp(when, frames, path[i, :, 1]) + dy
    return prints


def supported_height(pat: Pattern, fps: float) -> np.ndarray:
    """Pelvis height ``(B, T)`` the legs allow: smooth minimum over the feet of the hip height at
    which each ankle is at its target with the hip-ankle distance ``pat.leg_reach``, low-passed
    (Gaussian, sigma 0.05 s)."""
    reach = np.sqrt(np.maximum(pat.leg_reach**2 - pat.forward**2 - pat.outward**2, 1.0)) + pat.lift
    height = soft_min(reach[..., 0], reach[..., 1], 8.0)
    return gaussian_filter1d(height, 0.05 * fps, axis=1, mode="nearest")


def gait(drive: Drive, style: GaitStyle, in_place: bool = False) -> Pattern:
    """A stepping pattern (forward speed from ``drive.stride``; ``in_place`` ignores it)."""
    pat = Pattern.standing(drive)
    body, amp = drive.body, drive.col(drive.amplitude)
    leg = drive.col(body.leg)
    thigh, shank = drive.col(body.thigh), drive.col(body.shank)
    duty = np.clip(style.duty + 0.03 * drive.col(drive.style[:, 0]), 0.2, 0.7)
    stride = np.zeros_like(leg) if in_place else drive.col(drive.stride)
    u_right = drive.phase % 1.0
    # centre-of-mass path along the heading
    rate = np.gradient(drive.phase, axis=1) * drive.fps
    speed = stride * rate * (1.0 - style.surge * np.cos(4 * np.pi * (u_right - duty / 2)))
    heading = drive.heading
    step_x, step_y = _rotate(heading, 0.0, speed / drive.fps)
    path = np.cumsum(np.stack([step_x, step_y], axis=-1), axis=1)
    # footprints and swing moves in the world
    hip = drive.col(body.hip_half_width)
    out = style.step_width * leg + 10.0 * drive.knob(1, -1, 1)
    lift_peak = style.lift * leg * amp
    heel = style.heel_rise * leg
    feet = np.empty((*drive.shape, 2, 2))
    heights = []
    for f, (offset, side_x) in enumerate(((0.0, 1.0), (0.5, -1.0))):
        phase = drive.phase + offset
        ahead = (style.land - 0.5) * duty * stride  # relative to the centre of mass at mid-stance
        prints = _footprints(phase, heading, path, (side_x * (hip + out))[:, 0], ahead[:, 0], duty[:, 0] / 2)
        k = np.floor(phase).astype(int) - (np.floor(phase.min(axis=1)).astype(int) - 1)[:, None]
        u = phase % 1.0
        here = np.take_along_axis(prints, k[..., None], axis=1)
        nxt = np.take_along_axis(prints, k[..., None] + 1, axis=1)
        s = np.clip((u - duty) / (1.0 - duty), 0.0, 1.0)
        move = np.clip(
            (s - SWING_STILL) / (1.0 - 2 * SWING_STILL), 0.0, 1.0
        )  # lift off and set down vertically
        feet[..., f, :] = here + (nxt - here) * (0.5 - 0.5 * np.cos(np.pi * move))[..., None]
        stance = u < duty
        heel_f = np.where(stance, smootherstep((u / duty - 0.5) / 0.5), 1.0 - smootherstep(s / 0.35))
        swing_lift = lift_peak * bump(s, peak=style.lift_peak) + CLEARANCE * leg * bump(s, power=1.0)
        pat.lift[..., f] = heel * heel_f + np.where(stance, 0.0, swing_lift)
        support = window(u, duty / 2, (duty - CONTACT_EDGE) / 2, CONTACT_EDGE)  # 0 outside stance
        # the rising heel hands the support over to the other foot
        pat.contact[..., f] = support * (1.0 - 0.9 * smootherstep((u / duty - 0.7) / 0.3))
        knee = style.stance_knee + style.stance_knee_bump * amp * np.sin(np.pi * np.clip(u / duty, 0, 1)) ** 2
        heights.append(np.minimum(effective_leg(thigh, shank, knee * DEG), REACH * leg))
    pat.foot_world, pat.root_xy, pat.leg_reach = feet, path, np.stack(heights, axis=-1)
    heading_targets(pat, drive.body.hip_half_width, heading)
    pat.pelvis_height = supported_height(pat, drive.fps)
    if style.duty < 0.5:
        step = (2.0 * drive.phase) % 1.0
        q = np.clip((step - 2 * duty) / (1 - 2 * duty), 0.0, 1.0)
        flight_time = (0.5 - duty) / drive.col(drive.cadence)
        pat.flight = GRAVITY_MM * flight_time**2 / 8.0 * 4.0 * q * (1.0 - q) * amp
    _trunk_and_arms(pat, drive, style, u_right, amp)
    return pat


def _trunk_and_arms(pat: Pattern, drive: Drive, style: GaitStyle, u_right: np.ndarray, amp: np.ndarray):
    cycle = np.cos(2 * np.pi * u_right)
    pelvis_yaw = style.pelvis_yaw * DEG * amp * cycle
    speed_mps = drive.col(drive.speed) / 1000.0
    turn_lean = -np.clip(0.7 * np.arctan(speed_mps * drive.yaw_rate / 9.81), -12 * DEG, 12 * DEG)
    pat.root[..., 0] = -0.3 * style.lean * DEG
    pat.root[..., 1] = style.pelvis_list * DEG * np.sin(2 * np.pi * u_right) + turn_lean
    pat.root[..., 2] = pelvis_yaw
    pat.flex(SPINE, 0.7 * style.lean * DEG + drive.knob(2, -3, 3) * DEG)
    pat.rotate_out(THORAX, -1.3 * pelvis_yaw)
    pat.flex(NECK, -0.5 * style.lean * DEG + drive.knob(3, -5, 8) * DEG)
    swing = style.arm_swing * DEG * amp
    # the right arm swings against the right leg
    for sign, (shoulder, elbow) in zip((-1.0, 1.0), ARMS.values(), strict=True):
        pat.flex(shoulder, style.arm_flex * DEG + sign * swing * cycle)
        pat.abduct(shoulder, drive.knob(4, 6, 14) * DEG)
        pat.flex(elbow, (style.elbow + style.elbow_swing * sign * cycle) * DEG)


def walking(drive: Drive) -> Pattern:
    return gait(drive, WALK)


def jogging(drive: Drive) -> Pattern:
    return gait(drive, JOG)


def marching(drive: Drive) -> Pattern:
    return gait(drive, MARCH)


def skipping(drive: Drive) -> Pattern:
    return gait(drive, SKIP)


def high_knees(drive: Drive) -> Pattern:
    return gait(drive, HIGH_KNEES, in_place=True)
