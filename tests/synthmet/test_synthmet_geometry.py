"""Rigid bones, projection, camera extrinsics and feet on the floor, checked on the stored arrays."""

from __future__ import annotations

import numpy as np
import pytest

from pose2met.data.synthmet import generate
from pose2met.data.synthmet.bodies import ANKLE_HEIGHT_FRACTION
from pose2met.skeleton import PARENTS


@pytest.fixture(scope="module")
def tiny():
    return generate("tiny", seed=3)


def _sequence(bundle, key: str, s: int) -> np.ndarray:
    start, length = bundle.sequences["start"][s], bundle.sequences["length"][s]
    return bundle.frames[key][start : start + length].astype(np.float64)


def _to_world(bundle, s: int) -> np.ndarray:
    """Stored camera-frame 3D of sequence ``s`` back to the world with the stored R, t."""
    cam = bundle.cameras[bundle.sequences["camera"][s]]
    return (_sequence(bundle, "joints_3d", s) - cam["t"]) @ cam["R"]


def test_bone_lengths_are_constant_per_subject(tiny) -> None:
    subjects = np.asarray(tiny.sequences["subject"])
    child = np.arange(1, 17)
    parent = np.asarray(PARENTS)[1:]
    for subject in np.unique(subjects):
        lengths = np.concatenate(
            [
                np.linalg.norm(j[:, child] - j[:, parent], axis=-1)
                for s in np.flatnonzero(subjects == subject)
                for j in [_sequence(tiny, "joints_3d", s)]
            ]
        )
        spread = lengths.max(axis=0) - lengths.min(axis=0)
        assert spread.max() < 1.0, f"{subject}: bone length spread {spread.max():.3f} mm"
        assert lengths.min() > 50.0  # no collapsed bones


def test_stored_3d_projects_to_the_ground_truth_2d(tiny) -> None:
    for s in range(len(tiny.sequences["start"])):
        cam = tiny.cameras[tiny.sequences["camera"][s]]
        xyz = _sequence(tiny, "joints_3d", s)
        assert (xyz[..., 2] > 1000).all()  # in front of the camera
        u = cam["fx"] * xyz[..., 0] / xyz[..., 2] + cam["cx"]
        v = cam["fy"] * xyz[..., 1] / xyz[..., 2] + cam["cy"]
        error = np.hypot(
            u - _sequence(tiny, "joints_2d_gt", s)[..., 0], v - _sequence(tiny, "joints_2d_gt", s)[..., 1]
        )
        assert error.max() < 0.5
        factor = xyz[:, 0, 2] / (0.5 * (cam["fx"] + cam["fy"]))
        np.testing.assert_allclose(_sequence(tiny, "factor_2_5d", s), factor, rtol=1e-5)


def test_extrinsics_are_rotations_and_agree_across_cameras(tiny) -> None:
    for name, cam in tiny.cameras.items():
        rot = np.asarray(cam["R"])
        np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-9, err_msg=name)
        assert np.linalg.det(rot) == pytest.approx(1.0)
        np.testing.assert_allclose(cam["center"], -rot.T @ cam["t"], atol=1e-6)
        assert 1000 < cam["center"][2] < 2000  # mounted 1-2 m above the floor
        assert cam["width"] == 1000 and cam["height"] in (1000, 1002)
        assert cam["fx"] == pytest.approx(1145, abs=5)
    n_cam = len(tiny.cameras)
    for first in tiny.instances["first_sequence"]:
        worlds = [_to_world(tiny, first + c) for c in range(n_cam)]
        for other in worlds[1:]:  # every camera saw the same world-frame motion
            np.testing.assert_allclose(other, worlds[0], atol=0.05)


def test_feet_stay_on_the_floor(tiny) -> None:
    heights = ANKLE_HEIGHT_FRACTION * tiny.subjects.height_mm
    grounded = ("standing_idle", "waving", "arm_circles", "pick_up", "sit_to_stand", "squats", "stretching")
    for k, action in enumerate(tiny.instances["action"]):
        world = _to_world(tiny, tiny.instances["first_sequence"][k])
        lowest = world[:, [3, 6], 2].min(axis=1)
        standing = heights[tiny.instances["subject"][k]]
        assert lowest.min() > standing - 8.0, action  # never through the floor (8 mm smooth-minimum slack)
        if action in grounded:
            assert np.abs(lowest - standing).max() < 8.0, action
            # both feet planted: the ankles do not slide
            drift = np.linalg.norm(world[:, [3, 6], :2] - world[:1, [3, 6], :2], axis=-1)
            assert drift.max() < 5.0, action
