"""In-place patterns driven by the legs: picking up, sit-to-stand, lunges, squats, jumping jacks
(one cycle per unit of ``drive.phase``)."""

from __future__ import annotations

import numpy as np

from pose2met.data.synthmet.gait import GRAVITY_MM
from pose2met.data.synthmet.kinematics import bump, plateau, ramp, window
from pose2met.data.synthmet.posing import ARMS, DEG, NECK, SPINE, THORAX, Drive, Pattern


def _hands_on_hips(pat: Pattern, drive: Drive, weight: np.ndarray) -> None:
    for shoulder, elbow in ARMS.values():
        pat.abduct(shoulder, weight * 35 * DEG)
        pat.rotate_out(shoulder, -weight * 50 * DEG)
        pat.flex(elbow, weight * drive.knob(2, 90, 110) * DEG)


def pick_up(drive: Drive) -> Pattern:
    """Bend down (stoop or squat style), hold, reach to the floor, stand up, hold."""
    pat = Pattern.standing(drive)
    pat.relaxed_arms(drive)
    amp = drive.col(drive.amplitude)
    s = plateau(drive.phase, (0.0, 0.3), (0.45, 0.75))
    tilt = drive.knob(0, 20, 35) * DEG * amp * s
    spine = drive.knob(1, 20, 35) * DEG * amp * s
    thorax = drive.knob(2, 8, 18) * DEG * s
    drop = drive.knob(3, 60, 260) * amp * s
    pat.root[..., 0] -= tilt
    pat.flex(SPINE, spine)
    pat.flex(THORAX, thorax)
    pat.pelvis_height -= drop
    pat.forward += (0.5 * drop + 80 * s * amp)[..., None]
    total = tilt + spine + thorax
    reach = drive.col(drive.side > 0).astype(float)
    for k, (name, (shoulder, elbow)) in enumerate(ARMS.items()):
        reaching = reach if name == "right" else 1.0 - reach
        pat.flex(shoulder, total * drive.knob(4 + k, 0.8, 1.05) + reaching * 15 * DEG * s)
        pat.flex(elbow, (1 - reaching) * 15 * DEG * s)
    pat.flex(NECK, -0.35 * total)
    return pat


def sit_to_stand(drive: Drive) -> Pattern:
    """Seated, lean forward and rise, stand, sit back down (chair height varies)."""
    pat = Pattern.standing(drive)
    amp = drive.col(drive.amplitude)
    thigh, shank = drive.col(drive.body.thigh), drive.col(drive.body.shank)
    s = plateau(drive.phase, (0.25, 0.5), (0.75, 1.0))  # 0 seated, 1 standing
    seat = shank * drive.knob(0, 0.98, 1.12)
    pat.pelvis_height = seat + (pat.pelvis_height - seat) * s
    pat.forward += (thigh * drive.knob(1, 0.82, 0.95) * (1 - s))[..., None]
    lean = 8 * DEG * (1 - s) + drive.knob(2, 28, 45) * DEG * np.minimum(amp, 1.2) * np.sin(np.pi * s)
    pat.root[..., 0] -= 0.55 * lean
    pat.flex(SPINE, 0.3 * lean)
    pat.flex(THORAX, 0.15 * lean)
    crossed = drive.col(drive.style[:, 5] > 0.0).astype(float)
    for shoulder, elbow in ARMS.values():
        pat.flex(
            shoulder, crossed * 35 * DEG + (1 - crossed) * drive.knob(3, 40, 80) * DEG * np.sin(np.pi * s)
        )
        pat.abduct(shoulder, 8 * DEG)
        pat.rotate_out(shoulder, -crossed * 60 * DEG)
        pat.flex(elbow, crossed * 115 * DEG + (1 - crossed) * 10 * DEG)
    pat.flex(NECK, -0.4 * lean)
    return pat


def lunges(drive: Drive) -> Pattern:
    """Forward lunges, alternating legs (two per cycle): step out, lower, rise, step back."""
    pat = Pattern.standing(drive)
    amp = drive.col(drive.amplitude)
    u = (2.0 * drive.phase) % 1.0
    lead_right = ((drive.phase % 1.0) < 0.5) == (drive.col(drive.side) > 0)
    out_back = ramp(u, 0.03, 0.29) - ramp(u, 0.67, 0.93)  # the foot moves only while lifted
    lower = ramp(u, 0.31, 0.49) - ramp(u, 0.49, 0.66)
    length = drive.col(drive.body.height) * drive.knob(0, 0.26, 0.38) * np.minimum(amp, 1.1)
    depth = drive.col(drive.body.leg) * drive.knob(1, 0.18, 0.3) * amp
    stepping = (ramp(u, 0.0, 0.03) - ramp(u, 0.29, 0.31)) + (ramp(u, 0.65, 0.67) - ramp(u, 0.93, 0.96))
    lift = 60 * (bump((u - 0.02) / 0.28) + bump((u - 0.66) / 0.28))
    for f, is_lead in ((0, lead_right), (1, ~lead_right)):
        pat.forward[..., f] = np.where(is_lead, 0.5, -0.5) * length * out_back
        pat.lift[..., f] = np.where(is_lead, lift, 0.0)
        pat.contact[..., f] = np.where(is_lead, 1.0 - stepping, 1.0)
    pat.outward += drive.knob(2, 20, 60)[..., None]
    pat.pelvis_height -= depth * lower
    pat.flex(SPINE, drive.knob(3, 0, 10) * DEG * lower)
    on_hips = drive.col(drive.style[:, 5] > 0.0).astype(float)
    _hands_on_hips(pat, drive, on_hips)
    pat.relaxed_arms(drive)
    return pat


def squats(drive: Drive) -> Pattern:
    """Squats with the hips going back and the trunk leaning; arms forward or behind the head."""
    pat = Pattern.standing(drive)
    amp = drive.col(drive.amplitude)
    s = 0.5 - 0.5 * np.cos(2 * np.pi * drive.phase)
    depth = drive.col(drive.body.leg) * drive.knob(0, 0.25, 0.45) * amp
    pat.pelvis_height -= depth * s
    pat.forward += (0.35 * depth * s)[..., None]
    pat.outward += drive.knob(1, 60, 160)[..., None]
    lean = drive.knob(2, 10, 25) * DEG * s * amp
    pat.root[..., 0] -= lean
    pat.flex(SPINE, drive.knob(3, 5, 15) * DEG * s)
    behind_head = drive.col(drive.style[:, 5] > 0.2).astype(float)
    for shoulder, elbow in ARMS.values():
        pat.flex(shoulder, (1 - behind_head) * drive.knob(4, 60, 90) * DEG * s)
        pat.abduct(shoulder, behind_head * 120 * DEG + 6 * DEG)
        pat.rotate_out(shoulder, behind_head * 60 * DEG)
        pat.flex(elbow, behind_head * 130 * DEG + 8 * DEG)
    pat.flex(NECK, -0.5 * lean)
    return pat


def jumping_jacks(drive: Drive) -> Pattern:
    """Jump to feet apart with arms overhead, jump back (two hops per cycle, feet move in flight)."""
    pat = Pattern.standing(drive)
    amp = drive.col(drive.amplitude)
    half = drive.knob(0, 0.06, 0.1)  # flight half-width, cycles
    phase = drive.phase
    inner = 0.6 * half  # the feet move apart / together only while airborne
    opened = plateau(phase, (0.25 - inner, 0.25 + inner), (0.75 - inner, 0.75 + inner))
    pat.outward += (drive.knob(1, 150, 260) * np.minimum(amp, 1.2) * opened)[..., None]
    flight_time = 2 * half / drive.col(drive.cadence)
    height = GRAVITY_MM * flight_time**2 / 8.0 * amp
    in_air = np.zeros_like(phase)
    for center in (0.25, 0.75):
        q = np.clip(((phase - center + half) % 1.0) / (2 * half), 0.0, 1.0)
        pat.flight += height * 4 * q * (1 - q)
        in_air += window(phase, center, half, 0.03)
    pat.contact *= (1.0 - np.clip(in_air, 0, 1))[..., None]
    pat.pelvis_height -= drive.knob(2, 15, 40) * (0.5 + 0.5 * np.cos(4 * np.pi * phase)) * amp
    arms = 0.5 - 0.5 * np.cos(2 * np.pi * phase)
    for shoulder, elbow in ARMS.values():
        pat.abduct(shoulder, 10 * DEG + drive.knob(3, 135, 165) * DEG * np.minimum(amp, 1.1) * arms)
        pat.flex(elbow, drive.knob(4, 8, 25) * DEG)
    return pat
