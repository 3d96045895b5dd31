"""A sheet of 3D skeletons at sampled frames of a predicted sequence (paper colours)."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from pose2met.viz.skeleton import draw_skeleton_3d, pose_array  # noqa: E402


def sample_frames(num_frames: int, count: int = 8) -> np.ndarray:
    """``count`` frame indices spread evenly over ``[0, num_frames)`` (fewer if the clip is shorter)."""
    if num_frames < 1 or count < 1:
        raise ValueError(f"sample_frames: need num_frames >= 1 and count >= 1, got {num_frames}, {count}")
    return np.unique(np.linspace(0, num_frames - 1, min(count, num_frames)).round().astype(int))


def skeleton_sheet_figure(
    joints: np.ndarray,
    count: int = 8,
    fps: float | None = None,
    title: str | None = None,
    columns: int = 4,
    panel_size: float = 2.6,
) -> Figure:
    """Grid of 3D skeletons ``joints (T, 17, 3)`` at ``count`` evenly spaced frames, one common scale.

    Left side blue, right side red, centre black (:func:`pose2met.viz.skeleton.draw_skeleton_3d`).
    Panels are titled with the frame index (and time when ``fps`` is given).
    """
    joints = pose_array(joints, "skeleton_sheet_figure", "joints")
    if count < 1 or columns < 1:
        raise ValueError(f"skeleton_sheet_figure: count and columns must be >= 1, got {count}, {columns}")
    frames = sample_frames(len(joints), count)
    rel = joints - joints[:, :1]
    radius = max(float(np.abs(rel[frames]).max()), 1e-6)
    cols = min(columns, len(frames))
    rows = math.ceil(len(frames) / cols)
    fig = plt.figure(figsize=(panel_size * cols, panel_size * rows + (0.4 if title else 0.0)))
    for i, f in enumerate(frames):
        ax = fig.add_subplot(rows, cols, i + 1, projection="3d")
        draw_skeleton_3d(ax, joints[f], radius=radius)
        label = f"frame {f}" + (f" ({f / fps:.2f} s)" if fps else "")
        ax.set_title(label, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
