"""3D skeleton drawing in the paper's colours: left side blue, right side red, centre black."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from pose2met.skeleton import BONES, LEFT_JOINTS, NUM_JOINTS, RIGHT_JOINTS  # noqa: E402

LEFT_COLOR, RIGHT_COLOR, CENTRE_COLOR = "#1f5fbf", "#d62728", "#333333"


def bone_color(child: int) -> str:
    """Colour of the bone ending at joint ``child``."""
    if child in LEFT_JOINTS:
        return LEFT_COLOR
    if child in RIGHT_JOINTS:
        return RIGHT_COLOR
    return CENTRE_COLOR


def pose_array(values: object, where: str, name: str, single: bool = False) -> np.ndarray:
    """``values`` as float64 ``(N, 17, 3)`` (``(17, 3)`` if ``single``), finite; tensors are detached.

    Raises ``ValueError`` naming ``where`` and ``name`` otherwise (before any figure is created).
    """
    if hasattr(values, "detach"):
        values = values.detach().cpu().float().numpy()  # type: ignore[union-attr]
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: `{name}` must be a numeric array of poses") from None
    expected = (NUM_JOINTS, 3) if single else (None, NUM_JOINTS, 3)
    if arr.ndim != len(expected) or arr.shape[-2:] != (NUM_JOINTS, 3) or arr.size == 0:
        shape = "(17, 3)" if single else "(N >= 1, 17, 3)"
        raise ValueError(f"{where}: `{name}` must have shape {shape}, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{where}: `{name}` contains NaN or inf values")
    return arr


def draw_skeleton_3d(
    ax, pose: np.ndarray, alpha: float = 1.0, linestyle: str = "-", radius: float | None = None
):
    """Draw one pose ``(J, 3)`` (camera axes: x right, y down, z forward) on a 3D axis, y up."""
    if getattr(ax, "name", None) != "3d":
        raise ValueError("draw_skeleton_3d: `ax` must be a 3D axis (fig.add_subplot(projection='3d'))")
    p = pose_array(pose, "draw_skeleton_3d", "pose", single=True)
    # camera coordinates -> plot coordinates: x, z (depth) on the ground, -y up
    xs, ys, zs = p[:, 0], p[:, 2], -p[:, 1]
    for parent, child in BONES:
        ax.plot(
            [xs[parent], xs[child]],
            [ys[parent], ys[child]],
            [zs[parent], zs[child]],
            color=bone_color(child),
            alpha=alpha,
            linestyle=linestyle,
            linewidth=2,
        )
    r = radius if radius is not None else max(float(np.abs(p - p[:1]).max()), 1e-6)
    cx, cy, cz = xs[0], ys[0], zs[0]
    ax.set_xlim(cx - r, cx + r)
    ax.set_ylim(cy - r, cy + r)
    ax.set_zlim(cz - r, cz + r)
    ax.set_box_aspect((1, 1, 1))
    ax.set_xticklabels([])
    ax.set_yticklabels([])
    ax.set_zticklabels([])
    ax.view_init(elev=15, azim=-70)
    return ax


def skeleton_comparison_figure(
    predicted: np.ndarray, ground_truth: np.ndarray | None = None, titles: Sequence[str] | None = None
) -> Figure:
    """Side-by-side 3D skeletons ``(N, J, 3)``: prediction solid, ground truth dashed and faint."""
    where = "skeleton_comparison_figure"
    predicted = pose_array(predicted, where, "predicted")
    n = len(predicted)
    if ground_truth is not None:
        ground_truth = pose_array(ground_truth, where, "ground_truth")
        if ground_truth.shape != predicted.shape:
            raise ValueError(
                f"{where}: `ground_truth` {ground_truth.shape} must match `predicted` {predicted.shape}"
            )
    if titles is not None and len(titles) != n:
        raise ValueError(f"{where}: {len(titles)} titles for {n} poses")
    fig = plt.figure(figsize=(3.2 * n, 3.4))
    for i in range(n):
        ax = fig.add_subplot(1, n, i + 1, projection="3d")
        radius = float(np.abs(predicted[i] - predicted[i][:1]).max())
        if ground_truth is not None:
            gt = np.asarray(ground_truth[i])
            radius = max(radius, float(np.abs(gt - gt[:1]).max()))
            draw_skeleton_3d(ax, gt, alpha=0.45, linestyle="--", radius=radius)
        draw_skeleton_3d(ax, predicted[i], radius=radius)
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    fig.tight_layout()
    return fig
