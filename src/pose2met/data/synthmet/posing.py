"""What a motion pattern receives (:class:`Drive`) and returns (:class:`Pattern`).

A pattern is a vectorized function ``Drive -> Pattern`` for a batch of ``B`` instances of ``T``
frames. It sets the upper-body joint angles and the pelvis orientation directly, and describes
the legs by foot targets (the legs are then solved by inverse kinematics in :mod:`.motion`, so
feet that should stay planted can be held exactly).

Angle conventions (radians, raw Euler angles of :func:`.kinematics.joint_rotations`): positive
``x`` swings a hanging segment forward (hip / shoulder / elbow flexion) and tilts an upright
one backward (so trunk flexion is negative ``x``); positive ``y`` swings a hanging segment toward
the subject's left. :meth:`Pattern.flex`, :meth:`Pattern.abduct` and :meth:`Pattern.rotate_out`
hide these signs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pose2met.data.synthmet.kinematics import smooth_noise
from pose2met.skeleton import NUM_JOINTS

R_HIP, R_KNEE, L_HIP, L_KNEE = 1, 2, 4, 5
SPINE, THORAX, NECK = 7, 8, 9
L_SHOULDER, L_ELBOW, R_SHOULDER, R_ELBOW = 11, 12, 14, 15
ARMS = {"right": (R_SHOULDER, R_ELBOW), "left": (L_SHOULDER, L_ELBOW)}
LEG_JOINTS = (R_HIP, R_KNEE, L_HIP, L_KNEE)
#: Sign turning "flexion" into a raw x angle (trunk and neck bend forward, knees backward).
_FLEX_SIGN = {R_HIP: 1, L_HIP: 1, R_KNEE: -1, L_KNEE: -1, SPINE: -1, THORAX: -1, NECK: -1}
#: Sign turning "abduction / external rotation" into raw y / z angles (right side moves to +x).
_SIDE_SIGN = {R_SHOULDER: -1, R_ELBOW: -1, L_SHOULDER: 1, L_ELBOW: 1}
DEG = np.pi / 180.0


@dataclass(frozen=True)
class BodyDims:
    """Per-instance body dimensions ``(B,)`` used by the patterns, mm and kg."""

    height: np.ndarray
    thigh: np.ndarray
    shank: np.ndarray
    hip_half_width: np.ndarray
    mass: np.ndarray

    @property
    def leg(self) -> np.ndarray:
        return self.thigh + self.shank


@dataclass
class Drive:
    """Inputs of a pattern for ``B`` instances of ``T`` frames at ``fps``.

    ``phase`` is the cycle count (cumulative, with a smooth tempo drift), ``stride`` the distance
    travelled per cycle (0 in place), ``side`` +1 where the right side leads, -1 the left;
    ``style`` holds uniform [-1, 1] style knobs a pattern may use freely.
    """

    fps: float
    phase: np.ndarray  # (B, T) cycles
    cadence: np.ndarray  # (B,) cycles per second (mean)
    amplitude: np.ndarray  # (B,) multiplier around 1
    stride: np.ndarray  # (B,) mm per cycle
    speed: np.ndarray  # (B,) mm/s
    yaw_rate: np.ndarray  # (B, T) heading change, rad/s
    heading: np.ndarray  # (B, T) facing direction, rad (0: facing +y)
    side: np.ndarray  # (B,) +-1
    style: np.ndarray  # (B, K) in [-1, 1]
    body: BodyDims
    rng: np.random.Generator

    @property
    def shape(self) -> tuple[int, int]:
        return self.phase.shape

    def col(self, values: np.ndarray) -> np.ndarray:
        """A ``(B,)`` per-instance array as a ``(B, 1)`` column to broadcast over frames."""
        return np.asarray(values)[:, None]

    def knob(self, k: int, lo: float, hi: float) -> np.ndarray:
        """Style knob ``k`` mapped linearly to ``[lo, hi]``, as a ``(B, 1)`` column."""
        return self.col(lo + (self.style[:, k] + 1.0) / 2.0 * (hi - lo))

    def noise(self, seconds: float = 0.5, extra: tuple[int, ...] = ()) -> np.ndarray:
        """Unit-std low-pass noise ``(B, T, *extra)`` with a Gaussian time constant in seconds."""
        return smooth_noise(self.rng, (*self.shape, *extra), seconds * self.fps)


@dataclass
class Pattern:
    """Output of a pattern (arrays over ``(B, T)``).

    Attributes:
        angles: ``(B, T, J, 3)`` raw Euler angles of the upper body (hip and knee rows are
            overwritten by the leg inverse kinematics).
        root: ``(B, T, 3)`` pelvis pitch, roll and yaw relative to the heading.
        forward, outward, lift: ``(B, T, 2)`` ankle targets (right, left) in the heading frame,
            mm, relative to the point below the hip's rest position: forward, outward (away from
            the midline) and height above the ankle's standing level.
        pelvis_height: ``(B, T)`` hip height above the standing ankle level, mm.
        contact: ``(B, T, 2)`` 0..1 weight of the right / left ankle being planted.
        flight: ``(B, T)`` clearance of the lowest ankle above its standing level (jumps), mm.
        foot_world, root_xy: optional world positions ``(B, T, 2 feet, 2)`` of the ankles and
            ``(B, T, 2)`` of the centre-of-mass path (stepping patterns); when given, the root
            follows the path and ``forward`` / ``outward`` are recomputed from them;
            ``leg_reach (B, T, 2)``: the hip-ankle distance of each planted leg, from which the
            pelvis height is then recomputed too.
    """

    angles: np.ndarray
    root: np.ndarray
    forward: np.ndarray
    outward: np.ndarray
    lift: np.ndarray
    pelvis_height: np.ndarray
    contact: np.ndarray
    flight: np.ndarray
    foot_world: np.ndarray | None = None
    root_xy: np.ndarray | None = None
    leg_reach: np.ndarray | None = None

    @classmethod
    def standing(cls, drive: Drive, knee_deg: float = 6.0) -> Pattern:
        """Upright stance: feet under the hips, both planted, knees flexed ``knee_deg``."""
        b, t = drive.shape
        leg_len = effective_leg(drive.body.thigh, drive.body.shank, knee_deg * DEG)
        return cls(
            angles=np.zeros((b, t, NUM_JOINTS, 3)),
            root=np.zeros((b, t, 3)),
            forward=np.zeros((b, t, 2)),
            outward=np.zeros((b, t, 2)),
            lift=np.zeros((b, t, 2)),
            pelvis_height=np.repeat(leg_len[:, None], t, axis=1),
            contact=np.ones((b, t, 2)),
            flight=np.zeros((b, t)),
        )

    def flex(self, joint: int, value: np.ndarray | float) -> None:
        """Add flexion (radians) at ``joint`` (hips, knees, trunk, neck, shoulders, elbows)."""
        self.angles[..., joint, 0] += _FLEX_SIGN.get(joint, 1) * np.asarray(value)

    def abduct(self, joint: int, value: np.ndarray | float) -> None:
        """Add abduction of a shoulder / elbow (radians), or lateral bend to the right of the trunk."""
        self.angles[..., joint, 1] += _SIDE_SIGN.get(joint, 1) * np.asarray(value)

    def rotate_out(self, joint: int, value: np.ndarray | float) -> None:
        """Add external (axial) rotation of a limb, or a left turn of a trunk / neck joint."""
        self.angles[..., joint, 2] += _SIDE_SIGN.get(joint, 1) * np.asarray(value)

    def relaxed_arms(self, drive: Drive) -> None:
        """Arms hanging with a little abduction and elbow flexion (per-instance style)."""
        for k, (shoulder, elbow) in enumerate(ARMS.values()):
            self.abduct(shoulder, drive.knob(k, 5.0, 12.0) * DEG)
            self.flex(elbow, drive.knob(2 + k, 6.0, 20.0) * DEG)


def effective_leg(thigh: np.ndarray, shank: np.ndarray, knee: np.ndarray | float) -> np.ndarray:
    """Hip-to-ankle distance for a knee flexion angle (radians)."""
    return np.sqrt(thigh**2 + shank**2 + 2 * thigh * shank * np.cos(knee))


def heading_targets(pat: Pattern, hip_half_width: np.ndarray, heading: np.ndarray) -> None:
    """Set ``pat.forward`` / ``pat.outward`` from ``pat.foot_world`` relative to ``pat.root_xy``."""
    rel = pat.foot_world - pat.root_xy[:, :, None]
    c, s = np.cos(heading)[..., None], np.sin(heading)[..., None]
    right = rel[..., 0] * c + rel[..., 1] * s  # inverse heading rotation
    pat.forward = -rel[..., 0] * s + rel[..., 1] * c
    pat.outward = np.array([1.0, -1.0]) * right - np.asarray(hip_half_width)[:, None, None]
