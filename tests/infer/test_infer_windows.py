"""Sliding-window stitching with a stub model whose output is a known function of the frame index."""

from __future__ import annotations

import numpy as np
import torch

from pose2met.infer.windows import run_windows, window_starts


def stub(batch: torch.Tensor) -> dict[str, torch.Tensor]:
    """pose = frame index (channel 0 of the input) + 1000 x position in the window; kcal = window mean."""
    pos = torch.arange(batch.shape[1], dtype=batch.dtype)[None, :, None, None]
    pose = batch[..., :1].expand(*batch.shape[:3], 3) + 1000.0 * pos
    probs = torch.stack([batch[:, :, 0, 0].mean(1), torch.ones(batch.shape[0])], -1)
    return {"pose_3d": pose, "kcal_probs": probs}


def frames(t: int) -> torch.Tensor:
    return torch.arange(t, dtype=torch.float64)[:, None, None].expand(t, 17, 3).clone()


def test_non_overlapping_windows_equal_whole_sequence_per_window() -> None:
    out = run_windows(stub, frames(12), window=4, stride=4, batch_size=2)
    assert out.starts.tolist() == [0, 4, 8]
    expected = np.arange(12) + 1000.0 * (np.arange(12) % 4)  # each frame seen once, at position f mod 4
    np.testing.assert_allclose(out.pose[:, 5, 1].numpy(), expected)
    np.testing.assert_allclose(out.kcal_probs[:, 0].numpy(), [1.5, 5.5, 9.5])
    # one whole window over the sequence = the stub applied to all frames at once
    whole = run_windows(stub, frames(4), window=4)
    np.testing.assert_allclose(whole.pose.numpy(), stub(frames(4)[None])["pose_3d"][0].numpy())


def test_overlap_average_by_hand() -> None:
    out = run_windows(stub, frames(10), window=4, stride=2, batch_size=3)
    assert out.starts.tolist() == [0, 2, 4, 6]
    # frame f is at position f - s in each window s in {0, 2, 4, 6} with s <= f < s + 4
    positions = {0: [0], 1: [1], 2: [2, 0], 3: [3, 1], 4: [2, 0], 5: [3, 1], 6: [2, 0], 7: [3, 1],
                 8: [2], 9: [3]}  # fmt: skip
    expected = [f + 1000.0 * np.mean(positions[f]) for f in range(10)]
    np.testing.assert_allclose(out.pose[:, 0, 0].numpy(), expected)


def test_last_window_ends_at_the_last_frame_and_short_input_is_edge_padded() -> None:
    assert window_starts(11, 4, 4).tolist() == [0, 4, 7]
    out = run_windows(stub, frames(3), window=5)
    assert out.starts.tolist() == [0] and out.real_frames.tolist() == [3]
    np.testing.assert_allclose(out.pose[:, 0, 0].numpy(), [0.0, 1001.0, 2002.0])
    # the padded window repeats the last frame: mean of frames (0, 1, 2, 2, 2)
    assert out.kcal_probs[0, 0].item() == np.mean([0, 1, 2, 2, 2])
