"""Tiny Pose2Met files for the data tests, with values that identify their frame.

Frame ``n`` (global index), joint ``j``: ``joints_2d = (300 + 10 j + 0.5 n, 400 + 5 j)`` px,
``joints_3d = (100 j + n, 50 j - 20, 4000 + 10 j + n)`` mm, ``factor_2_5d = (4000 + n) / 1000``,
``joints_2d_gt = joints_2d + (1, -1)``, confidence ``0.5 + j / 100``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pose2met.data.h5format import write_dataset

J = 17
#: h36m17 left/right joint pairs (DESIGN section 2), written out here as the test's own reference.
LEFT_RIGHT = ((4, 1), (5, 2), (6, 3), (11, 14), (12, 15), (13, 16))
CAMERAS = {
    "c0": {"fx": 1000.0, "fy": 1000.0, "cx": 500.0, "cy": 501.0, "width": 1000.0, "height": 1002.0},
    "c1": {"fx": 1500.0, "fy": 1500.0, "cx": 960.0, "cy": 540.0, "width": 1920.0, "height": 1080.0},
}


def frame_values(n_frames: int) -> dict[str, np.ndarray]:
    """The per-frame arrays described in the module docstring, ``(N, ...)``."""
    n = np.arange(n_frames, dtype=np.float64)[:, None]
    j = np.arange(J, dtype=np.float64)[None, :]
    zeros = n * 0 + j * 0
    joints_2d = np.stack([300 + 10 * j + 0.5 * n, 400 + 5 * j + zeros], axis=-1)
    joints_3d = np.stack([100 * j + n, 50 * j - 20 + zeros, 4000 + 10 * j + n], axis=-1)
    return {
        "joints_2d": joints_2d.astype(np.float32),
        "confidence": (0.5 + j / 100 + zeros).astype(np.float32),
        "joints_3d": joints_3d.astype(np.float32),
        "factor_2_5d": ((4000 + n[:, 0]) / 1000).astype(np.float32),
        "joints_2d_gt": (joints_2d + np.array([1.0, -1.0])).astype(np.float32),
    }


def write_tiny(
    path: Path,
    lengths: Sequence[int] = (30, 12, 25, 7),
    splits: Sequence[str] = ("train", "train", "test", "test"),
    *,
    cameras: Sequence[str] | None = None,
    actions: Sequence[str] | None = None,
    optional: Sequence[str] = ("joints_3d", "factor_2_5d", "joints_2d_gt"),
    kcal: bool = True,
    valid: np.ndarray | None = None,
) -> Path:
    """Write a tiny file with sequences of ``lengths`` (consecutive in the frame arrays)."""
    s = len(lengths)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    frames = frame_values(int(sum(lengths)))
    frames = {k: v for k, v in frames.items() if k in ("joints_2d", "confidence") or k in optional}
    if valid is not None:
        frames["valid"] = valid
    sequences: dict[str, object] = {
        "start": starts,
        "length": np.asarray(lengths, dtype=np.int64),
        "subject": [f"S{i % 3}" for i in range(s)],
        "action": list(actions) if actions is not None else [f"act{i % 2}" for i in range(s)],
        "camera": list(cameras) if cameras is not None else ["c0" if i % 2 == 0 else "c1" for i in range(s)],
        "split": list(splits),
    }
    if kcal:
        sequences["kcal"] = np.array([100.0 + 10 * i for i in range(s)], dtype=np.float32)
        sequences["activity_set"] = ["known" if i % 2 == 0 else "unknown" for i in range(s)]
    return write_dataset(path, frames=frames, sequences=sequences, cameras=CAMERAS, dataset="tiny", fps=50.0)
