"""Sliding windows over a long sequence and the per-frame average of their predictions.

A sequence of ``T`` frames is cut into windows of the model's length ``W`` starting at
``0, s, 2s, ...``; one last window ends at the last frame so every frame is covered. A sequence
shorter than ``W`` becomes one window, padded after its end by repeating the last frame (edge
padding); padded frames are dropped again when stitching.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


def window_starts(num_frames: int, window: int, stride: int | None = None) -> np.ndarray:
    """First frame of each window, ``(N,)`` int64; ``stride`` defaults to ``max(1, window // 2)``.

    >>> window_starts(10, 4, 2).tolist()
    [0, 2, 4, 6]
    >>> window_starts(11, 4, 4).tolist()
    [0, 4, 7]
    >>> window_starts(3, 4).tolist()
    [0]
    """
    if num_frames < 1 or window < 1:
        raise ValueError(f"window_starts: need num_frames >= 1 and window >= 1, got {num_frames}, {window}")
    stride = max(1, window // 2) if stride is None else stride
    if not 1 <= stride <= window:
        raise ValueError(f"window stride must be in [1, window={window}], got {stride}")
    if num_frames <= window:
        return np.zeros(1, dtype=np.int64)
    starts = list(range(0, num_frames - window + 1, stride))
    if starts[-1] + window < num_frames:
        starts.append(num_frames - window)
    return np.asarray(starts, dtype=np.int64)


def cut_windows(x: Tensor, starts: np.ndarray, window: int) -> Tensor:
    """``x (T, ...)`` -> ``(N, window, ...)``; windows running past the end repeat the last frame."""
    t = x.shape[0]
    index = torch.as_tensor(starts, device=x.device)[:, None] + torch.arange(window, device=x.device)
    return x[index.clamp_max(t - 1)]


def stitch(values: Tensor, starts: np.ndarray, num_frames: int) -> Tensor:
    """Per-frame mean of overlapping window outputs ``(N, W, ...)`` -> ``(num_frames, ...)``.

    Frame ``f`` gets the mean over windows ``n`` with ``starts[n] <= f < starts[n] + W`` of
    ``values[n, f - starts[n]]``; window positions past ``num_frames`` (padding) are ignored.
    """
    n, w = values.shape[:2]
    if len(starts) != n:
        raise ValueError(f"stitch: {n} windows but {len(starts)} starts")
    frame = torch.as_tensor(starts, device=values.device)[:, None] + torch.arange(w, device=values.device)
    keep = (frame < num_frames).reshape(-1)
    flat = values.reshape(n * w, *values.shape[2:])[keep]
    index = frame.reshape(-1)[keep]
    total = values.new_zeros((num_frames, *values.shape[2:])).index_add_(0, index, flat)
    count = torch.bincount(index, minlength=num_frames).to(values.dtype)
    if bool((count == 0).any()):
        raise ValueError("stitch: some frames are covered by no window")
    return total / count.reshape(-1, *([1] * (values.dim() - 2)))


@dataclass
class WindowedOutput:
    """Predictions over a whole sequence.

    Attributes:
        pose: ``(T, J, 3)`` per-frame mean over windows (``None`` without a pose head).
        kcal_probs: ``(N, K)`` per-window energy distributions (``None`` without a calorie head).
        starts: ``(N,)`` first frame of each window.
        real_frames: ``(N,)`` frames of the sequence (not padding) in each window.
    """

    pose: Tensor | None
    kcal_probs: Tensor | None
    starts: np.ndarray
    real_frames: np.ndarray


def run_windows(
    predict: Callable[[Tensor], dict[str, Tensor]],
    x: Tensor,
    window: int,
    stride: int | None = None,
    batch_size: int = 8,
) -> WindowedOutput:
    """Run ``predict`` on the windows of ``x (T, J, C)`` in batches and stitch the results.

    ``predict(batch (B, W, J, C))`` returns ``{"pose_3d": (B, W, J, 3)}`` and/or
    ``{"kcal_probs": (B, K)}``.
    """
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    t = x.shape[0]
    starts = window_starts(t, window, stride)
    poses: list[Tensor] = []
    probs: list[Tensor] = []
    for first in range(0, len(starts), batch_size):
        out = predict(cut_windows(x, starts[first : first + batch_size], window))
        if "pose_3d" in out:
            poses.append(out["pose_3d"])
        if "kcal_probs" in out:
            probs.append(out["kcal_probs"])
    real = np.minimum(starts + window, t) - starts
    return WindowedOutput(
        pose=stitch(torch.cat(poses), starts, t) if poses else None,
        kcal_probs=torch.cat(probs) if probs else None,
        starts=starts,
        real_frames=real,
    )
