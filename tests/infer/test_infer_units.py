"""Model outputs to millimetres: a skeleton projected by hand with known intrinsics."""

from __future__ import annotations

import numpy as np
import pytest

from pose2met.infer.units import CHAIN_HEIGHT_FRACTION, Intrinsics, chain_length, to_output_units

W = 1000.0
CAM = Intrinsics(fx=1100.0, fy=1000.0, cx=500.0, cy=400.0)
ROOT = np.array([100.0, -50.0, 5000.0])


def skeleton_mm(planar: bool) -> np.ndarray:
    """A standing h36m17 skeleton (mm, camera axes, y down), root at ROOT; ``planar``: all at root depth."""
    rel = np.array(
        [[0, 0, 0], [-130, 0, 10], [-140, 440, 30], [-150, 880, 0], [130, 0, -10], [140, 440, 60],
         [150, 880, 0], [0, -230, -20], [0, -480, -30], [0, -600, -80], [0, -720, -40], [170, -470, 0],
         [200, -200, 90], [210, 40, 150], [-170, -470, 0], [-200, -200, -90], [-210, 40, -150]], float,
    )  # fmt: skip
    if planar:
        rel[:, 2] = 0
    return ROOT + rel


def project(p: np.ndarray) -> np.ndarray:
    return np.stack([CAM.fx * p[:, 0] / p[:, 2] + CAM.cx, CAM.fy * p[:, 1] / p[:, 2] + CAM.cy], -1)


def image25d(p: np.ndarray) -> np.ndarray:
    """The MotionBERT 2.5D target by hand: pixels minus root * 2 / W; depth / (Z_root / fx) * 2 / W."""
    uv = project(p)
    xy = (uv - uv[0]) * 2 / W
    factor = p[0, 2] / CAM.fx  # mm per pixel at the root depth
    z = (p[:, 2] - p[0, 2]) / factor * 2 / W
    return np.concatenate([xy, z[:, None]], -1)[None]


def test_planar_skeleton_is_recovered_exactly_with_root_depth() -> None:
    p = skeleton_mm(planar=True)
    out = to_output_units(image25d(p), "image25d", W, CAM, root_depth_mm=5000.0)
    assert out.in_mm and out.root_depth_mm == 5000.0
    np.testing.assert_allclose(out.joints[0], p - p[0], atol=1e-6)


def test_deep_skeleton_depth_exact_and_xy_within_perspective_error() -> None:
    p = skeleton_mm(planar=False)
    out = to_output_units(image25d(p), "image25d", W, CAM, root_depth_mm=5000.0).joints[0]
    np.testing.assert_allclose(out[:, 2], p[:, 2] - p[0, 2], atol=1e-6)
    # weak perspective: x_mm = (X / Z) Z_root; |Z - Z_root| <= 150 mm at 5 m gives <= 3 % of X
    rel = p - p[0]
    assert np.all(np.abs(out[:, :2] - rel[:, :2]) <= 0.031 * np.abs(p[:, :2]) + 1e-6)


def test_root_depth_solved_from_body_height() -> None:
    p = skeleton_mm(planar=True)
    height = chain_length(p - p[0]) / CHAIN_HEIGHT_FRACTION
    out = to_output_units(image25d(p), "image25d", W, CAM, body_height_mm=float(height))
    assert out.root_depth_mm == pytest.approx(5000.0, rel=1e-6)
    np.testing.assert_allclose(out.joints[0], p - p[0], atol=1e-3)


def test_camera_space_is_metres_and_no_intrinsics_stays_normalized() -> None:
    metres = np.random.default_rng(0).normal(size=(2, 17, 3))
    out = to_output_units(metres, "camera", W)
    np.testing.assert_allclose(out.joints, (metres - metres[:, :1]) * 1000.0)
    norm = to_output_units(metres, "image25d", W)
    assert not norm.in_mm and "normalized" in norm.units and "--intrinsics" in norm.units
    np.testing.assert_allclose(norm.joints, metres - metres[:, :1])


@pytest.mark.parametrize("height", [-5.0, 0.0, float("nan")])
def test_bad_body_height_is_named_not_root_depth(height: float) -> None:
    pose = image25d(skeleton_mm(planar=True))
    with pytest.raises(
        ValueError, match=r"^--body-height must be a positive number of millimetres, got (-5|0|nan)$"
    ):
        to_output_units(pose, "image25d", W, CAM, body_height_mm=height)
    with pytest.raises(ValueError, match=r"^--root-depth must be a positive number of millimetres, got -31$"):
        to_output_units(pose, "image25d", W, CAM, root_depth_mm=-31.0, body_height_mm=height)
