"""Clip sampling: training windows, covering evaluation windows, short sequences, centred windows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from data_tiny_files import frame_values

from pose2met.data.clips import centered_clips, cover_clips, evenly_spaced, train_clips
from pose2met.data.datasets import ClipDataset
from pose2met.data.reader import Pose2MetFile

# tiny file: sequences of lengths 30, 12, 25, 7 starting at frames 0, 30, 42, 67; test = sequences 2, 3
STARTS = (0, 30, 42, 67)


def _motionbert_split(lengths: list[int], n_frames: int, stride: int) -> list[tuple[int, int]]:
    """(sequence, start) of MotionBERT's training clip split, restated frame by frame: a window is
    cut whenever T frames have passed since the current start, which then moves by ``stride``; a
    sequence that gave no window becomes one resampled clip (start 0)."""
    clips = []
    for seq, length in enumerate(lengths):
        start, cut = 0, False
        for i in range(1, length + 1):
            if i - start == n_frames:
                clips.append((seq, start))
                start, cut = start + stride, True
        if not cut:
            clips.append((seq, 0))
    return clips


def test_train_window_starts() -> None:
    t = train_clips(np.array([5, 6, 7]), np.array([30, 31, 9]), num_frames=9, stride=3)
    np.testing.assert_array_equal(t.sequence, [5] * 8 + [6] * 8 + [7])
    np.testing.assert_array_equal(t.start[:8], [0, 3, 6, 9, 12, 15, 18, 21])  # 30 - 9 = 21 reached
    np.testing.assert_array_equal(t.start[8:16], [0, 3, 6, 9, 12, 15, 18, 21])  # frames 30 (of 0..30) unused
    assert t.start[16] == 0 and t.mode == "train"
    assert np.array_equal(train_clips(np.array([0]), np.array([30]), 9).start[:3], [0, 3, 6])  # T // 3
    with pytest.raises(ValueError, match="stride must be >= 1"):
        train_clips(np.array([0]), np.array([30]), 9, stride=0)


@pytest.mark.parametrize(("n_frames", "stride"), [(9, 3), (27, 9), (243, 81), (5, 7)])
def test_train_windows_are_motionberts_split(n_frames: int, stride: int) -> None:
    lengths = [1, n_frames - 1, n_frames, n_frames + 1, 2 * n_frames + stride - 1, 1000]
    t = train_clips(np.arange(len(lengths)), np.array(lengths), n_frames, stride)
    assert list(zip(t.sequence.tolist(), t.start.tolist(), strict=True)) == _motionbert_split(
        lengths, n_frames, stride
    )


def test_cover_window_starts() -> None:
    t = cover_clips(np.array([0, 1, 2]), np.array([30, 27, 7]), num_frames=9)
    np.testing.assert_array_equal(t.start, [0, 9, 18, 21, 0, 9, 18, 0])
    np.testing.assert_array_equal(t.sequence, [0, 0, 0, 0, 1, 1, 1, 2])


def _items(ds: ClipDataset) -> list[dict]:
    return [ds[i] for i in range(len(ds))]


@pytest.mark.parametrize("num_frames", [5, 9, 25, 40])
def test_cover_clips_cover_every_test_frame_once_after_dedupe(
    tiny_file: Callable[..., Path], num_frames: int
) -> None:
    f = Pose2MetFile(tiny_file())
    idx = f.split_indices("test")
    ds = ClipDataset(f, cover_clips(idx, f.sequences["length"][idx], num_frames))
    ref = frame_values(74)
    seen: list[int] = []
    for item in _items(ds):
        fi, valid = item["frame_index"].numpy(), item["valid"].numpy()
        np.testing.assert_array_equal(valid, fi >= 0)
        seen += fi[valid].tolist()
        # every served frame carries the values of its file frame (x pixel = 300 + 10 j + 0.5 n)
        x_px = (item["input_2d"][..., 0].numpy().astype(np.float64) + 1) * item["image_size"][0].item() / 2
        np.testing.assert_allclose(x_px[valid], ref["joints_2d"][fi[valid], :, 0], atol=1e-3)
    test_frames = set(range(42, 74))
    assert set(seen) == test_frames  # union of valid frames = all frames of the split
    assert len(seen) >= len(test_frames)  # frames may be seen twice (end-aligned last clip) ...
    assert len(set(seen)) == len(test_frames)  # ... and count once after dedupe


def test_short_eval_sequence_is_edge_padded(tiny_file: Callable[..., Path]) -> None:
    f = Pose2MetFile(tiny_file())
    ds = ClipDataset(f, cover_clips(np.array([3]), np.array([7]), num_frames=10))
    (item,) = _items(ds)
    np.testing.assert_array_equal(item["frame_index"].numpy(), [67, 68, 69, 70, 71, 72, 73, -1, -1, -1])
    np.testing.assert_array_equal(item["valid"].numpy(), [True] * 7 + [False] * 3)
    for pos in (7, 8, 9):  # padding repeats the last frame
        np.testing.assert_array_equal(item["input_2d"][pos].numpy(), item["input_2d"][6].numpy())
        np.testing.assert_array_equal(item["target_3d"][pos].numpy(), item["target_3d"][6].numpy())


def test_short_train_sequence_is_resampled(tiny_file: Callable[..., Path]) -> None:
    f = Pose2MetFile(tiny_file())
    ds = ClipDataset(f, train_clips(np.array([3]), np.array([7]), num_frames=10))
    (item,) = _items(ds)
    # positions linspace(0, 6, 10) = 0, 2/3, 4/3, 2, 8/3, 10/3, 4, 14/3, 16/3, 6
    pos = np.arange(10) * 6 / 9
    np.testing.assert_array_equal(item["frame_index"].numpy(), 67 + np.array([0, 1, 1, 2, 3, 3, 4, 5, 5, 6]))
    assert item["valid"].all()
    # values are linearly interpolated: frame n at fractional position p has x = 300 + 10 j + 0.5 (67 + p)
    width = item["image_size"][0].item()
    x_px = (item["input_2d"][..., 0].numpy().astype(np.float64) + 1) * width / 2
    expected = 300 + 10 * np.arange(17)[None, :] + 0.5 * (67 + pos[:, None])
    np.testing.assert_allclose(x_px, expected, atol=1e-3)
    # camera target of joint j: (100 j, 50 j, 10 j) mm / 1000 at every frame (root-relative)
    j = np.arange(17)
    np.testing.assert_allclose(
        item["target_3d"].numpy(),
        np.broadcast_to(np.stack([0.1 * j, 0.05 * j, 0.01 * j], -1), (10, 17, 3)),
        atol=1e-6,
    )


def test_centered_windows_score_only_the_centre(tiny_file: Callable[..., Path]) -> None:
    valid = np.zeros(74, dtype=bool)
    scored = [42, 43, 50, 66, 67, 73]  # sequence 2 = frames 42..66, sequence 3 = 67..73
    valid[scored] = True
    f = Pose2MetFile(tiny_file(valid=valid))
    idx = f.split_indices("test")
    table = centered_clips(idx, f.sequences["start"][idx], f.sequences["length"][idx], valid, num_frames=5)
    items = _items(ClipDataset(f, table))
    assert len(items) == len(scored)
    for item, frame in zip(items, scored, strict=True):
        assert item["frame_index"][2].item() == frame
        np.testing.assert_array_equal(item["valid"].numpy(), [False, False, True, False, False])
    # borders: edge padding with frame_index -1 outside the sequence
    np.testing.assert_array_equal(items[0]["frame_index"].numpy(), [-1, -1, 42, 43, 44])
    np.testing.assert_array_equal(items[3]["frame_index"].numpy(), [64, 65, 66, -1, -1])
    np.testing.assert_array_equal(items[4]["frame_index"].numpy(), [-1, -1, 67, 68, 69])
    np.testing.assert_array_equal(items[0]["input_2d"][0].numpy(), items[0]["input_2d"][2].numpy())
    np.testing.assert_array_equal(items[5]["frame_index"].numpy(), [71, 72, 73, -1, -1])


def test_cover_respects_the_file_valid_mask(tiny_file: Callable[..., Path]) -> None:
    valid = np.ones(74, dtype=bool)
    valid[[44, 45]] = False
    f = Pose2MetFile(tiny_file(valid=valid))
    items = _items(ClipDataset(f, cover_clips(np.array([2]), np.array([25]), num_frames=25)))
    np.testing.assert_array_equal(items[0]["valid"].numpy(), valid[42:67])


@pytest.mark.parametrize(
    ("n", "k", "expected"),
    [(10, 4, [0, 3, 6, 9]), (7, 1, [0]), (5, 5, [0, 1, 2, 3, 4]), (3, 9, [0, 1, 2]), (9, 3, [0, 4, 8])],
)
def test_evenly_spaced_indices(n: int, k: int, expected: list[int]) -> None:
    assert evenly_spaced(n, k) == expected


def test_evenly_spaced_rejects_empty_requests() -> None:
    with pytest.raises(ValueError, match="k >= 1"):
        evenly_spaced(5, 0)
