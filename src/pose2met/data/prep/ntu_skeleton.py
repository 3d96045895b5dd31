"""NTU RGB+D ``.skeleton`` text files: clip names, the parser, and the mapping to h36m17.

File layout (one record per line)::

    <frame count>
    per frame:  <body count>
      per body: bodyID clipedEdges handLeftConfidence handLeftState handRightConfidence
                handRightState isRestricted leanX leanY trackingState          (10 values)
                <joint count = 25>
                25 x: x y z depthX depthY colorX colorY orientW orientX orientY orientZ trackingState

``x y z`` are Kinect v2 camera-space metres (+Y up), ``colorX colorY`` pixels in the 1920x1080
colour frame, ``trackingState`` 0 (not tracked), 1 (inferred), 2 (tracked).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.interpolate import interp1d

from pose2met.data.prep.common import PrepError

NUM_NTU_JOINTS = 25
#: For every h36m17 joint, its NTU (0-based) joint: pelvis=SpineBase 0, R hip 16, R knee 17,
#: R ankle 18, L hip 12, L knee 13, L ankle 14, spine=SpineMid 1, thorax=SpineShoulder 20,
#: neck 2, head 3, L shoulder 4, L elbow 5, L wrist 6, R shoulder 8, R elbow 9, R wrist 10.
NTU_TO_H36M: tuple[int, ...] = (0, 16, 17, 18, 12, 13, 14, 1, 20, 2, 3, 4, 5, 6, 8, 9, 10)
#: Confidence of each Kinect tracking state: 0 not tracked, 1 inferred, 2 tracked.
STATE_CONFIDENCE: tuple[float, float, float] = (0.0, 0.5, 1.0)
COLOR_SIZE = (1920, 1080)
FPS = 30.0
_NAME = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")


@dataclass(frozen=True)
class ClipId:
    """NTU clip identity ``S{setup}C{camera}P{performer}R{replication}A{action}``."""

    setup: int
    camera: int
    performer: int
    replication: int
    action: int

    @classmethod
    def parse(cls, text: str) -> ClipId | None:
        """Find the first NTU clip name in ``text`` (e.g. a file name or path); None if there is none."""
        m = _NAME.search(text)
        return None if m is None else cls(*(int(g) for g in m.groups()))

    @property
    def name(self) -> str:
        """``S001C002P003R002A013``."""
        s = self
        return f"S{s.setup:03d}C{s.camera:03d}P{s.performer:03d}R{s.replication:03d}A{s.action:03d}"

    @property
    def unified_name(self) -> str:
        """Camera-free key of Vid2Burn label files: ``S001003R002A013`` (setup, performer, take, action)."""
        return f"S{self.setup:03d}{self.performer:03d}R{self.replication:03d}A{self.action:03d}"


@dataclass
class SkeletonClip:
    """First-listed body of every frame of a clip (NaN / state 0 where a frame has no body).

    Attributes:
        xyz: ``(T, 25, 3)`` camera-space metres.
        color: ``(T, 25, 2)`` colour-frame pixels.
        state: ``(T, 25)`` tracking state 0/1/2.
        bodies: ``(T,)`` number of bodies listed in each frame.
    """

    xyz: np.ndarray
    color: np.ndarray
    state: np.ndarray
    bodies: np.ndarray


class _Lines:
    """Non-empty lines of a file with their 1-based line numbers, consumed in order."""

    def __init__(self, path: Path) -> None:
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise PrepError(f"{path}: cannot read ({e})") from None
        self.path = path
        self.items = [(i + 1, ln.split()) for i, ln in enumerate(text.splitlines()) if ln.strip()]
        self.pos = 0

    def take(self, count: int, what: str) -> list[tuple[int, list[str]]]:
        if self.pos + count > len(self.items):
            raise PrepError(f"{self.path}: truncated: file ended while reading {what}")
        out = self.items[self.pos : self.pos + count]
        self.pos += count
        return out

    @property
    def remaining(self) -> int:
        return len(self.items) - self.pos

    def integer(self, what: str) -> int:
        ((line, tokens),) = self.take(1, what)
        if len(tokens) != 1 or not tokens[0].isdigit():
            raise PrepError(
                f"{self.path}: line {line}: expected {what} (one non-negative integer), got {tokens}"
            )
        return int(tokens[0])


def read_skeleton(path: str | Path) -> SkeletonClip:
    """Parse one ``.skeleton`` file, keeping the first body listed in each frame.

    Raises:
        PrepError: naming the file and line when the file is truncated or malformed (wrong value
            count, joint count other than 25, non-numeric or non-finite value, trailing content).
    """
    lines = _Lines(Path(path))
    n_frames = lines.integer("the frame count")
    if n_frames > lines.remaining:  # every frame has at least its body-count line
        raise PrepError(f"{path}: truncated: {n_frames} frames announced, {lines.remaining} lines follow")
    xyz = np.full((n_frames, NUM_NTU_JOINTS, 3), np.nan)
    color = np.full((n_frames, NUM_NTU_JOINTS, 2), np.nan)
    state = np.zeros((n_frames, NUM_NTU_JOINTS), dtype=np.int64)
    bodies = np.zeros(n_frames, dtype=np.int64)
    for t in range(n_frames):
        bodies[t] = lines.integer(f"the body count of frame {t + 1}")
        for b in range(bodies[t]):
            what = f"body {b + 1} of frame {t + 1}"
            ((line, tokens),) = lines.take(1, f"the info line of {what}")
            if len(tokens) != 10:
                raise PrepError(
                    f"{lines.path}: line {line}: expected 10 values for {what}, got {len(tokens)}"
                )
            count = lines.integer(f"the joint count of {what}")
            if count != NUM_NTU_JOINTS:
                raise PrepError(f"{lines.path}: {what}: expected {NUM_NTU_JOINTS} joints, got {count}")
            rows = lines.take(count, f"the {count} joint lines of {what}")
            values = (
                _joint_values(rows, lines.path, what) if b == 0 else _check_counts(rows, lines.path, what)
            )
            if b == 0:
                xyz[t], color[t] = values[:, 0:3], values[:, 5:7]
                state[t] = values[:, 11].astype(np.int64)
    if lines.pos != len(lines.items):
        line = lines.items[lines.pos][0]
        raise PrepError(f"{lines.path}: line {line}: unexpected content after the last of {n_frames} frames")
    return SkeletonClip(xyz=xyz, color=color, state=state, bodies=bodies)


def _check_counts(rows: list[tuple[int, list[str]]], path: Path, what: str) -> None:
    for line, tokens in rows:
        if len(tokens) != 12:
            raise PrepError(f"{path}: line {line}: expected 12 values per joint of {what}, got {len(tokens)}")


def _joint_values(rows: list[tuple[int, list[str]]], path: Path, what: str) -> np.ndarray:
    _check_counts(rows, path, what)
    try:
        values = np.asarray([tokens for _, tokens in rows], dtype=np.float64)
    except ValueError:
        raise PrepError(
            f"{path}: lines {rows[0][0]}-{rows[-1][0]}: non-numeric joint value in {what}"
        ) from None
    if not np.isfinite(values).all():
        line = rows[int(np.argwhere(~np.isfinite(values))[0, 0])][0]
        raise PrepError(f"{path}: line {line}: non-finite joint value in {what}")
    if not np.isin(values[:, 11], (0, 1, 2)).all():
        line = rows[int(np.flatnonzero(~np.isin(values[:, 11], (0, 1, 2)))[0])][0]
        raise PrepError(f"{path}: line {line}: trackingState of {what} must be 0, 1 or 2")
    return values


@dataclass
class ClipFrames:
    """h36m17 arrays of one clip plus what was done to it."""

    joints_2d: np.ndarray  # (T, 17, 2) colour pixels
    confidence: np.ndarray  # (T, 17)
    joints_3d: np.ndarray  # (T, 17, 3) mm, axes x right, y down, z forward (image-aligned)
    trimmed: int  # body-less frames dropped at the start and end
    interpolated: int  # body-less frames filled by linear interpolation
    multi_body: int  # frames listing more than one body


def to_h36m(clip: SkeletonClip) -> ClipFrames | None:
    """First body -> h36m17: pixels, confidence from tracking state, 3D in mm; None if no frame has a body.

    Body-less frames at the start and end are dropped; inside the clip they are linearly
    interpolated (2D and 3D) and get confidence 0. The Kinect +Y-up axis is flipped so that the 3D
    axes follow the colour image (x right, y down, z forward).
    """
    has = clip.bodies > 0
    if not has.any():
        return None
    first, last = int(np.argmax(has)), len(has) - int(np.argmax(has[::-1]))
    sl = slice(first, last)
    has, xyz, color, state = has[sl], clip.xyz[sl], clip.color[sl], clip.state[sl]
    conf = np.asarray(STATE_CONFIDENCE)[state]
    if not has.all():
        t = np.arange(len(has))
        xyz = interp1d(t[has], xyz[has], axis=0, assume_sorted=True)(t)
        color = interp1d(t[has], color[has], axis=0, assume_sorted=True)(t)
        conf[~has] = 0.0
    idx = list(NTU_TO_H36M)
    joints_3d = xyz[:, idx] * np.array([1000.0, -1000.0, 1000.0])
    return ClipFrames(
        joints_2d=color[:, idx],
        confidence=conf[:, idx],
        joints_3d=joints_3d,
        trimmed=len(clip.bodies) - len(has),
        interpolated=int((~has).sum()),
        multi_body=int((clip.bodies > 1).sum()),
    )
