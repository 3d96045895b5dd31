"""Energy-bin helpers and the calorie head against NumPy formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pose2met.models import CalorieHead, pose_motion_features
from pose2met.models.energy_bins import (
    bin_centers,
    distribution_argmax,
    distribution_expectation,
    distribution_std,
    gaussian_target,
    make_bin_centers,
)


def test_bin_centers_match_formula() -> None:
    centers = make_bin_centers(500, 0.0, 500.0)
    np.testing.assert_allclose(centers.numpy(), np.arange(500) + 0.5, atol=1e-5)
    centers = make_bin_centers(7, 150.0, 450.0, dtype=torch.float64)
    edges = np.linspace(150.0, 450.0, 8)
    np.testing.assert_allclose(centers.numpy(), (edges[:-1] + edges[1:]) / 2, rtol=0, atol=1e-12)
    assert centers.dtype == torch.float64 and bin_centers is make_bin_centers
    with pytest.raises(ValueError, match="num_bins"):
        make_bin_centers(1)
    with pytest.raises(ValueError, match="kcal_min < kcal_max"):
        make_bin_centers(10, 5.0, 5.0)


def _np_gaussian(labels: np.ndarray, centers: np.ndarray, sigma: float) -> np.ndarray:
    t = np.exp(-((centers[None, :] - labels[:, None]) ** 2) / (2 * sigma**2))
    return t / t.sum(axis=1, keepdims=True)


def test_gaussian_target_matches_numpy_in_float64() -> None:
    centers = make_bin_centers(500, 0.0, 500.0)
    labels = torch.tensor([12.3, 250.0, 449.9, 0.0])
    target = gaussian_target(labels, centers, sigma=10.0, dtype=torch.float64)
    expected = _np_gaussian(labels.double().numpy(), centers.double().numpy(), 10.0)
    np.testing.assert_allclose(target.numpy(), expected, rtol=1e-10, atol=1e-300)
    assert target.shape == (4, 500)
    # tails are resolved in float64 (float32 would make them ties at 0)
    assert target[1, 0] > 0 and target[1, 0] < target[1, 1]
    as_float = gaussian_target(labels, centers)
    assert as_float.dtype == torch.float32
    np.testing.assert_allclose(as_float.sum(-1).numpy(), 1.0, atol=1e-6)


@pytest.mark.parametrize(
    ("args", "message"),
    [((2.7, 0.0, 10.0), "num_bins must be an integer in 2..100000"), ((True, 0.0, 1.0), "num_bins"),
     ((10**9, 0.0, 1.0), "num_bins must be an integer in 2..100000, got 1000000000"),
     ((4, 0.0, float("inf")), "kcal_min < kcal_max"), ((4, 5.0, 5.0), "kcal_min < kcal_max")],
)  # fmt: skip
def test_bin_settings_are_checked(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_bin_centers(*args)


def test_gaussian_target_errors() -> None:
    centers = make_bin_centers(10)
    with pytest.raises(ValueError, match="sigma"):
        gaussian_target(torch.tensor([1.0]), centers, sigma=0.0)
    with pytest.raises(ValueError, match=r"shape \(B,\)"):
        gaussian_target(torch.ones(2, 1), centers)
    with pytest.raises(ValueError, match="NaN or inf"):
        gaussian_target(torch.tensor([float("nan")]), centers)
    with pytest.raises(ValueError, match="centers"):
        gaussian_target(torch.tensor([1.0]), torch.ones(3, 1))


def test_distribution_statistics_match_numpy() -> None:
    rng = np.random.default_rng(0)
    centers = np.linspace(5, 495, 50)
    probs = rng.random((6, 50)) ** 4
    probs[2] = 0.0
    probs[2, 17] = 1.0  # a one-hot distribution
    p = probs / probs.sum(1, keepdims=True)
    mean = (p * centers).sum(1)
    std = np.sqrt((p * (centers[None] - mean[:, None]) ** 2).sum(1))
    tp, tc = torch.tensor(probs), torch.tensor(centers)
    np.testing.assert_allclose(distribution_argmax(tp, tc).numpy(), centers[probs.argmax(1)])
    np.testing.assert_allclose(distribution_expectation(tp, tc).numpy(), mean, rtol=1e-12)
    np.testing.assert_allclose(distribution_std(tp, tc).numpy(), std, rtol=1e-10, atol=1e-9)
    assert distribution_std(tp, tc)[2] == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match=r"probs must have shape \(B, 50\)"):
        distribution_expectation(tp[:, :40], tc)


@pytest.mark.parametrize("fn", [distribution_argmax, distribution_expectation, distribution_std])
@pytest.mark.parametrize("row", ["nan", "negative", "zero"])
def test_distribution_statistics_reject_non_distributions(fn: object, row: str) -> None:
    centers = make_bin_centers(10)
    probs = torch.full((3, 10), 0.1)
    probs[1] = {"nan": torch.full((10,), float("nan")), "negative": -probs[1], "zero": torch.zeros(10)}[row]
    with pytest.raises(ValueError, match="finite and non-negative with a positive sum"):
        fn(probs, centers)  # type: ignore[operator]


def test_calorie_head_bins_and_shapes() -> None:
    head = CalorieHead(16, num_bins=25, kcal_min=100.0, kcal_max=350.0, hidden=8)
    torch.testing.assert_close(head.bin_centers, make_bin_centers(25, 100.0, 350.0))
    assert "bin_centers" in head.state_dict()
    assert head(torch.randn(3, 5, 17, 16)).shape == (3, 25)
    with pytest.raises(ValueError, match=r"rep must have shape \(B, T, J, 16\)"):
        head(torch.randn(3, 5, 17, 8))
    with_pose = CalorieHead(16, num_bins=25, use_pose_features=True)
    with pytest.raises(ValueError, match="needs pose_3d"):
        with_pose(torch.randn(2, 5, 17, 16))
    assert with_pose(torch.randn(2, 5, 17, 16), torch.randn(2, 5, 17, 3)).shape == (2, 25)


def test_bf16_casts_do_not_merge_bin_centers() -> None:
    """500 bins over 0-1000 kcal/h are 2 kcal/h apart; bf16 spaces values up to 4 apart above 512."""
    exact = np.arange(500) * 2.0 + 1.0
    head = CalorieHead(16, num_bins=500, kcal_max=1000.0, hidden=8).bfloat16()
    assert head.mlp[1].weight.dtype == torch.bfloat16 and head.bin_centers.dtype == torch.float32
    np.testing.assert_array_equal(head.bin_centers.numpy(), exact)
    logits = head(torch.randn(2, 3, 17, 16, dtype=torch.bfloat16))
    assert logits.dtype == torch.bfloat16 and logits.shape == (2, 500)
    np.testing.assert_array_equal(head.float().bin_centers.numpy(), exact)  # and back: unrounded
    assert len(np.unique(torch.tensor(exact).bfloat16().float().numpy())) < 500  # what bf16 would do


def test_loading_sets_exact_centres_and_refuses_other_bins() -> None:
    exact = np.arange(500) * 2.0 + 1.0
    state = CalorieHead(16, num_bins=500, kcal_max=1000.0, hidden=8).state_dict()
    state["bin_centers"] = state["bin_centers"].bfloat16().float()  # an older checkpoint of a bf16 model
    head = CalorieHead(16, num_bins=500, kcal_max=1000.0, hidden=8)
    head.load_state_dict(state)
    np.testing.assert_array_equal(head.bin_centers.numpy(), exact)
    other = CalorieHead(16, num_bins=500, kcal_max=800.0, hidden=8)
    with pytest.raises(RuntimeError, match=r"bin_centers: the stored bins differ .* by up to 20[01] kcal/h"):
        other.load_state_dict(state)


def test_pose_motion_features_match_numpy() -> None:
    pose = np.random.default_rng(1).normal(size=(2, 6, 17, 3))
    vel = np.linalg.norm(np.diff(pose, axis=1), axis=-1).mean(1)
    acc = np.linalg.norm(pose[:, 2:] - 2 * pose[:, 1:-1] + pose[:, :-2], axis=-1).mean(1)
    spread = np.sqrt(pose.var(axis=1).sum(-1))
    expected = np.log(1e-4 + np.concatenate([vel, acc, spread], axis=1))
    got = pose_motion_features(torch.tensor(pose))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10)
    single = pose_motion_features(torch.tensor(pose[:, :1]))  # one frame: no motion
    np.testing.assert_allclose(single.numpy(), np.log(1e-4), rtol=1e-12)
