"""The SynthMet activities: 12 known (train / val / test) and 4 unknown (test only).

Each activity is a pattern (``Drive -> Pattern``) plus the ranges its instances are drawn from:
the cycle rate (or, for locomotion, the speed and the stride per body height), and the
amplitude multiplier. Style knobs and smooth noise vary the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pose2met.data.synthmet import gait, standing, strength
from pose2met.data.synthmet.posing import Drive, Pattern


@dataclass(frozen=True)
class ActivitySpec:
    """One activity and the ranges its instances are sampled from.

    Attributes:
        name: the ``action`` label.
        activity_set: ``known`` (all splits) or ``unknown`` (test only).
        pattern: the vectorized motion pattern.
        cadence: cycles per second (in place) — ignored for locomotion.
        speed: forward speed range in m/s for locomotion (``None``: in place).
        stride_per_height: distance per stride cycle / stature (locomotion).
        amplitude: range of the amplitude multiplier.
        turning: the heading turns (walks along curved paths).
    """

    name: str
    activity_set: str
    pattern: Callable[[Drive], Pattern]
    cadence: tuple[float, float] = (1.0, 1.0)
    speed: tuple[float, float] | None = None
    stride_per_height: tuple[float, float] = (0.0, 0.0)
    amplitude: tuple[float, float] = (0.75, 1.25)
    turning: bool = False

    @property
    def locomotion(self) -> bool:
        return self.speed is not None


ACTIVITIES: tuple[ActivitySpec, ...] = (
    ActivitySpec("standing_idle", "known", standing.standing_idle, cadence=(0.08, 0.25)),
    ActivitySpec("waving", "known", standing.waving, cadence=(1.5, 3.0)),
    ActivitySpec("arm_circles", "known", standing.arm_circles, cadence=(0.6, 1.5)),
    ActivitySpec("pick_up", "known", strength.pick_up, cadence=(0.2, 0.4)),
    ActivitySpec("sit_to_stand", "known", strength.sit_to_stand, cadence=(0.16, 0.3)),
    ActivitySpec(
        "walking", "known", gait.walking, speed=(0.7, 1.3), stride_per_height=(0.62, 0.8), turning=True
    ),
    ActivitySpec("lunges", "known", strength.lunges, cadence=(0.15, 0.28)),
    ActivitySpec("squats", "known", strength.squats, cadence=(0.3, 0.6)),
    ActivitySpec("boxing", "known", standing.boxing, cadence=(0.6, 1.2)),
    ActivitySpec("jumping_jacks", "known", strength.jumping_jacks, cadence=(0.6, 1.0)),
    ActivitySpec(
        "jogging", "known", gait.jogging, speed=(1.5, 2.1), stride_per_height=(0.85, 1.05), turning=True
    ),
    ActivitySpec("stretching", "known", standing.stretching, cadence=(0.08, 0.2)),
    ActivitySpec("high_knees", "unknown", gait.high_knees, cadence=(1.1, 1.6)),
    ActivitySpec("kicking", "unknown", standing.kicking, cadence=(0.3, 0.5)),
    ActivitySpec(
        "skipping", "unknown", gait.skipping, speed=(1.1, 1.9), stride_per_height=(0.75, 1.0), turning=True
    ),
    ActivitySpec(
        "marching", "unknown", gait.marching, speed=(0.4, 0.9), stride_per_height=(0.3, 0.45), turning=True
    ),
)
ACTIVITY_NAMES: tuple[str, ...] = tuple(a.name for a in ACTIVITIES)
KNOWN: tuple[str, ...] = tuple(a.name for a in ACTIVITIES if a.activity_set == "known")
UNKNOWN: tuple[str, ...] = tuple(a.name for a in ACTIVITIES if a.activity_set == "unknown")


def activity(name: str) -> ActivitySpec:
    """The spec of activity ``name`` (``KeyError`` listing the names otherwise)."""
    for spec in ACTIVITIES:
        if spec.name == name:
            return spec
    raise KeyError(f"unknown SynthMet activity {name!r}; expected one of {list(ACTIVITY_NAMES)}")
