"""Animated 3D skeleton of a predicted sequence: GIF (Pillow, ships with matplotlib) or MP4 (ffmpeg).

MP4 uses the ``ffmpeg`` on PATH, else the one bundled by the ``imageio-ffmpeg`` wheel
(``pip install "pose2met[video]"``), so no system package is needed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import animation  # noqa: E402

from pose2met.atomic import write_atomic  # noqa: E402
from pose2met.viz.skeleton import draw_skeleton_3d, pose_array  # noqa: E402

#: Longest animation drawn (frames beyond are skipped evenly, keeping the clip's duration).
MAX_ANIMATION_FRAMES = 300


#: What to do when no ffmpeg is found.
FFMPEG_HINT = 'install one (pip install "pose2met[video]" bundles it) or use a .gif name instead'


class AnimationError(RuntimeError):
    """An animation that cannot be written (e.g. MP4 without ffmpeg)."""


def find_ffmpeg() -> str | None:
    """The ffmpeg executable: matplotlib's setting or PATH first, then imageio-ffmpeg's; None if neither."""
    found = shutil.which(matplotlib.rcParams["animation.ffmpeg_path"])
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:  # the wheel of another platform, or its binary removed
        return None


def save_skeleton_animation(
    joints: np.ndarray,
    path: str | os.PathLike,
    fps: float = 25.0,
    size: float = 4.0,
    dpi: int = 80,
    max_frames: int = MAX_ANIMATION_FRAMES,
) -> Path:
    """Write ``joints (T, 17, 3)`` as an animated GIF or MP4 (chosen by the suffix), atomically.

    Sequences longer than ``max_frames`` are subsampled evenly; the playback rate is lowered by the
    same factor so the animation lasts as long as the clip.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise AnimationError(f"{path}: animation name must end with .gif or .mp4")
    ffmpeg = find_ffmpeg() if suffix == ".mp4" else None
    if suffix == ".mp4" and ffmpeg is None:
        raise AnimationError(f"{path}: MP4 needs ffmpeg, none found; {FFMPEG_HINT}")
    try:
        joints = pose_array(joints, "animation", "joints")
    except ValueError as err:
        raise AnimationError(str(err)) from None
    step = max(1, int(np.ceil(len(joints) / max_frames)))
    frames = np.arange(0, len(joints), step)
    rate = max(fps / step, 1.0)
    radius = max(float(np.abs(joints - joints[:, :1]).max()), 1e-6)
    fig = plt.figure(figsize=(size, size))
    ax = fig.add_subplot(projection="3d")

    def draw(i: int) -> list:
        ax.cla()
        draw_skeleton_3d(ax, joints[frames[i]], radius=radius)
        ax.set_title(f"frame {frames[i]}", fontsize=9)
        return []

    anim = animation.FuncAnimation(fig, draw, frames=len(frames), blit=False)
    writer = animation.PillowWriter(fps=rate) if suffix == ".gif" else animation.FFMpegWriter(fps=rate)
    settings = {"animation.ffmpeg_path": ffmpeg} if ffmpeg else {}
    try:
        with matplotlib.rc_context(settings):
            return write_atomic(path, lambda tmp: anim.save(str(tmp), writer=writer, dpi=dpi))
    finally:
        plt.close(fig)
