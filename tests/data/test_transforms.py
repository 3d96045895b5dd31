"""Normalization, target spaces and flipping against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pose2met.data.transforms import (
    camera_target,
    denormalize_2d,
    flip_pose,
    image25d_target,
    normalize_2d,
    target_to_mm,
)

LEFT = (4, 5, 6, 11, 12, 13)
RIGHT = (1, 2, 3, 14, 15, 16)
CENTRE = (0, 7, 8, 9, 10)


def test_normalize_hand_values() -> None:
    # w=1000, h=1002: x' = x/1000*2 - 1, y' = y/1000*2 - 1.002
    xy = np.array([[250.0, 700.0], [500.0, 501.0], [0.0, 0.0], [1000.0, 1002.0]])
    expected = np.array([[-0.5, 0.398], [0.0, 0.0], [-1.0, -1.002], [1.0, 1.002]])
    np.testing.assert_allclose(normalize_2d(xy, 1000.0, 1002.0), expected, atol=1e-12)
    t = normalize_2d(torch.tensor(xy, dtype=torch.float64), 1000.0, 1002.0)
    assert isinstance(t, torch.Tensor)
    np.testing.assert_allclose(t.numpy(), expected, atol=1e-12)


def test_normalize_inverse_and_broadcast() -> None:
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 1900, size=(3, 4, 17, 2))
    w = np.array([1000.0, 1920.0, 2048.0])[:, None, None]
    h = np.array([1002.0, 1080.0, 2048.0])[:, None, None]
    norm = normalize_2d(xy, w, h)
    # batch item 1 (1920x1080) by hand
    np.testing.assert_allclose(norm[1, ..., 0], xy[1, ..., 0] / 1920 * 2 - 1)
    np.testing.assert_allclose(norm[1, ..., 1], xy[1, ..., 1] / 1920 * 2 - 1080 / 1920)
    np.testing.assert_allclose(denormalize_2d(norm, w, h), xy, atol=1e-9)


def test_camera_target_and_back() -> None:
    p = np.zeros((1, 2, 17, 3))
    p[..., 0, :] = [100.0, -50.0, 4000.0]
    p[..., 3, :] = [350.0, 450.0, 3900.0]
    target = camera_target(p)
    np.testing.assert_allclose(target[0, 1, 3], [0.25, 0.5, -0.1])
    np.testing.assert_allclose(target[0, 1, 5], [-0.1, 0.05, -4.0])
    assert np.all(target[..., 0, :] == 0)
    mm = target_to_mm(torch.tensor(target), {}, "camera")
    np.testing.assert_allclose(mm.numpy(), p - p[..., :1, :], atol=1e-9)


def test_image25d_target_hand_values_and_back_to_mm() -> None:
    # one frame, w=1000: root at (500, 500) px, depth 5000 mm; factor = 5 mm/px
    xy = np.zeros((1, 1, 17, 2))
    xyz = np.zeros((1, 1, 17, 3))
    xy[0, 0, 0] = [500.0, 500.0]
    xyz[0, 0, 0, 2] = 5000.0
    xy[0, 0, 10] = [520.0, 440.0]  # 20 px right, 60 px up
    xyz[0, 0, 10, 2] = 5100.0  # 100 mm behind the root
    factor = np.array([[5.0]])
    target = image25d_target(xy, xyz, factor, 1000.0)
    # x, y: pixel offsets * 2 / w ; z: dZ / factor * 2 / w
    np.testing.assert_allclose(target[0, 0, 10], [20 * 2 / 1000, -60 * 2 / 1000, 100 / 5 * 2 / 1000])
    batch = {"image_size": torch.tensor([[1000.0, 1002.0]]), "factor_2_5d": torch.tensor([[5.0]])}
    mm = target_to_mm(torch.tensor(target), batch, "image25d")
    # back to mm: pixel offsets times factor, depth difference in mm
    np.testing.assert_allclose(mm[0, 0, 10].numpy(), [100.0, -300.0, 100.0], atol=1e-9)
    np.testing.assert_allclose(mm[0, 0, 0].numpy(), [0.0, 0.0, 0.0])


def test_target_to_mm_per_sample_width_and_frame_factor() -> None:
    target = torch.ones(2, 3, 17, 3, dtype=torch.float64)
    batch = {
        "image_size": torch.tensor([[1000.0, 1000.0], [2000.0, 1000.0]]),
        "factor_2_5d": torch.tensor([[1.0, 2.0, 3.0], [1.0, 1.0, 0.5]]),
    }
    mm = target_to_mm(target, batch, "image25d")
    expected = np.array([[500.0, 1000.0, 1500.0], [1000.0, 1000.0, 500.0]])  # w / 2 * factor
    np.testing.assert_allclose(mm[..., 4, 1].numpy(), expected)
    assert mm.dtype == torch.float64


def test_target_to_mm_errors() -> None:
    with pytest.raises(ValueError, match="unknown target space 'pixels'"):
        target_to_mm(torch.zeros(1, 2, 17, 3), {}, "pixels")
    with pytest.raises(KeyError, match="image_size"):
        target_to_mm(torch.zeros(1, 2, 17, 3), {}, "image25d")
    with pytest.raises(ValueError, match=r"\(B, T, J, 3\)"):
        target_to_mm(torch.zeros(2, 17, 3), {}, "camera")


def _hand_flip(x: np.ndarray) -> np.ndarray:
    out = x.copy()
    for a, b in zip(LEFT, RIGHT, strict=True):
        out[..., a, :], out[..., b, :] = x[..., b, :], x[..., a, :]
    out[..., 0] *= -1
    return out


def test_flip_swaps_pairs_and_negates_x() -> None:
    x = torch.randn(2, 5, 17, 3, dtype=torch.float64)
    y = flip_pose(x)
    np.testing.assert_array_equal(y.numpy(), _hand_flip(x.numpy()))
    for j in CENTRE:
        np.testing.assert_array_equal(y[..., j, 0].numpy(), -x[..., j, 0].numpy())
        np.testing.assert_array_equal(y[..., j, 1:].numpy(), x[..., j, 1:].numpy())
    np.testing.assert_array_equal(flip_pose(y).numpy(), x.numpy())
    np.testing.assert_array_equal(flip_pose(x.numpy()), _hand_flip(x.numpy()))


def test_flip_equals_mirroring_the_image() -> None:
    # mirroring the image (x_px -> w - x_px, left/right labels swapped) then normalizing
    # equals flip_pose of the normalized pose; the confidence channel only moves with its joint
    rng = np.random.default_rng(1)
    w, h = 1000.0, 1002.0
    xy = rng.uniform(0, 1000, size=(4, 17, 2))
    conf = rng.uniform(size=(4, 17, 1))
    mirrored = xy.copy()
    mirrored[..., 0] = w - xy[..., 0]
    swapped = mirrored.copy()
    swapped_conf = conf.copy()
    for a, b in zip(LEFT, RIGHT, strict=True):
        swapped[:, a], swapped[:, b] = mirrored[:, b], mirrored[:, a]
        swapped_conf[:, a], swapped_conf[:, b] = conf[:, b], conf[:, a]
    expected = np.concatenate([normalize_2d(swapped, w, h), swapped_conf], -1)
    got = flip_pose(torch.tensor(np.concatenate([normalize_2d(xy, w, h), conf], -1)))
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-12)


def test_flip_keeps_device_dtype_and_checks_shape() -> None:
    x = torch.randn(3, 17, 3, dtype=torch.bfloat16)
    assert flip_pose(x).dtype == torch.bfloat16
    with pytest.raises(ValueError, match=r"\(\.\.\., 17, C\)"):
        flip_pose(torch.zeros(3, 16, 3))


def test_tensor_functions_follow_the_input_device() -> None:
    # the meta device stands in for a GPU: nothing may silently move work to the CPU
    x = torch.zeros(2, 4, 17, 3, device="meta")
    assert flip_pose(x).device.type == "meta"
    batch = {"image_size": torch.tensor([[1000.0, 1002.0]] * 2), "factor_2_5d": torch.ones(2, 4)}
    assert target_to_mm(x, batch, "image25d").device.type == "meta"
    assert normalize_2d(x[..., :2], 1000.0, 1002.0).device.type == "meta"
