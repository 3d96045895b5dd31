"""In-place patterns driven mostly by the upper body: idle, waving, arm circles, boxing, kicking,
stretching (one cycle per unit of ``drive.phase``)."""

from __future__ import annotations

import numpy as np

from pose2met.data.synthmet.kinematics import bump, plateau, ramp
from pose2met.data.synthmet.posing import (
    ARMS,
    DEG,
    L_SHOULDER,
    NECK,
    R_SHOULDER,
    SPINE,
    THORAX,
    Drive,
    Pattern,
)


def _sway(pat: Pattern, drive: Drive, scale: float = 1.0) -> None:
    """Slow weight shifts and postural sway (feet stay planted: both targets move together)."""
    amp = drive.col(drive.amplitude)
    shift = scale * (drive.knob(0, 10, 35) * amp * np.sin(2 * np.pi * drive.phase) + 12 * drive.noise(2.0))
    width = drive.knob(1, -10, 40)
    pat.outward[..., 0] += width - shift
    pat.outward[..., 1] += width + shift
    pat.forward += scale * 12 * drive.noise(3.0)[..., None]
    pat.pelvis_height -= scale * (8 + 6 * drive.noise(2.0))
    pat.root[..., 1] += scale * 1.5 * DEG * np.sin(2 * np.pi * drive.phase) * amp
    pat.root[..., 2] += scale * 4 * DEG * drive.noise(3.0)
    pat.rotate_out(NECK, scale * 18 * DEG * drive.noise(2.5) * amp)
    pat.flex(NECK, scale * 6 * DEG * drive.noise(2.0))
    pat.abduct(SPINE, scale * 2 * DEG * drive.noise(2.0))


def _arm_mask(drive: Drive) -> dict[str, np.ndarray]:
    """``(B, 1)`` 1/0 weights: the arm on the leading side (``drive.side``)."""
    right = drive.col(drive.side > 0).astype(float)
    return {"right": right, "left": 1.0 - right}


def _guard(pat: Pattern, drive: Drive) -> None:
    """Fighting guard: fists up in front of the chin."""
    for shoulder, elbow in ARMS.values():
        pat.flex(shoulder, drive.knob(0, 30, 50) * DEG)
        pat.abduct(shoulder, drive.knob(1, 12, 24) * DEG)
        pat.rotate_out(shoulder, -20 * DEG)
        pat.flex(elbow, drive.knob(2, 110, 130) * DEG)


def _split_stance(pat: Pattern, drive: Drive, depth: tuple[float, float]) -> np.ndarray:
    """Fighting stance: leading foot forward, knees bent; returns the ``(B, 1)`` lead sign."""
    lead = drive.col(drive.side)
    half = drive.knob(3, 90, 160)
    pat.forward[..., 0] += lead * half
    pat.forward[..., 1] -= lead * half
    pat.outward += drive.knob(4, 40, 90)[..., None]
    pat.pelvis_height -= drive.knob(5, *depth)
    return lead


def standing_idle(drive: Drive) -> Pattern:
    """Standing: weight shifts, sway, looking around; some instances keep the hands clasped."""
    pat = Pattern.standing(drive)
    _sway(pat, drive)
    pat.relaxed_arms(drive)
    clasp = drive.col(drive.style[:, 5] > 0.3).astype(float)
    for shoulder, elbow in ARMS.values():
        pat.flex(shoulder, clasp * 15 * DEG)
        pat.rotate_out(shoulder, -clasp * 45 * DEG)
        pat.flex(elbow, clasp * 60 * DEG)
    return pat


def waving(drive: Drive) -> Pattern:
    """One arm raised, the forearm waving side to side (elbow oscillation at the cadence)."""
    pat = Pattern.standing(drive)
    _sway(pat, drive, scale=0.5)
    pat.relaxed_arms(drive)
    amp = drive.col(drive.amplitude)
    osc = drive.knob(0, 18, 35) * DEG * amp * np.sin(2 * np.pi * drive.phase)
    raised = ramp(drive.phase, 0.0, 1.0)  # raise the arm during the first cycle
    for name, mask in _arm_mask(drive).items():
        shoulder, elbow = ARMS[name]
        pat.abduct(shoulder, mask * raised * drive.knob(1, 95, 145) * DEG)
        pat.flex(shoulder, mask * raised * drive.knob(2, 0, 25) * DEG)
        pat.rotate_out(shoulder, mask * raised * 85 * DEG)
        pat.flex(elbow, mask * raised * (drive.knob(3, 40, 70) * DEG + osc))
    return pat


def arm_circles(drive: Drive) -> Pattern:
    """Both arms held out sideways, tracing circles (forward or backward)."""
    pat = Pattern.standing(drive)
    _sway(pat, drive, scale=0.3)
    amp = drive.col(drive.amplitude)
    radius = drive.knob(0, 15, 40) * DEG * amp
    direction = np.sign(drive.col(drive.style[:, 5]) + 1e-9)
    angle = 2 * np.pi * drive.phase
    for shoulder, elbow in ARMS.values():
        pat.abduct(shoulder, drive.knob(1, 80, 95) * DEG + radius * np.cos(angle))
        pat.flex(shoulder, direction * radius * np.sin(angle))
        pat.flex(elbow, drive.knob(2, 3, 12) * DEG)
    pat.pelvis_height -= 6 * (1 - np.cos(2 * angle)) * amp
    return pat


def boxing(drive: Drive) -> Pattern:
    """Guard, bouncing stance and alternating straight punches (two per cycle)."""
    pat = Pattern.standing(drive)
    amp = drive.col(drive.amplitude)
    lead = _split_stance(pat, drive, depth=(40, 90))
    pat.pelvis_height -= drive.knob(0, 8, 25) * amp * (1 - np.cos(4 * np.pi * drive.phase))
    _guard(pat, drive)
    sharp = drive.knob(1, 6, 14)
    punches = {}
    for name, center in (("lead", 0.0), ("rear", 0.5)):
        punches[name] = np.exp(sharp * (np.cos(2 * np.pi * (drive.phase - center)) - 1))
    right_leads = lead > 0
    for name, (shoulder, elbow) in ARMS.items():
        p = np.where(right_leads == (name == "right"), punches["lead"], punches["rear"])
        pat.flex(shoulder, p * drive.knob(2, 40, 55) * DEG * amp)
        pat.flex(elbow, -p * drive.knob(2, 95, 115) * DEG * np.minimum(amp, 1.0))
        pat.abduct(shoulder, -p * 8 * DEG)
    twist = drive.knob(3, 12, 25) * DEG * amp * (punches["rear"] - punches["lead"]) * lead
    pat.rotate_out(THORAX, twist)
    pat.root[..., 2] += 0.5 * twist
    pat.root[..., 1] += 2 * DEG * drive.noise(1.0)
    return pat


def kicking(drive: Drive) -> Pattern:
    """Guard and alternating front kicks (right then left, one cycle), the other foot planted."""
    pat = Pattern.standing(drive)
    amp = drive.col(drive.amplitude)
    _guard(pat, drive)
    pat.pelvis_height -= drive.knob(5, 10, 50)
    leg = drive.col(drive.body.leg)
    duration = drive.knob(4, 0.32, 0.42)
    reach = drive.knob(3, 45, 75) * DEG * np.minimum(amp, 1.15)
    for f, start in ((0, 0.05), (1, 0.55)):
        s = np.clip(((drive.phase - start) % 1.0) / duration, 0.0, 1.0)
        motion = np.clip((s - 0.08) / 0.84, 0.0, 1.0)  # the foot moves only once it is off the floor
        kick = bump(motion, peak=0.45, power=2.0)
        chamber = bump(motion, peak=0.3, power=2.0)
        dist = leg * (0.97 - 0.30 * chamber)
        angle = reach * kick
        airborne = ramp(s, 0.0, 0.08) - ramp(s, 0.92, 1.0)
        pat.forward[..., f] += dist * np.sin(angle)
        pat.lift[..., f] = np.maximum(pat.pelvis_height - dist * np.cos(angle), 0.0) * airborne
        pat.contact[..., f] = 1.0 - airborne
        pat.flex(SPINE, -8 * DEG * kick)  # lean back a little while kicking
    return pat


def stretching(drive: Drive) -> Pattern:
    """Slow stretches: side bends, forward folds or overhead reaches (one kind per instance)."""
    pat = Pattern.standing(drive, knee_deg=4.0)
    _sway(pat, drive, scale=0.3)
    pat.relaxed_arms(drive)
    amp = drive.col(drive.amplitude)
    kind = np.floor((drive.style[:, 5] + 1) * 1.5).clip(0, 2)
    side_bend, fold, reach = (drive.col(kind == k).astype(float) for k in range(3))
    bend = np.sin(2 * np.pi * drive.phase) * drive.knob(0, 15, 30) * DEG * amp
    pat.abduct(SPINE, side_bend * bend)
    pat.abduct(THORAX, side_bend * 0.6 * bend)
    over = drive.knob(1, 140, 170) * DEG
    pat.abduct(L_SHOULDER, side_bend * over * np.clip(bend / (30 * DEG), 0, 1))
    pat.abduct(R_SHOULDER, side_bend * over * np.clip(-bend / (30 * DEG), 0, 1))
    hold = plateau(drive.phase, (0.0, 0.35), (0.55, 0.9))
    tilt = drive.knob(2, 35, 55) * DEG * amp * hold
    pat.root[..., 0] -= fold * tilt
    pat.flex(SPINE, fold * 0.5 * tilt)
    pat.flex(THORAX, fold * 0.3 * tilt)
    pat.forward += (fold * 150 * hold)[..., None]  # hips move back over the feet
    for shoulder, _ in ARMS.values():
        pat.flex(shoulder, fold * 1.7 * tilt)
        pat.abduct(shoulder, reach * drive.knob(3, 150, 172) * DEG * hold * np.minimum(amp, 1.0))
    pat.flex(NECK, -fold * 0.3 * tilt)
    return pat
