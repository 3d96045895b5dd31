"""The energy label against hand-computed cases of its documented formula."""

from __future__ import annotations

import numpy as np
import pytest

from pose2met.data.synthmet.energy import energy_rate, mechanical_power

FPS = 50.0
G = 9.80665
KCAL_PER_H_PER_W = 3600.0 / 4184.0
#: A standing pose (mm, z up) whose exact proportions do not matter for rigid motions.
POSE = np.array(
    [[0, 0, 950], [130, 0, 950], [130, 0, 510], [130, 0, 70], [-130, 0, 950], [-130, 0, 510], [-130, 0, 70],
     [0, 10, 1180], [0, 0, 1440], [0, 40, 1550], [0, 10, 1660], [-150, 0, 1410], [-150, 0, 1130],
     [-150, 0, 880], [150, 0, 1410], [150, 0, 1130], [150, 0, 880]],
    dtype=np.float64,
)  # fmt: skip


def expected_kcal(mass: float, power_w: float, factor: float = 1.0, efficiency: float = 0.25) -> float:
    """The documented formula written out: factor * (1 kcal/kg/h * mass + P / efficiency in kcal/h)."""
    return factor * (1.0 * mass + power_w / efficiency * KCAL_PER_H_PER_W)


def _translate(path_mm: np.ndarray) -> np.ndarray:
    """Rigid translation of the pose along ``path_mm (T, 3)``."""
    return POSE[None] + path_mm[:, None, :]


@pytest.mark.parametrize("model", ["internal_external", "segments"])
def test_lift_at_constant_speed(model: str) -> None:
    # rising at v m/s: only potential energy grows, P = M g v; kinetic energy is constant
    mass, v, n = 70.0, 0.4, 101
    t = np.arange(n) / FPS
    joints = _translate(np.stack([0 * t, 0 * t, 1000 * v * t], -1))
    assert mechanical_power(joints, mass, FPS, model) == pytest.approx(mass * G * v, rel=1e-6)
    got = energy_rate(joints, mass, FPS, metabolic_factor=1.03, model=model)
    assert got == pytest.approx(expected_kcal(mass, mass * G * v, 1.03), rel=1e-6)
    # 70 kg lifted at 0.4 m/s: 274.6 W of work, 1098 W metabolic: 70 + 945 kcal/h, times 1.03
    assert got == pytest.approx(1.03 * (70 + 274.5862 / 0.25 * 0.860421), rel=1e-4)


@pytest.mark.parametrize("model", ["internal_external", "segments"])
def test_constant_horizontal_speed_costs_only_the_resting_rate(model: str) -> None:
    mass, n = 80.0, 120
    t = np.arange(n) / FPS
    joints = _translate(np.stack([1300 * t, 0 * t, 0 * t], -1))
    assert mechanical_power(joints, mass, FPS, model) == pytest.approx(0.0, abs=1e-6)
    assert energy_rate(joints, mass, FPS, model=model) == pytest.approx(mass, rel=1e-9)


@pytest.mark.parametrize("model", ["internal_external", "segments"])
def test_constant_acceleration(model: str) -> None:
    # x = a t^2 / 2 from rest: kinetic energy M (a t)^2 / 2 grows monotonically
    mass, a, n = 60.0, 0.8, 151
    t = np.arange(n) / FPS
    joints = _translate(np.stack([1000 * 0.5 * a * t**2, 0 * t, 0 * t], -1))
    duration = (n - 1) / FPS
    power = 0.5 * mass * (a * duration) ** 2 / duration
    assert mechanical_power(joints, mass, FPS, model) == pytest.approx(power, rel=1e-6)


@pytest.mark.parametrize("model", ["internal_external", "segments"])
def test_forearm_spin_up_counts_translational_and_rotational_energy(model: str) -> None:
    # the right forearm (elbow 15 -> wrist 16, length L) turns in a horizontal plane about the
    # elbow with angular acceleration alpha: its centre of mass (0.682 L from the elbow) moves at
    # 0.682 L w and it spins at w, so E = 1/2 m L^2 (0.682^2 + 0.468^2) w^2 (Winter's radius of
    # gyration 0.468 L); everything grows monotonically, so W+ is the final energy.
    mass, alpha, n, length = 75.0, 2.0, 101, 250.0
    t = np.arange(n) / FPS
    theta = 0.5 * alpha * t**2
    joints = np.repeat(POSE[None], n, axis=0)
    joints[:, 16] = joints[:, 15] + length * np.stack([np.sin(theta), -np.cos(theta), 0 * t], -1)
    w_end = alpha * t[-1]
    energy = 0.5 * 0.022 * mass * (length / 1000) ** 2 * (0.682**2 + 0.468**2) * w_end**2
    assert mechanical_power(joints, mass, FPS, model) == pytest.approx(energy / t[-1], rel=0.01)


def test_models_differ_where_energy_moves_between_segments() -> None:
    # arms (shoulder, elbow, wrist) of both sides move rigidly up and down in antiphase: the body
    # centre of mass stays still, so the internal-external model counts only the arms' kinetic
    # energy about it, 1/2 m (A w)^2 cos^2(w t), which rises twice per cycle:
    # W+ = cycles * 2 * 1/2 * m_arms (A w)^2 with m_arms = 2 * (0.028 + 0.022) M.
    mass, amp, freq, cycles = 70.0, 0.05, 0.5, 3
    n = int(cycles / freq * FPS) + 1
    t = np.arange(n) / FPS
    z = 1000 * amp * np.cos(2 * np.pi * freq * t)
    joints = np.repeat(POSE[None], n, axis=0)
    joints[:, [11, 12, 13], 2] += z[:, None]
    joints[:, [14, 15, 16], 2] -= z[:, None]
    m_arms = 2 * (0.028 + 0.022) * mass
    work = cycles * m_arms * (amp * 2 * np.pi * freq) ** 2
    internal_external = mechanical_power(joints, mass, FPS, "internal_external")
    assert internal_external == pytest.approx(work / t[-1], rel=0.02)
    # per segment, the rising arm's potential energy counts too (much larger than the kinetic)
    assert mechanical_power(joints, mass, FPS, "segments") > 5 * internal_external


def test_label_scales_with_body_mass_at_the_same_motion() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(200) / FPS
    joints = POSE[None] + 40 * np.sin(2 * np.pi * 1.3 * t)[:, None, None] * rng.normal(size=(1, 17, 3))
    light, heavy = energy_rate(joints, 55.0, FPS), energy_rate(joints, 95.0, FPS)
    assert heavy > light
    assert heavy / light == pytest.approx(95.0 / 55.0, rel=1e-9)  # every term is proportional to mass


@pytest.mark.parametrize(
    ("joints", "mass", "match"),
    [
        (np.zeros((10, 16, 3)), 70.0, "expected shape"),
        (np.zeros((3, 17, 3)), 70.0, "too short"),
        (np.full((10, 17, 3), np.nan), 70.0, "non-finite"),
        (np.zeros((10, 17, 3)), 0.0, "positive body mass"),
    ],
)
def test_bad_input_raises_clear_errors(joints: np.ndarray, mass: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        energy_rate(joints, mass, FPS)


def test_unknown_model_and_efficiency_are_rejected() -> None:
    joints = np.repeat(POSE[None], 20, axis=0)
    with pytest.raises(ValueError, match="model"):
        mechanical_power(joints, 70.0, FPS, model="magic")
    with pytest.raises(ValueError, match="efficiency"):
        energy_rate(joints, 70.0, FPS, efficiency=0.0)
