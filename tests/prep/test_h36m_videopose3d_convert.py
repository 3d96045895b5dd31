"""Human3.6M from tiny VideoPose3D-format npz files + a cameras JSON, through the CLI ``main``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pose2met.data.h5format import SEQUENCE_ARRAYS
from pose2met.data.prep.h36m import main

CAMS = ["54138969", "55011271", "58860488", "60457274"]
SIZES = {
    "54138969": (1000, 1002),
    "55011271": (1000, 1000),
    "58860488": (1000, 1000),
    "60457274": (1000, 1002),
}
# The 17 joints VideoPose3D keeps of the 32-joint skeleton (it removes 4, 5, 9, 10, 11, 16, 20-24, 28-31).
KEPT = [0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27]
ROT_Z90 = [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]


def _world(n: int, offset: float) -> np.ndarray:
    """Distinct metre values per (frame, joint): x = joint / 100, y = frame / 10, z = offset."""
    w = np.zeros((n, 32, 3), dtype=np.float32)
    w[..., 0] = np.arange(32) / 100
    w[..., 1] = (np.arange(n) / 10)[:, None]
    w[..., 2] = offset
    return w


def _cameras_json(path: Path, subjects: list[str], special: dict | None = None) -> Path:
    data = {
        s: {
            c: {
                "fx": 1145.0 + i,
                "fy": 1144.0,
                "cx": 512.0,
                "cy": 515.0,
                "width": SIZES[c][0],
                "height": SIZES[c][1],
                "R": np.eye(3).tolist(),
                "t": [0.0, 0.0, 0.0],
            }
            for i, c in enumerate(CAMS)
        }
        for s in subjects
    }
    for (s, c), params in (special or {}).items():
        data[s][c].update(params)
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def files(tmp_path) -> dict:
    s1_world = _world(4, 3.0)
    s1_world[2, 0] = [1.5, 2.0, 3.5]  # pelvis of frame 2: transformed by hand below
    pos3d = {
        "S1": {"Walking 1": s1_world},
        "S9": {"WalkDog": _world(3, 4.0)},
        "S2": {"Walking": _world(2, 1)},
    }
    rng = np.random.default_rng(0)
    pos2d = {
        # 6 frames of 2D for 4 frames of 3D: cut to 4 (VideoPose3D)
        "S1": {"Walking 1": [rng.uniform(0, 1000, (6, 17, 2)).astype(np.float32) for _ in CAMS]},
        # third channel = confidence
        "S9": {
            "WalkDog": [
                np.concatenate([rng.uniform(0, 1000, (3, 17, 2)), np.full((3, 17, 1), 0.25)], -1)
                for _ in CAMS
            ]
        },
        "S3": {"Eating": [np.zeros((2, 17, 2)) for _ in CAMS]},  # 2D-only subject: ignored
    }
    metadata = {
        "layout_name": "h36m",
        "num_joints": 17,
        "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]],
    }
    p3, p2 = tmp_path / "data_3d_h36m.npz", tmp_path / "data_2d_h36m_test.npz"
    np.savez(p3, positions_3d=pos3d)
    np.savez(p2, positions_2d=pos2d, metadata=metadata)
    special = {("S1", "54138969"): {"R": ROT_Z90, "t": [1000.0, 2000.0, 3000.0]}}
    cams = _cameras_json(tmp_path / "cameras.json", ["S1", "S9"], special)
    return {"p3": p3, "p2": p2, "cams": cams, "pos3d": pos3d, "pos2d": pos2d, "metadata": metadata}


def _args(files: dict, out: Path) -> list[str]:
    return [
        "--videopose3d-3d",
        str(files["p3"]),
        "--videopose3d-2d",
        str(files["p2"]),
        "--cameras",
        str(files["cams"]),
        "--output",
        str(out),
    ]


def test_converts_to_camera_mm(tmp_path, files, read_h5, capsys):
    assert main(_args(files, tmp_path / "out.h5")) == 0
    out = read_h5(tmp_path / "out.h5")
    seq, fr = out["sequences"], out["frames"]
    np.testing.assert_array_equal(seq["length"], [4] * 4 + [3] * 4)
    np.testing.assert_array_equal(seq["start"], [0, 4, 8, 12, 16, 19, 22, 25])
    assert seq["subject"] == ["S1"] * 4 + ["S9"] * 4
    assert seq["action"] == ["Walking"] * 4 + ["WalkDog"] * 4
    assert seq["camera"] == CAMS * 2
    assert seq["split"] == ["train"] * 4 + ["test"] * 4
    if "name" in SEQUENCE_ARRAYS:
        assert seq["name"][0] == "S1 Walking 1.54138969" and seq["name"][4] == "S9 WalkDog.54138969"
    # world -> camera by hand: X = (1500, 2000, 3500) mm, t = (1000, 2000, 3000), R = Rz(90):
    # X - t = (500, 0, 500); R (X - t) = (-0, 500, 500)
    np.testing.assert_allclose(fr["joints_3d"][2, 0], [0.0, 500.0, 500.0], atol=1e-3)
    # identity cameras: joint k is world joint KEPT[k] in mm (x = KEPT[k] * 10 mm)
    s1_cam1 = fr["joints_3d"][4:8]
    expected = np.zeros((4, 17, 3))
    expected[..., 0] = np.array(KEPT) * 10.0
    expected[..., 1] = np.array([0, 100, 200, 300])[:, None]
    expected[..., 2] = 3000.0
    expected[2, 0] = [1500.0, 2000.0, 3500.0]  # the modified pelvis, untouched by an identity camera
    np.testing.assert_allclose(s1_cam1, expected, atol=1e-3)
    np.testing.assert_allclose(fr["joints_3d"][16:19, :, 2], 4000.0)
    for i in range(4):  # 2D cut to the 3D length, confidence 1 without a third channel
        np.testing.assert_array_equal(
            fr["joints_2d"][4 * i : 4 * i + 4], files["pos2d"]["S1"]["Walking 1"][i][:4]
        )
    np.testing.assert_array_equal(fr["confidence"][:16], 1.0)
    np.testing.assert_allclose(fr["confidence"][16:], 0.25)
    assert out["cameras"]["55011271"]["fx"] == 1146.0 and out["cameras"]["60457274"]["height"] == 1002
    assert out["attrs"]["joints_3d_space"] == "camera_mm"
    stdout = capsys.readouterr().out
    assert "cut 8 extra 2D frames" in stdout and "S2" in stdout and "S3" in stdout


def test_deterministic(tmp_path, files, same_files):
    assert main(_args(files, tmp_path / "a.h5")) == 0
    assert main(_args(files, tmp_path / "b.h5")) == 0
    same_files(tmp_path / "a.h5", tmp_path / "b.h5")


def _bad(tmp_path: Path, files: dict, capsys) -> str:
    assert main(_args(files, tmp_path / "out.h5")) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "out.h5").exists()
    return err


def test_2d_shorter_than_3d(tmp_path, files, capsys):
    files["pos2d"]["S9"]["WalkDog"][2] = files["pos2d"]["S9"]["WalkDog"][2][:2]
    np.savez(files["p2"], positions_2d=files["pos2d"], metadata=files["metadata"])
    err = _bad(tmp_path, files, capsys)
    assert "['S9']['WalkDog'][2]" in err and "2 frames of 2D for 3 frames of 3D" in err


def test_coco_layout_rejected(tmp_path, files, capsys):
    np.savez(files["p2"], positions_2d=files["pos2d"], metadata={"layout_name": "coco", "num_joints": 17})
    assert "'coco'" in _bad(tmp_path, files, capsys)


def test_wrong_3d_joint_count(tmp_path, files, capsys):
    files["pos3d"]["S1"]["Walking 1"] = files["pos3d"]["S1"]["Walking 1"][:, :17]
    np.savez(files["p3"], positions_3d=files["pos3d"])
    err = _bad(tmp_path, files, capsys)
    assert "data_3d_h36m.npz" in err and "(N, 32, 3)" in err


def test_rotation_must_be_orthonormal(tmp_path, files, capsys):
    _cameras_json(files["cams"], ["S1", "S9"], {("S9", "58860488"): {"R": [[2, 0, 0], [0, 1, 0], [0, 0, 1]]}})
    err = _bad(tmp_path, files, capsys)
    assert "cameras.json" in err and "['S9']['58860488']['R']" in err


def test_missing_subject_in_cameras(tmp_path, files, capsys):
    _cameras_json(files["cams"], ["S1"])
    err = _bad(tmp_path, files, capsys)
    assert "cameras.json" in err and "'S9'" in err


def test_missing_positions_key(tmp_path, files, capsys):
    np.savez(files["p3"], poses=files["pos3d"])
    assert "'positions_3d'" in _bad(tmp_path, files, capsys)


def test_incomplete_videopose3d_arguments(tmp_path, files, capsys):
    assert main(["--videopose3d-3d", str(files["p3"]), "--output", str(tmp_path / "o.h5")]) == 2
    assert "--cameras" in capsys.readouterr().err


def test_empty_sequence_is_an_input_error(tmp_path, files, capsys):
    files["pos3d"]["S9"]["WalkDog"] = np.zeros((0, 32, 3))
    np.savez(files["p3"], positions_3d=files["pos3d"])
    assert "'S9 WalkDog.54138969' has no frames" in _bad(tmp_path, files, capsys)


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"layout_name": "h36m", "num_joints": "seventeen"}, "['num_joints'] is 'seventeen', expected 17"),
        ({"layout_name": "h36m", "keypoints_symmetry": "abc"}, "['keypoints_symmetry'] is abc, expected"),
    ],
)
def test_malformed_metadata_is_one_line(tmp_path, files, capsys, metadata, message):
    np.savez(files["p2"], positions_2d=files["pos2d"], metadata=metadata)
    assert message in _bad(tmp_path, files, capsys)


def test_subject_entry_that_is_not_a_dict(tmp_path, files, capsys):
    files["pos3d"]["S9"] = [files["pos3d"]["S9"]["WalkDog"]]
    np.savez(files["p3"], positions_3d=files["pos3d"])
    err = _bad(tmp_path, files, capsys)
    assert "['positions_3d']['S9']: expected a dict of actions, got list" in err and len(err) < 300
