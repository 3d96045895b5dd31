"""SynthMet subjects: height, mass, metabolic factor and h36m17 bone lengths.

Bone lengths are approximate Human3.6M means (subjects S1-S11, mm) for a reference stature of
1750 mm, scaled by the subject's height, with per-subject proportion variation (symmetric left /
right, std 2.5 %, clipped to +-6 %) and narrower shoulders / wider hips for female subjects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from pose2met.skeleton import NUM_JOINTS

REFERENCE_HEIGHT_MM = 1750.0
#: Rest length of the bone ending at each joint (row 0, the root, has none), mm at 1750 mm.
BONE_LENGTH_MM = np.array(
    [0.0, 132.0, 442.0, 454.0, 132.0, 442.0, 454.0, 233.0, 257.0, 121.0, 115.0,
     151.0, 278.0, 251.0, 151.0, 278.0, 251.0]
)  # fmt: skip
#: Rest direction of each bone in the body frame (x right, y forward, z up): arms hang down.
_REST_DIRECTION = np.array(
    [[0, 0, 0], [1, 0, 0], [0, 0, -1], [0, 0, -1], [-1, 0, 0], [0, 0, -1], [0, 0, -1],
     [0, 0.06, 1], [0, -0.04, 1], [0, 0.35, 1], [0, -0.25, 1],
     [-1, 0, -0.2], [0, 0, -1], [0, 0, -1], [1, 0, -0.2], [0, 0, -1], [0, 0, -1]],
    dtype=np.float64,
)  # fmt: skip
REST_DIRECTION = _REST_DIRECTION / np.maximum(np.linalg.norm(_REST_DIRECTION, axis=1, keepdims=True), 1e-12)
#: Bones varied together by the per-subject proportion factors (left and right share one).
_PROPORTION_GROUPS = ((1, 4), (2, 5), (3, 6), (7,), (8,), (9, 10), (11, 14), (12, 15), (13, 16))
#: Ankle joint height above the floor as a fraction of stature (Drillis & Contini, in Winter 2009).
ANKLE_HEIGHT_FRACTION = 0.039

HEIGHT_MM = {"female": (1630.0, 60.0), "male": (1765.0, 65.0)}  # mean, std
HEIGHT_RANGE_MM = (1500.0, 1980.0)
BMI_RANGE = (19.0, 30.0)
METABOLIC_SIGMA = 0.05  # log-normal std of the per-subject metabolic factor


@dataclass(frozen=True)
class Subjects:
    """A set of subjects (arrays of length S)."""

    names: tuple[str, ...]
    split: tuple[str, ...]
    sex: tuple[str, ...]
    height_mm: np.ndarray  # (S,)
    mass_kg: np.ndarray  # (S,)
    metabolic_factor: np.ndarray  # (S,) multiplies the energy rate
    offsets: np.ndarray  # (S, J, 3) rest offset of each joint from its parent, mm

    def __len__(self) -> int:
        return len(self.names)

    @property
    def bone_lengths(self) -> np.ndarray:
        """``(S, J)`` bone length ending at each joint (0 for the root), mm."""
        return np.linalg.norm(self.offsets, axis=-1)

    @property
    def ankle_height_mm(self) -> np.ndarray:
        """``(S,)`` height of the ankle joints above the floor when standing, mm."""
        return ANKLE_HEIGHT_FRACTION * self.height_mm

    def to_json(self) -> str:
        """Per-subject facts (split, sex, height, mass, BMI, metabolic factor) as a JSON string."""
        rows = [
            {
                "subject": n,
                "split": sp,
                "sex": sx,
                "height_mm": round(float(h), 1),
                "mass_kg": round(float(m), 2),
                "bmi": round(float(m / (h / 1000) ** 2), 2),
                "metabolic_factor": round(float(f), 4),
            }
            for n, sp, sx, h, m, f in zip(
                *(self.names, self.split, self.sex),
                *(self.height_mm, self.mass_kg, self.metabolic_factor),
                strict=True,
            )
        ]
        return json.dumps(rows)


def rest_offsets(height_mm: np.ndarray, proportions: np.ndarray) -> np.ndarray:
    """Rest offsets ``(S, J, 3)`` from heights ``(S,)`` and per-bone length factors ``(S, J)``."""
    lengths = BONE_LENGTH_MM[None] * (np.asarray(height_mm)[:, None] / REFERENCE_HEIGHT_MM) * proportions
    return lengths[..., None] * REST_DIRECTION[None]


def sample_subjects(rng: np.random.Generator, counts: tuple[int, int, int]) -> Subjects:
    """Sample ``train, val, test`` subjects (named S01, S02, ... in that order).

    Height: normal per sex (female 1630 +- 60 mm, male 1765 +- 65 mm) clipped to 1500-1980 mm;
    mass from a uniform BMI in 19-30 kg/m^2; metabolic factor log-normal (sigma 0.05).
    """
    if any(c < 0 for c in counts) or sum(counts) == 0:
        raise ValueError(f"subject counts (train, val, test) must be >= 0 with a positive sum, got {counts}")
    n = sum(counts)
    split = tuple(s for s, c in zip(("train", "val", "test"), counts, strict=True) for _ in range(c))
    sex = tuple(str(v) for v in rng.choice(["female", "male"], size=n))
    mean = np.array([HEIGHT_MM[s][0] for s in sex])
    std = np.array([HEIGHT_MM[s][1] for s in sex])
    height = np.clip(mean + std * rng.standard_normal(n), *HEIGHT_RANGE_MM)
    bmi = rng.uniform(*BMI_RANGE, size=n)
    mass = bmi * (height / 1000.0) ** 2
    factor = np.exp(METABOLIC_SIGMA * rng.standard_normal(n))
    proportions = np.ones((n, NUM_JOINTS))
    group_noise = np.clip(0.025 * rng.standard_normal((n, len(_PROPORTION_GROUPS))), -0.06, 0.06)
    for g, joints in enumerate(_PROPORTION_GROUPS):
        proportions[:, list(joints)] *= 1.0 + group_noise[:, [g]]
    female = np.array([s == "female" for s in sex])
    proportions[np.ix_(female, [11, 14])] *= 0.92
    proportions[np.ix_(female, [1, 4])] *= 1.04
    return Subjects(
        names=tuple(f"S{i + 1:02d}" for i in range(n)),
        split=split,
        sex=sex,
        height_mm=height,
        mass_kg=mass,
        metabolic_factor=factor,
        offsets=rest_offsets(height, proportions),
    )
