"""SynthMet presets, dataset assembly and writing.

Every motion instance (subject x activity x repeat) is seen by every camera of the rig; each
(instance, camera) pair is one sequence, so the cameras' sequences share the motion and its
energy label. Splits are by subject; unknown activities are performed by test subjects only.
Randomness: one ``numpy.random.Generator`` per part, seeded ``[seed, part, ...]``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from einops import rearrange

from pose2met.data.h5format import write_dataset
from pose2met.data.synthmet.activities import ACTIVITIES, KNOWN, UNKNOWN
from pose2met.data.synthmet.bodies import Subjects, sample_subjects
from pose2met.data.synthmet.cameras import Camera, make_rig
from pose2met.data.synthmet.detector import detect
from pose2met.data.synthmet.energy import EFFICIENCY, energy_rate, mechanical_power
from pose2met.data.synthmet.motion import synthesize
from pose2met.skeleton import NUM_JOINTS

GENERATOR_VERSION = 1
ENERGY_MODEL = "internal_external"
_PART_PLAN, _PART_SUBJECTS, _PART_RIG, _PART_MOTION, _PART_DETECTOR = range(5)


@dataclass(frozen=True)
class Preset:
    """Size of a generated dataset.

    Attributes:
        name: preset name (stored in the file).
        subjects: number of train, val and test subjects.
        known_repeats: instances of every known activity per subject.
        unknown_repeats: instances of every unknown activity per test subject.
        duration_s: range of the instance durations (uniform), seconds.
        num_cameras: cameras of the rig (1-4); one sequence per instance and camera.
        fps: frame rate.
        batch_size: instances synthesized together (memory / speed trade-off).
    """

    name: str
    subjects: tuple[int, int, int]
    known_repeats: int
    unknown_repeats: int
    duration_s: tuple[float, float]
    num_cameras: int = 4
    fps: float = 50.0
    batch_size: int = 48


PRESETS: dict[str, Preset] = {
    "tiny": Preset("tiny", (2, 1, 1), 1, 1, (2.0, 2.0), num_cameras=2),
    "default": Preset("default", (8, 2, 2), 2, 3, (3.0, 8.0)),
    "h36m-scale": Preset("h36m-scale", (10, 3, 3), 11, 11, (3.0, 8.0)),
}


@dataclass
class SynthMetBundle:
    """A generated dataset: the arrays of the Pose2Met file plus per-instance facts.

    ``frames``, ``sequences``, ``cameras`` and ``attrs`` are what :func:`write_dataset` stores;
    ``instances`` holds per motion instance ``subject`` (index), ``action``, ``kcal``,
    ``power_w`` (mechanical), ``cadence`` (Hz), ``speed`` (m/s), ``amplitude``, ``length``
    and ``first_sequence``; ``rig`` the cameras.
    """

    preset: Preset
    seed: int
    frames: dict[str, np.ndarray]
    sequences: dict[str, np.ndarray | list[str]]
    cameras: dict[str, dict]
    attrs: dict[str, str | int | float]
    subjects: Subjects
    instances: dict[str, np.ndarray]
    rig: list[Camera] = field(default_factory=list)

    @property
    def num_frames(self) -> int:
        return len(self.frames["joints_2d"])


def resolve_preset(preset: str | Preset) -> Preset:
    """A :class:`Preset` from its name (``ValueError`` listing the names) or as given."""
    if isinstance(preset, Preset):
        return preset
    if preset not in PRESETS:
        raise ValueError(f"unknown SynthMet preset {preset!r}; expected one of {sorted(PRESETS)}")
    return PRESETS[preset]


def _plan(preset: Preset, subjects: Subjects, seed: int) -> dict[str, np.ndarray]:
    """Instances in file order: per subject, its activities, their repeats; with frame counts."""
    rng = np.random.default_rng([seed, _PART_PLAN])
    names = [a.name for a in ACTIVITIES]
    rows = []
    for s, split in enumerate(subjects.split):
        acts = [(a, preset.known_repeats) for a in KNOWN]
        if split == "test":
            acts += [(a, preset.unknown_repeats) for a in UNKNOWN]
        rows += [(s, names.index(a)) for a, reps in acts for _ in range(reps)]
    subject, activity = (np.array(col, dtype=np.int64) for col in zip(*rows, strict=True))
    seconds = rng.uniform(*preset.duration_s, size=len(rows))
    length = np.maximum(np.round(seconds * preset.fps).astype(np.int64), 8)
    return {"subject": subject, "activity": activity, "length": length}


def generate(preset: str | Preset = "default", seed: int = 0) -> SynthMetBundle:
    """Generate a SynthMet dataset in memory (same preset and seed -> identical arrays)."""
    p = resolve_preset(preset)
    subjects = sample_subjects(np.random.default_rng([seed, _PART_SUBJECTS]), p.subjects)
    rig = make_rig(np.random.default_rng([seed, _PART_RIG]), p.num_cameras)
    plan = _plan(p, subjects, seed)
    n_inst, n_cam = len(plan["length"]), len(rig)
    seq_len = np.repeat(plan["length"], n_cam)
    seq_start = np.concatenate([[0], np.cumsum(seq_len)[:-1]]).astype(np.int64)
    total = int(seq_len.sum())
    frames = {
        "joints_2d": np.empty((total, NUM_JOINTS, 2), np.float32),
        "confidence": np.empty((total, NUM_JOINTS), np.float32),
        "joints_3d": np.empty((total, NUM_JOINTS, 3), np.float32),
        "factor_2_5d": np.empty(total, np.float32),
        "joints_2d_gt": np.empty((total, NUM_JOINTS, 2), np.float32),
    }
    inst = {k: np.zeros(n_inst) for k in ("kcal", "power_w", "cadence", "speed", "amplitude")}
    for a, spec in enumerate(ACTIVITIES):
        members = np.flatnonzero(plan["activity"] == a)
        members = members[np.argsort(plan["length"][members], kind="stable")]
        for b, start in enumerate(range(0, len(members), p.batch_size)):
            idx = members[start : start + p.batch_size]
            rng = np.random.default_rng([seed, _PART_MOTION, a, b])
            motion = synthesize(spec, subjects, plan["subject"][idx], plan["length"][idx], p.fps, rng)
            for i, k in enumerate(idx):
                world, s = motion.world[i, : plan["length"][k]], plan["subject"][k]
                inst["power_w"][k] = mechanical_power(world, subjects.mass_kg[s], p.fps, ENERGY_MODEL)
                inst["kcal"][k] = energy_rate(
                    world, subjects.mass_kg[s], p.fps, subjects.metabolic_factor[s], EFFICIENCY, ENERGY_MODEL
                )
            for key in ("cadence", "speed", "amplitude"):
                inst[key][idx] = getattr(motion, key)
            _views(
                motion.world,
                idx,
                rig,
                seq_start,
                plan["length"],
                frames,
                np.random.default_rng([seed, _PART_DETECTOR, a, b]),
            )
    sequences = _sequences(plan, subjects, rig, seq_start, seq_len, inst["kcal"])
    cameras = {cam.name: cam.attrs() for cam in rig}
    attrs = {
        "source_format": "synthmet",
        "joints_3d_space": "camera_mm",
        "generator": "synthmet",
        "generator_version": GENERATOR_VERSION,
        "preset": p.name,
        "preset_json": json.dumps(asdict(p)),
        "seed": int(seed),
        "energy_model": ENERGY_MODEL,
        "efficiency": EFFICIENCY,
        "subjects_json": subjects.to_json(),
        "world_frame": "z up, floor at z=0, mm; cameras: X_cam = R X_world + t",
    }
    instances = {**plan, **inst, "action": np.array([ACTIVITIES[a].name for a in plan["activity"]]),
                 "first_sequence": np.arange(n_inst) * n_cam}  # fmt: skip
    return SynthMetBundle(p, seed, frames, sequences, cameras, attrs, subjects, instances, rig)


def _views(
    world: np.ndarray,
    idx: np.ndarray,
    rig: list[Camera],
    seq_start: np.ndarray,
    lengths: np.ndarray,
    frames: dict[str, np.ndarray],
    rng: np.random.Generator,
) -> None:
    """Project a batch ``world (B, T, J, 3)`` into every camera and fill the frame arrays."""
    cam_pts = np.stack([cam.world_to_camera(world) for cam in rig])  # (C, B, T, J, 3)
    gt = np.stack([cam.project(pts) for cam, pts in zip(rig, cam_pts, strict=True)])  # (C, B, T, J, 2)
    c, b = gt.shape[:2]
    focal = np.repeat([cam.focal for cam in rig], b)
    depth = cam_pts[..., 0, 2]
    flat = rearrange(gt, "c b t j xy -> (c b) t j xy")
    det = detect(flat, rearrange(depth, "c b t -> (c b) t"), focal, rng)
    factor = depth / np.array([cam.focal for cam in rig])[:, None, None]
    for ci in range(c):
        for bi, k in enumerate(idx):
            n = lengths[k]
            rows = slice(seq_start[k * c + ci], seq_start[k * c + ci] + n)
            flat = ci * b + bi
            frames["joints_2d"][rows] = det.joints_2d[flat, :n]
            frames["confidence"][rows] = det.confidence[flat, :n]
            frames["joints_3d"][rows] = cam_pts[ci, bi, :n]
            frames["factor_2_5d"][rows] = factor[ci, bi, :n]
            frames["joints_2d_gt"][rows] = gt[ci, bi, :n]


def _sequences(
    plan: dict[str, np.ndarray],
    subjects: Subjects,
    rig: list[Camera],
    seq_start: np.ndarray,
    seq_len: np.ndarray,
    kcal: np.ndarray,
) -> dict[str, np.ndarray | list[str]]:
    n_cam = len(rig)
    rep = lambda values: [v for v in values for _ in range(n_cam)]  # noqa: E731
    actions = [ACTIVITIES[a] for a in plan["activity"]]
    return {
        "start": seq_start,
        "length": seq_len,
        "subject": rep(subjects.names[s] for s in plan["subject"]),
        "action": rep(a.name for a in actions),
        "camera": [cam.name for _ in plan["subject"] for cam in rig],
        "split": rep(subjects.split[s] for s in plan["subject"]),
        "kcal": np.repeat(kcal, n_cam).astype(np.float32),
        "activity_set": rep(a.activity_set for a in actions),
    }


def generate_to_file(
    path: str | os.PathLike, preset: str = "default", seed: int = 0, overwrite: bool = False
) -> Path:
    """Generate SynthMet and write it atomically to ``path`` (``FileExistsError`` unless ``overwrite``)."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass --overwrite (overwrite=True) to replace it")
    bundle = generate(preset, seed)
    return write_dataset(
        path,
        frames=bundle.frames,
        sequences=bundle.sequences,
        cameras=bundle.cameras,
        dataset="synthmet",
        fps=bundle.preset.fps,
        overwrite=overwrite,
        attrs=bundle.attrs,
    )
