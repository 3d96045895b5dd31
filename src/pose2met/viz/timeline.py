"""kcal/h over time: per-window estimates with their uncertainty band and the whole-clip value."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def kcal_timeline_figure(
    window_start: np.ndarray,
    window_frames: np.ndarray,
    kcal: np.ndarray,
    kcal_std: np.ndarray,
    overall: float | None = None,
    overall_std: float | None = None,
    fps: float | None = None,
    figsize: tuple[float, float] = (6.4, 3.2),
) -> Figure:
    """Per-window kcal/h ``(N,)`` at the window centres with a +-1 std band; clip value dashed.

    The x axis is seconds when ``fps`` is given, else frames. A single window is drawn as a
    horizontal segment over the frames it covers.
    """
    start = np.asarray(window_start, float)
    length = np.asarray(window_frames, float)
    kcal, kcal_std = np.asarray(kcal, float), np.asarray(kcal_std, float)
    if not (start.shape == length.shape == kcal.shape == kcal_std.shape) or start.ndim != 1 or not len(start):
        raise ValueError("kcal_timeline_figure: window arrays must share one non-empty shape (N,)")
    scale = 1.0 / fps if fps else 1.0
    if len(start) == 1:
        x = np.array([start[0], start[0] + length[0] - 1]) * scale
        kcal, kcal_std = np.repeat(kcal, 2), np.repeat(kcal_std, 2)
    else:
        x = (start + (length - 1) / 2) * scale
    fig, ax = plt.subplots(figsize=figsize)
    ax.fill_between(x, kcal - kcal_std, kcal + kcal_std, color="tab:orange", alpha=0.3, label="±1 std")
    ax.plot(x, kcal, color="tab:orange", marker="o", markersize=3, label="per window")
    if overall is not None:
        label = (
            f"clip: {overall:.0f}" + (f" ± {overall_std:.0f}" if overall_std is not None else "") + " kcal/h"
        )
        ax.axhline(overall, color="k", linestyle="--", linewidth=1, label=label)
    ax.set_xlabel("time (s)" if fps else "frame")
    ax.set_ylabel("energy expenditure (kcal/h)")
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
