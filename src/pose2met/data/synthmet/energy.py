"""The SynthMet energy label: metabolic rate (kcal/h) from ground-truth 3D motion.

Model (see ``docs/synthmet.md``), with segments ``s`` (mass ``m_s``, centre of mass ``p_s``,
length ``L_s``, radius of gyration ``k_s L_s``, unit axis ``u_s``) and the body centre of mass
``p_c`` (mass ``M``)::

    rot_s(t) = 1/2 m_s (k_s L_s)^2 |du_s/dt|^2                      rotational energy (limbs)
    E_ext(t) = M g z_c + 1/2 M |v_c|^2                              centre of mass ("external")
    E_s(t)   = 1/2 m_s |v_s - v_c|^2 + rot_s                        segment about the COM ("internal")
    W+       = P+(E_ext) + sum_s P+(E_s),   P+(E) = sum_i max(E(t_i) - E(t_{i-1}), 0)
    P_mech   = W+ / ((n - 1) / fps)                                 (W)
    kcal/h   = f_subject * (REST * mass + P_mech / EFFICIENCY * 3600 / 4184)

This is the external + internal work of Cavagna & Kaspar (1982) / Willems, Cavagna & Heglund
(1995) (``model="internal_external"``, the default). ``model="segments"`` instead sums the
positive increments of every segment's full energy ``m_s g z_s + 1/2 m_s |v_s|^2 + rot_s``
(Winter's "no transfer between segments"); it gives about twice the labels for locomotion.

Segment masses and centres of mass are the Dempster (1955) fractions tabulated by Winter (2009,
*Biomechanics and Motor Control of Human Movement*, 4th ed., table 4.1); ``k_s`` is Winter's
radius of gyration about the centre of mass (limbs only; trunk and head are point masses and
rotation about a limb's long axis is ignored). Positions and velocities come from a
Savitzky-Golay filter (cubic, 0.2 s window) of the world-frame joints (z up, mm).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import savgol_filter

from pose2met.skeleton import NUM_JOINTS

GRAVITY = 9.80665  # m/s^2
EFFICIENCY = 0.25  # muscle efficiency of positive work
REST_KCAL_PER_KG_H = 1.0  # 1 MET
JOULES_PER_KCAL = 4184.0
SMOOTH_WINDOW_S = 0.2
SMOOTH_POLYORDER = 3


@dataclass(frozen=True)
class Segment:
    """A rigid body segment between two joints (h36m17 indices)."""

    name: str
    proximal: int
    distal: int
    mass_fraction: float  # of body mass
    com_fraction: float  # centre of mass from the proximal joint, fraction of the length
    gyration: float | None  # radius of gyration about the centre of mass / length (None: point mass)


#: Winter (2009) table 4.1 (Dempster 1955): mass fraction, COM from proximal, radius of gyration.
SEGMENTS: tuple[Segment, ...] = (
    Segment("pelvis", 0, 0, 0.142, 0.0, None),
    Segment("abdomen", 7, 0, 0.139, 0.44, None),
    Segment("thorax", 8, 7, 0.216, 0.82, None),
    Segment("head_neck", 9, 10, 0.081, 0.5, None),
    Segment("right_upper_arm", 14, 15, 0.028, 0.436, 0.322),
    Segment("right_forearm_hand", 15, 16, 0.022, 0.682, 0.468),
    Segment("left_upper_arm", 11, 12, 0.028, 0.436, 0.322),
    Segment("left_forearm_hand", 12, 13, 0.022, 0.682, 0.468),
    Segment("right_thigh", 1, 2, 0.100, 0.433, 0.323),
    Segment("right_leg_foot", 2, 3, 0.061, 0.606, 0.416),
    Segment("left_thigh", 4, 5, 0.100, 0.433, 0.323),
    Segment("left_leg_foot", 5, 6, 0.061, 0.606, 0.416),
)
_PROX = np.array([s.proximal for s in SEGMENTS])
_DIST = np.array([s.distal for s in SEGMENTS])
_MASS = np.array([s.mass_fraction for s in SEGMENTS])
_COM = np.array([s.com_fraction for s in SEGMENTS])
_GYR = np.array([s.gyration or 0.0 for s in SEGMENTS])


def center_of_mass(joints: np.ndarray) -> np.ndarray:
    """Whole-body centre of mass ``(..., 3)`` of joints ``(..., J, 3)`` (segment model above)."""
    prox, dist = joints[..., _PROX, :], joints[..., _DIST, :]
    com = prox + _COM[:, None] * (dist - prox)
    return np.einsum("s,...sc->...c", _MASS / _MASS.sum(), com)


def _check_joints(joints_mm: np.ndarray) -> np.ndarray:
    joints = np.asarray(joints_mm, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (NUM_JOINTS, 3):
        raise ValueError(f"joints_mm: expected shape (T, {NUM_JOINTS}, 3), got {joints.shape}")
    if not np.isfinite(joints).all():
        raise ValueError("joints_mm: contains non-finite values")
    return joints


def smooth_motion(joints_mm: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Savitzky-Golay smoothed positions (m) and velocities (m/s), each ``(T, J, 3)``."""
    joints = _check_joints(joints_mm) / 1000.0
    n = len(joints)
    window = int(round(SMOOTH_WINDOW_S * fps)) // 2 * 2 + 1
    window = min(window, n if n % 2 else n - 1)
    if window <= SMOOTH_POLYORDER:
        raise ValueError(f"joints_mm: {n} frames is too short; need at least {SMOOTH_POLYORDER + 2}")
    pos = savgol_filter(joints, window, SMOOTH_POLYORDER, axis=0, mode="interp")
    vel = savgol_filter(joints, window, SMOOTH_POLYORDER, deriv=1, delta=1.0 / fps, axis=0, mode="interp")
    return pos, vel


MODELS = ("internal_external", "segments")


def _segments(joints_mm: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Smoothed segment COM positions (m), COM velocities (m/s) and rotational-energy factors."""
    pos, vel = smooth_motion(joints_mm, fps)
    com = pos[:, _PROX] + _COM[:, None] * (pos[:, _DIST] - pos[:, _PROX])
    com_vel = vel[:, _PROX] + _COM[:, None] * (vel[:, _DIST] - vel[:, _PROX])
    axis = pos[:, _DIST] - pos[:, _PROX]
    length = np.linalg.norm(axis, axis=-1, keepdims=True)
    unit = axis / np.maximum(length, 1e-9)
    rel_vel = vel[:, _DIST] - vel[:, _PROX]
    unit_rate = (rel_vel - unit * np.sum(unit * rel_vel, axis=-1, keepdims=True)) / np.maximum(length, 1e-9)
    spin = 0.5 * (_GYR * length[..., 0]) ** 2 * np.sum(unit_rate**2, axis=-1)  # per kg
    return com, com_vel, spin


def segment_energies(joints_mm: np.ndarray, mass_kg: float, fps: float) -> np.ndarray:
    """Full mechanical energy of every segment, ``(T, S, 3)`` J: potential, translational, rotational.

    ``joints_mm``: ``(T, J, 3)`` world coordinates in mm with z up.
    """
    _check_mass(mass_kg)
    com, com_vel, spin = _segments(joints_mm, fps)
    mass = _MASS * mass_kg
    potential = mass * GRAVITY * com[..., 2]
    translational = 0.5 * mass * np.sum(com_vel**2, axis=-1)
    return np.stack([potential, translational, mass * spin], axis=-1)


def internal_external_energies(
    joints_mm: np.ndarray, mass_kg: float, fps: float
) -> tuple[np.ndarray, np.ndarray]:
    """``E_ext (T,)`` of the body centre of mass and ``E_s (T, S)`` of the segments about it, J."""
    _check_mass(mass_kg)
    com, com_vel, spin = _segments(joints_mm, fps)
    mass = _MASS * mass_kg
    body_pos = np.einsum("s,tsc->tc", _MASS, com)
    body_vel = np.einsum("s,tsc->tc", _MASS, com_vel)
    external = mass_kg * GRAVITY * body_pos[:, 2] + 0.5 * mass_kg * np.sum(body_vel**2, axis=-1)
    internal = 0.5 * mass * np.sum((com_vel - body_vel[:, None]) ** 2, axis=-1) + mass * spin
    return external, internal


def _positive_work(energy: np.ndarray) -> float:
    return float(np.clip(np.diff(energy, axis=0), 0.0, None).sum())


def _check_mass(mass_kg: float) -> None:
    if not mass_kg > 0:
        raise ValueError(f"mass_kg: expected a positive body mass, got {mass_kg}")


def mechanical_power(
    joints_mm: np.ndarray, mass_kg: float, fps: float, model: str = "internal_external"
) -> float:
    """Positive mechanical work rate ``W+ / duration`` in W (see the module docstring)."""
    if model == "internal_external":
        external, internal = internal_external_energies(joints_mm, mass_kg, fps)
        work = _positive_work(external) + _positive_work(internal)
        frames = len(external)
    elif model == "segments":
        energy = segment_energies(joints_mm, mass_kg, fps).sum(-1)  # (T, S)
        work, frames = _positive_work(energy), len(energy)
    else:
        raise ValueError(f"model: expected one of {MODELS}, got {model!r}")
    return work / ((frames - 1) / fps)


def energy_rate(
    joints_mm: np.ndarray,
    mass_kg: float,
    fps: float,
    metabolic_factor: float = 1.0,
    efficiency: float = EFFICIENCY,
    model: str = "internal_external",
) -> float:
    """Energy expenditure rate in kcal/h: ``factor * (1 kcal/kg/h * mass + P_mech / efficiency)``.

    Args:
        joints_mm: ``(T, J, 3)`` world joints (z up), mm, at ``fps``.
        mass_kg: body mass.
        fps: frame rate.
        metabolic_factor: per-subject multiplier.
        efficiency: muscle efficiency of positive work (0.25).
        model: ``"internal_external"`` or ``"segments"``.
    """
    if not 0 < efficiency <= 1:
        raise ValueError(f"efficiency: expected a value in (0, 1], got {efficiency}")
    power = mechanical_power(joints_mm, mass_kg, fps, model)
    metabolic_watts = power / efficiency
    return float(
        metabolic_factor * (REST_KCAL_PER_KG_H * mass_kg + metabolic_watts * 3600.0 / JOULES_PER_KCAL)
    )
