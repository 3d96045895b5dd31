"""Sequence synthesis: instance parameters, pattern, leg IK, forward kinematics, root placement.

All steps are vectorized over a batch of ``B`` instances of one activity and their frames (the
only Python loops run over joints, feet or instances, never frames).

Root placement (:func:`place_root`): stepping patterns prescribe world footprints and a
centre-of-mass path; the pelvis is shifted (``COM_ITERATIONS`` passes of IK and forward
kinematics) so that the whole-body centre of mass follows the path. For the other patterns the
root moves horizontally so that the contact-weighted mean of the planted ankles' world
displacement is zero (a fully planted ankle does not move; between contacts the velocity is
filled by normalized Gaussian interpolation, sigma 0.15 s). Vertically, the lowest ankle (smooth
minimum, tau 8 mm) is held at its standing height above the floor plus the flight clearance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from pose2met.data.synthmet.activities import ActivitySpec
from pose2met.data.synthmet.bodies import Subjects
from pose2met.data.synthmet.energy import center_of_mass
from pose2met.data.synthmet.gait import REACH, supported_height
from pose2met.data.synthmet.kinematics import (
    forward_kinematics,
    joint_rotations,
    leg_ik,
    root_rotations,
    smooth_noise,
    soft_min,
)
from pose2met.data.synthmet.posing import (
    DEG,
    L_HIP,
    L_KNEE,
    R_HIP,
    R_KNEE,
    BodyDims,
    Drive,
    Pattern,
    heading_targets,
)

ANKLES = (3, 6)  # right, left
NUM_STYLE_KNOBS = 6
TEMPO_DRIFT = 0.06  # relative std of the smooth tempo variation within an instance
TURN_RADIUS_M = (2.5, 3.5)
FLOOR_TAU_MM = 8.0
COM_ITERATIONS = 3  # passes placing the pelvis so the centre of mass follows a stepping path
#: Smooth variation added to the upper body: (joint, std of x, y, z in degrees).
_UPPER_NOISE_DEG = ((7, 2, 2, 3), (8, 2, 2, 3), (9, 4, 3, 6), (11, 5, 4, 6), (14, 5, 4, 6), (12, 5, 0, 0),
                    (15, 5, 0, 0))  # fmt: skip
_UPPER_OFFSET_DEG = ((7, 3, 1, 2), (9, 5, 2, 5), (11, 4, 3, 4), (14, 4, 3, 4), (12, 4, 0, 0), (15, 4, 0, 0))


@dataclass
class MotionBatch:
    """World-frame motion of ``B`` instances (padded to ``T`` frames; instance ``i`` uses
    ``lengths[i]`` frames): ``world (B, T, J, 3)`` mm, ``contact (B, T, 2)``, and the sampled
    per-instance ``cadence`` (Hz), ``speed`` (m/s) and ``amplitude``."""

    world: np.ndarray
    contact: np.ndarray
    lengths: np.ndarray
    cadence: np.ndarray
    speed: np.ndarray
    amplitude: np.ndarray


def sample_drive(
    spec: ActivitySpec, body: BodyDims, lengths: np.ndarray, fps: float, rng: np.random.Generator
) -> Drive:
    """Draw the per-instance parameters of ``spec`` (cadence or speed, amplitude, style, path)."""
    b, t = len(lengths), int(np.max(lengths))
    amplitude = rng.uniform(*spec.amplitude, size=b)
    style = rng.uniform(-1.0, 1.0, size=(b, NUM_STYLE_KNOBS))
    side = rng.choice([-1.0, 1.0], size=b)
    if spec.locomotion:
        speed = rng.uniform(*spec.speed, size=b) * 1000.0
        stride = body.height * rng.uniform(*spec.stride_per_height, size=b)
        cadence = speed / stride
    else:
        cadence = np.exp(rng.uniform(*np.log(spec.cadence), size=b))
        stride = speed = np.zeros(b)
    rate = cadence[:, None] * (1.0 + TEMPO_DRIFT * smooth_noise(rng, (b, t), 2.0 * fps))
    phase = rng.uniform(0.0, 1.0, size=(b, 1)) + np.cumsum(rate, axis=1) / fps
    heading0 = rng.uniform(0.0, 2 * np.pi, size=(b, 1))
    if spec.turning:
        radius = rng.uniform(*TURN_RADIUS_M, size=(b, 1)) * 1000.0
        direction = rng.choice([-1.0, 1.0], size=(b, 1))
        yaw_rate = direction * (speed[:, None] / radius) * (1.0 + 0.25 * smooth_noise(rng, (b, t), 1.5 * fps))
    else:
        yaw_rate = np.zeros((b, t))
    heading = heading0 + np.cumsum(yaw_rate, axis=1) / fps
    return Drive(fps, phase, cadence, amplitude, stride, speed, yaw_rate, heading, side, style, body, rng)


def _add_variation(pat: Pattern, drive: Drive) -> None:
    """Per-instance posture offsets and smooth (low-pass) variation of the upper body and pelvis."""
    b = drive.shape[0]
    for joint, *stds in _UPPER_NOISE_DEG:
        pat.angles[..., joint, :] += drive.noise(0.4, (3,)) * np.array(stds) * DEG
    for joint, *stds in _UPPER_OFFSET_DEG:
        pat.angles[..., joint, :] += (drive.rng.standard_normal((b, 3)) * np.array(stds) * DEG)[:, None]
    pat.root[..., :2] += drive.noise(0.8, (2,)) * 1.0 * DEG


def solve_legs(pat: Pattern, offsets: np.ndarray, body: BodyDims) -> None:
    """Set the hip and knee angles so the ankles reach the pattern's foot targets (exact IK)."""
    side_x = np.array([1.0, -1.0])  # right foot to +x, left to -x
    hips = offsets[:, [R_HIP, L_HIP]]  # (B, 2, 3) rest offsets of the hips
    # keep the pelvis low enough for every planted foot to reach its target
    reach = REACH * body.leg[:, None, None]
    cap = np.sqrt(np.maximum(reach**2 - pat.forward**2 - pat.outward**2, 1.0)) + pat.lift
    cap = cap + (1.0 - pat.contact) * 2000.0
    pelvis_height = soft_min(pat.pelvis_height, soft_min(cap[..., 0], cap[..., 1], 5.0), 5.0)
    target = np.stack(
        [
            side_x * (np.abs(hips[:, None, :, 0]) + pat.outward),
            pat.forward,
            -(pelvis_height[..., None] - pat.lift),
        ],
        axis=-1,
    )  # (B, T, 2, 3) relative to the pelvis, heading frame
    pelvis = root_rotations(pat.root[..., 0], pat.root[..., 1], pat.root[..., 2])
    local = np.einsum("btji,btfj->btfi", pelvis, target) - hips[:, None]
    thigh = np.stack([body.thigh, body.thigh], axis=-1)[:, None]
    shank = np.stack([body.shank, body.shank], axis=-1)[:, None]
    hip_x, hip_y, knee = leg_ik(local, thigh, shank)
    for f, (hip, knee_joint) in enumerate(((R_HIP, R_KNEE), (L_HIP, L_KNEE))):
        pat.angles[..., hip, :] = np.stack([hip_x[..., f], hip_y[..., f], np.zeros_like(knee[..., f])], -1)
        pat.angles[..., knee_joint, :] = 0.0
        pat.angles[..., knee_joint, 0] = -knee[..., f]


def place_root(
    rel: np.ndarray,
    contact: np.ndarray,
    flight: np.ndarray,
    ankle_height: np.ndarray,
    fps: float,
    xy: np.ndarray | None = None,
) -> np.ndarray:
    """Root trajectory ``(B, T, 3)`` for root-relative world-oriented joints ``rel (B, T, J, 3)``
    (``xy``: a prescribed horizontal trajectory ``(B, T, 2)`` instead of the contact solver)."""
    ankles = rel[:, :, list(ANKLES)]  # (B, T, 2, 3)
    lowest = soft_min(ankles[..., 0, 2], ankles[..., 1, 2], FLOOR_TAU_MM)
    z = ankle_height[:, None] - lowest + flight
    if xy is not None:
        return np.concatenate([xy, z[..., None]], axis=-1)
    step = np.diff(ankles[..., :2], axis=1)  # (B, T-1, 2 feet, 2)
    w = 0.5 * (contact[:, 1:] + contact[:, :-1])
    wsum = w.sum(-1)
    planted = -(w[..., None] * step).sum(2) / np.maximum(wsum, 1e-6)[..., None]
    conf = np.clip(wsum, 0.0, 1.0)[..., None]
    sigma = 0.15 * fps
    num = gaussian_filter1d(conf * planted, sigma, axis=1)
    den = gaussian_filter1d(conf, sigma, axis=1)
    filled = np.where(den > 1e-3, num / np.maximum(den, 1e-3), 0.0)
    velocity = conf * planted + (1.0 - conf) * filled
    b = rel.shape[0]
    xy = np.concatenate([np.zeros((b, 1, 2)), np.cumsum(velocity, axis=1)], axis=1)
    return np.concatenate([xy, z[..., None]], axis=-1)


def synthesize(
    spec: ActivitySpec,
    subjects: Subjects,
    subject_index: np.ndarray,
    lengths: np.ndarray,
    fps: float,
    rng: np.random.Generator,
) -> MotionBatch:
    """Generate ``B`` instances of ``spec`` for the given subjects and frame counts."""
    subject_index = np.asarray(subject_index)
    lengths = np.asarray(lengths)
    offsets = subjects.offsets[subject_index]
    body = BodyDims(
        height=subjects.height_mm[subject_index],
        thigh=np.linalg.norm(offsets[:, R_KNEE], axis=-1),
        shank=np.linalg.norm(offsets[:, ANKLES[0]], axis=-1),
        hip_half_width=np.linalg.norm(offsets[:, R_HIP], axis=-1),
        mass=subjects.mass_kg[subject_index],
    )
    drive = sample_drive(spec, body, lengths, fps, rng)
    pat = spec.pattern(drive)
    _add_variation(pat, drive)
    root_rot = root_rotations(pat.root[..., 0], pat.root[..., 1], drive.heading + pat.root[..., 2])
    ankle_height = subjects.ankle_height_mm[subject_index]
    if pat.foot_world is None:
        solve_legs(pat, offsets, body)
        rel = forward_kinematics(root_rot, joint_rotations(pat.angles), offsets)
        root = place_root(rel, pat.contact, pat.flight, ankle_height, fps)
    else:  # stepping: the centre of mass follows the path, the feet their footprints
        path = pat.root_xy.copy()
        for it in range(COM_ITERATIONS):
            if it:  # move the pelvis so that the centre of mass of the last pass lies on the path
                pat.root_xy = path - center_of_mass(rel)[..., :2]
            heading_targets(pat, body.hip_half_width, drive.heading)
            pat.pelvis_height = supported_height(pat, fps)
            solve_legs(pat, offsets, body)
            rel = forward_kinematics(root_rot, joint_rotations(pat.angles), offsets)
        root = place_root(rel, pat.contact, pat.flight, ankle_height, fps, xy=pat.root_xy)
    world = rel + root[:, :, None]
    # centre each instance's path on its own frames, then place it at a random spot near the origin
    b, t = len(lengths), world.shape[1]
    valid = (np.arange(t)[None] < lengths[:, None])[..., None]
    mean_xy = (world[:, :, 0, :2] * valid).sum(1) / lengths[:, None]
    radius = np.where(spec.locomotion, 300.0, 800.0) * np.sqrt(rng.uniform(size=b))
    angle = rng.uniform(0.0, 2 * np.pi, size=b)
    spot = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=-1)
    world[..., :2] += (spot - mean_xy)[:, None, None]
    # frames past an instance's length only pad the batch: hold its last frame there
    last = np.minimum(np.arange(t)[None], lengths[:, None] - 1)
    world = np.take_along_axis(world, last[:, :, None, None], axis=1)
    return MotionBatch(
        world=world,
        contact=pat.contact,
        lengths=lengths,
        cadence=drive.cadence,
        speed=drive.speed / 1000.0,
        amplitude=drive.amplitude,
    )
