"""The detector-like 2D noise stays within its documented ranges."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from pose2met.data.synthmet import detector, generate
from pose2met.data.synthmet.detector import detect

#: Documented jitter sigma per coordinate at scale 1 (px): torso 2.0, knees/elbows 3.0,
#: ankles/wrists 4.5, neck/head 1.5 (written out here, not read from the module).
DOC_SIGMA = np.array([2.0, 2.0, 3.0, 4.5, 2.0, 3.0, 4.5, 2.0, 2.0, 1.5, 1.5, 2.0, 3.0, 4.5, 2.0, 3.0, 4.5])


def _static_scene(n: int = 40, t: int = 300, spacing: float = 60.0) -> np.ndarray:
    """Still keypoints far apart (no motion blur, no left/right overlap)."""
    grid = np.stack([np.arange(17) * spacing + 50.0, np.full(17, 500.0)], -1)
    return np.broadcast_to(grid, (n, t, 17, 2)).copy()


def test_jitter_matches_the_documented_sigma() -> None:
    gt = _static_scene()
    depth = np.full(gt.shape[:2], 5000.0)
    det = detect(gt, depth, np.full(len(gt), 1145.0), np.random.default_rng(0))
    np.testing.assert_allclose(det.sigma[0, 0], DOC_SIGMA, rtol=1e-9)
    clean = ~(det.outlier | det.swapped)
    err = det.joints_2d - gt
    for j in range(17):
        std = err[..., j, :][clean[..., j]].std()
        assert std == pytest.approx(DOC_SIGMA[j], rel=0.08), j
        assert np.abs(err[..., j, :][clean[..., j]]).max() < 6 * DOC_SIGMA[j]
    # twice as far away: half the scale, half the jitter
    far = detect(gt, 2 * depth, np.full(len(gt), 1145.0), np.random.default_rng(1))
    np.testing.assert_allclose(far.sigma[0, 0], DOC_SIGMA / 2, rtol=1e-9)


def test_motion_blur_adds_in_quadrature_and_is_capped() -> None:
    t = np.arange(50)
    gt = _static_scene(2, 50)
    gt[..., 0] += 10.0 * t[None, :, None]  # 10 px per frame
    det = detect(gt, np.full((2, 50), 5000.0), np.full(2, 1145.0), np.random.default_rng(0))
    np.testing.assert_allclose(det.sigma[0, 25], np.sqrt(DOC_SIGMA**2 + 1.5**2), rtol=1e-9)
    gt[..., 0] = 100.0 * t[None, :, None]  # 100 px per frame: blur capped at 6 px
    det = detect(gt, np.full((2, 50), 5000.0), np.full(2, 1145.0), np.random.default_rng(0))
    np.testing.assert_allclose(det.sigma[0, 25], np.sqrt(DOC_SIGMA**2 + 6.0**2), rtol=1e-9)


def test_outliers_jump_20_to_80_px_for_3_frames_at_the_documented_rate() -> None:
    gt = _static_scene(300, 300)
    det = detect(gt, np.full(gt.shape[:2], 5000.0), np.full(len(gt), 1145.0), np.random.default_rng(2))
    err = np.linalg.norm(det.joints_2d - gt, axis=-1)
    out = det.outlier & ~det.swapped
    margin = 4.5 * np.sqrt(2) * DOC_SIGMA  # jitter on top of the jump
    for j in range(17):
        assert (err[..., j][out[..., j]] < 80 + margin[j]).all(), j
        if DOC_SIGMA[j] <= 2.0:
            assert (err[..., j][out[..., j]] > 20 - margin[j]).all(), j
    # rate per frame x 3-frame bursts (overlaps and sequence ends make it slightly lower)
    expected = np.where(DOC_SIGMA == 4.5, 0.004, np.where(DOC_SIGMA == 3.0, 0.002, 0.001)) * 3
    observed = det.outlier.mean(axis=(0, 1))
    np.testing.assert_allclose(observed, expected, rtol=0.25)


def test_left_right_swaps_happen_when_the_pair_overlaps() -> None:
    gt = _static_scene(100, 200)
    gt[:50, :, 5] = gt[:50, :, 2] + 2.0  # left knee on top of the right knee in half the sequences
    det = detect(gt, np.full(gt.shape[:2], 5000.0), np.full(len(gt), 1145.0), np.random.default_rng(3))
    overlapping, apart = det.swapped[:50, :, 2].mean(), det.swapped[50:, :, 2].mean()
    assert overlapping == pytest.approx(5 * (0.0005 + 0.01 * np.exp(-2 / 20)), rel=0.3)
    assert apart < 0.01
    assert overlapping > 5 * apart


def test_confidence_falls_with_the_error() -> None:
    gt = _static_scene(50, 200)
    det = detect(gt, np.full(gt.shape[:2], 5000.0), np.full(len(gt), 1145.0), np.random.default_rng(4))
    err = np.linalg.norm(det.joints_2d - gt, axis=-1)
    assert ((det.confidence >= 0.01) & (det.confidence <= 1.0)).all()
    rho = spearmanr(err.ravel(), det.confidence.ravel()).statistic
    assert rho < -0.8
    assert det.confidence[err > 40].max() < 0.2
    assert np.median(det.confidence[det.outlier == 0]) > 0.7


def test_stored_detections_have_plausible_errors() -> None:
    bundle = generate("tiny", seed=1)
    err = np.linalg.norm(bundle.frames["joints_2d"] - bundle.frames["joints_2d_gt"], axis=-1)
    assert 1.0 < np.median(err) < 6.0
    assert (err > 100).mean() < 0.01
    assert ((bundle.frames["confidence"] > 0) & (bundle.frames["confidence"] <= 1)).all()


def test_wrong_joint_count_is_rejected() -> None:
    with pytest.raises(ValueError, match="17 joints"):
        detect(np.zeros((1, 5, 16, 2)), np.full((1, 5), 5000.0), np.ones(1), np.random.default_rng(0))
    assert detector.SWAP_FRAMES == 5 and detector.OUTLIER_FRAMES == 3  # the documented burst lengths
