"""Clip sampling: which T frames of which sequence make up each sample.

A clip is ``(sequence, start)`` plus the table's ``mode``; frame positions are computed on demand
(:func:`clip_positions`, :func:`resample_positions`), so the table holds two integers per clip.

* ``train``: windows of T frames every ``stride`` frames inside each sequence (DESIGN §5, as
  MotionBERT's clip split: frames after the last full window are not trained on). Sequences
  shorter than T give one clip, resampled to T frames (:func:`resample_positions`).
* ``cover`` (evaluation): consecutive windows ``0, T, 2T, ...`` and a last one aligned to the
  sequence end, so every frame is covered (the tail frames may be covered twice). Sequences
  shorter than T give one clip padded at the end by repeating the last frame.
* ``centered`` (evaluation, MPI-INF-3DHP): one window centred on each valid frame, with edge
  padding at the sequence borders; only the centre frame is scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

ClipMode = Literal["train", "cover", "centered"]


@dataclass(frozen=True)
class ClipTable:
    """Clips of one split.

    Attributes:
        sequence: ``(C,)`` int64 sequence index of each clip (into ``/sequences``).
        start: ``(C,)`` int64 position of the clip's first frame within its sequence (negative or
            past the end in ``centered`` mode near the borders: those positions are edge-padded).
        mode: how positions are formed, see the module docstring.
        num_frames: T.
    """

    sequence: np.ndarray
    start: np.ndarray
    mode: ClipMode
    num_frames: int

    def __len__(self) -> int:
        return len(self.sequence)

    def subset(self, keep: np.ndarray) -> ClipTable:
        """The clips selected by the index or boolean array ``keep``."""
        return ClipTable(self.sequence[keep], self.start[keep], self.mode, self.num_frames)


def _check(num_frames: int, stride: int | None = None) -> None:
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if stride is not None and stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")


def _starts_with_tail(length: int, num_frames: int, stride: int) -> np.ndarray:
    if length <= num_frames:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, length - num_frames + 1, stride, dtype=np.int64)
    if starts[-1] != length - num_frames:
        starts = np.append(starts, length - num_frames)
    return starts


def _table(sequences: np.ndarray, starts: list[np.ndarray], mode: ClipMode, num_frames: int) -> ClipTable:
    counts = np.array([len(s) for s in starts], dtype=np.int64)
    seq = np.repeat(np.asarray(sequences, dtype=np.int64), counts)
    start = np.concatenate(starts) if starts else np.zeros(0, dtype=np.int64)
    return ClipTable(seq, start.astype(np.int64), mode, num_frames)


def train_clips(
    sequences: np.ndarray, lengths: np.ndarray, num_frames: int, stride: int | None = None
) -> ClipTable:
    """Training windows of ``num_frames`` every ``stride`` (default ``max(1, T // 3)``) frames.

    Args:
        sequences: ``(S,)`` sequence indices.
        lengths: ``(S,)`` their lengths in frames.
    """
    stride = max(1, num_frames // 3) if stride is None else stride
    _check(num_frames, stride)
    starts = [np.arange(0, max(int(n) - num_frames, 0) + 1, stride, dtype=np.int64) for n in lengths]
    return _table(sequences, starts, "train", num_frames)


def cover_clips(sequences: np.ndarray, lengths: np.ndarray, num_frames: int) -> ClipTable:
    """Evaluation windows covering every frame: stride T, last window aligned to the sequence end."""
    _check(num_frames)
    starts = [_starts_with_tail(int(n), num_frames, num_frames) for n in lengths]
    return _table(sequences, starts, "cover", num_frames)


def centered_clips(
    sequences: np.ndarray, seq_starts: np.ndarray, lengths: np.ndarray, valid: np.ndarray, num_frames: int
) -> ClipTable:
    """One window centred on each valid frame (centre at position ``T // 2`` of the window).

    Args:
        sequences: ``(S,)`` sequence indices.
        seq_starts: ``(S,)`` first file frame of each sequence.
        lengths: ``(S,)`` lengths.
        valid: ``(N,)`` bool per file frame (the ``/frames/valid`` array).
    """
    _check(num_frames)
    starts = []
    for s0, n in zip(seq_starts, lengths, strict=True):
        centres = np.flatnonzero(valid[int(s0) : int(s0) + int(n)])
        starts.append(centres.astype(np.int64) - num_frames // 2)
    return _table(sequences, starts, "centered", num_frames)


def clip_positions(length: int, start: int, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame positions of a window with edge padding.

    Returns:
        ``positions`` ``(T,)`` int64 in ``[0, length)`` (positions outside the sequence are clamped
        to the first/last frame) and ``real`` ``(T,)`` bool, False on padded positions.
    """
    raw = start + np.arange(num_frames, dtype=np.int64)
    real = (raw >= 0) & (raw < length)
    return np.clip(raw, 0, length - 1), real


def resample_positions(length: int, num_frames: int) -> np.ndarray:
    """Fractional frame positions ``(T,)`` float64 spreading ``length`` frames evenly over T.

    ``linspace(0, length - 1, T)``: the first and last frames are kept and the ones between are
    linearly interpolated (see :func:`interpolate_frames`).
    """
    return np.linspace(0.0, length - 1, num_frames)


def interpolate_frames(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``values`` ``(L, ...)`` at fractional ``positions`` ``(T,)``: ``(T, ...)``."""
    lo = np.floor(positions).astype(np.int64)
    hi = np.minimum(lo + 1, len(values) - 1)
    w = (positions - lo).astype(values.dtype).reshape(-1, *([1] * (values.ndim - 1)))
    return values[lo] * (1 - w) + values[hi] * w


def evenly_spaced(n: int, k: int) -> list[int]:
    """``k`` indices spread evenly over ``range(n)`` (first and last included; all of them if k >= n)."""
    if n < 1 or k < 1:
        raise ValueError(f"evenly_spaced: need n >= 1 and k >= 1, got n={n}, k={k}")
    if k >= n:
        return list(range(n))
    return np.unique(np.linspace(0, n - 1, k).round().astype(np.int64)).tolist()
