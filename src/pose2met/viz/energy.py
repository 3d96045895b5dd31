"""Energy figures: predicted vs true kcal/h scatter."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def kcal_scatter_figure(
    true_kcal: np.ndarray, pred_kcal: np.ndarray, known: np.ndarray | None = None
) -> Figure:
    """Scatter of predicted vs true kcal/h ``(N,)`` with the identity line; unknown activities orange."""
    true_kcal, pred_kcal = np.asarray(true_kcal, float).ravel(), np.asarray(pred_kcal, float).ravel()
    if len(true_kcal) != len(pred_kcal) or not (
        np.isfinite(true_kcal).all() and np.isfinite(pred_kcal).all()
    ):
        raise ValueError(
            f"kcal_scatter_figure: `true_kcal` ({len(true_kcal)}) and `pred_kcal` ({len(pred_kcal)}) must be "
            "finite and of equal length"
        )
    if known is not None:
        known = np.asarray(known)
        if known.dtype != np.bool_ or known.shape != true_kcal.shape:
            raise ValueError(
                f"kcal_scatter_figure: `known` must be a bool array of shape {true_kcal.shape}, "
                f"got {known.dtype} {known.shape}"
            )
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    if known is None:
        ax.scatter(true_kcal, pred_kcal, s=10, alpha=0.6, label="samples")
    else:
        ax.scatter(true_kcal[known], pred_kcal[known], s=10, alpha=0.6, label="known activities")
        if (~known).any():
            ax.scatter(true_kcal[~known], pred_kcal[~known], s=10, alpha=0.6, c="tab:orange", label="unknown")
    lo = float(min(true_kcal.min(initial=0), pred_kcal.min(initial=0)))
    hi = float(max(true_kcal.max(initial=1), pred_kcal.max(initial=1)))
    ax.plot([lo, hi], [lo, hi], "k--", linewidth=1)
    ax.set_xlabel("true kcal/h")
    ax.set_ylabel("predicted kcal/h")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
