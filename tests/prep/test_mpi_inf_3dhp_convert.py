"""MPI-INF-3DHP from tiny P-STMO-format npz files, through the CLI ``main``."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest

from pose2met.data import h5format
from pose2met.data.h5format import SEQUENCE_ARRAYS
from pose2met.data.prep.mpi_inf_3dhp import main
from pose2met.skeleton import JOINT_NAMES

# 3DHP 17-joint order, and where each joint goes in h36m17 (DESIGN section 6), by name.
MPI_ORDER = [
    "head_top",
    "neck",
    "r_shoulder",
    "r_elbow",
    "r_wrist",
    "l_shoulder",
    "l_elbow",
    "l_wrist",
    "r_hip",
    "r_knee",
    "r_ankle",
    "l_hip",
    "l_knee",
    "l_ankle",
    "pelvis",
    "spine",
    "head",
]
TO_H36M = {
    "pelvis": "pelvis",
    "r_hip": "right_hip",
    "r_knee": "right_knee",
    "r_ankle": "right_ankle",
    "l_hip": "left_hip",
    "l_knee": "left_knee",
    "l_ankle": "left_ankle",
    "spine": "spine",
    "neck": "thorax",
    "head": "neck",
    "head_top": "head",
    "l_shoulder": "left_shoulder",
    "l_elbow": "left_elbow",
    "l_wrist": "left_wrist",
    "r_shoulder": "right_shoulder",
    "r_elbow": "right_elbow",
    "r_wrist": "right_wrist",
}


def _anim(n: int, seed: int) -> dict:
    """3D x = 100 * source joint index (mm), 2D x = 10 * source joint index + frame (px)."""
    j = np.arange(17)
    d3 = np.zeros((n, 17, 3))
    d3[..., 0], d3[..., 1], d3[..., 2] = 100.0 * j, seed, 4000.0 + j
    d2 = np.zeros((n, 17, 2))
    d2[..., 0] = 10.0 * j + np.arange(n)[:, None]
    d2[..., 1] = 5.0 * j
    return {"data_3d": d3.astype(np.float32), "data_2d": d2.astype(np.float32)}


@pytest.fixture
def npz(tmp_path) -> dict:
    train = {
        "S1 Seq1": [{0: _anim(3, 1), 3: _anim(2, 2)}],  # camera 3 is not a training camera
        "S2 Seq2": [{"8": _anim(2, 3)}],
    }
    test = {
        "TS1": {**_anim(3, 4), "valid": np.array([1.0, 0.0, 1.0])},
        "TS5": {**_anim(2, 5), "valid": np.array([False, True])},
    }
    p_train, p_test = tmp_path / "data_train_3dhp.npz", tmp_path / "data_test_3dhp.npz"
    np.savez(p_train, data=train)
    np.savez(p_test, data=test)
    return {"train": p_train, "test": p_test, "train_data": train, "test_data": test}


def _args(npz: dict, out: Path) -> list[str]:
    return ["--train-npz", str(npz["train"]), "--test-npz", str(npz["test"]), "--output", str(out)]


def test_converts_train_and_test(tmp_path, npz, read_h5, capsys):
    assert main(_args(npz, tmp_path / "out.h5")) == 0
    out = read_h5(tmp_path / "out.h5")
    seq, fr = out["sequences"], out["frames"]
    np.testing.assert_array_equal(seq["length"], [3, 2, 3, 2])
    assert seq["subject"] == ["S1", "S2", "TS1", "TS5"]
    assert seq["action"] == ["Seq1", "Seq2", "TS1", "TS5"]
    assert seq["camera"] == ["cam0", "cam8", "TS1", "TS5"]
    assert seq["split"] == ["train", "train", "test", "test"]
    if "name" in SEQUENCE_ARRAYS:
        assert seq["name"] == ["S1 Seq1 cam0", "S2 Seq2 cam8", "TS1", "TS5"]
    # joint mapping: h36m joint k holds the 3DHP joint named TO_H36M^-1(k); 3D stays in mm
    source_of = {TO_H36M[name]: i for i, name in enumerate(MPI_ORDER)}
    for k, name in enumerate(JOINT_NAMES):
        np.testing.assert_array_equal(fr["joints_3d"][:, k, 0], 100.0 * source_of[name])
        np.testing.assert_array_equal(fr["joints_2d"][:3, k, 0], 10.0 * source_of[name] + np.arange(3))
    np.testing.assert_array_equal(fr["joints_3d"][:, 0, 2], 4014.0)  # pelvis is 3DHP joint 14
    np.testing.assert_array_equal(fr["valid"], [True] * 5 + [True, False, True, False, True])
    np.testing.assert_array_equal(fr["confidence"], 1.0)
    assert "factor_2_5d" not in fr
    cams = out["cameras"]
    assert (cams["cam0"]["width"], cams["cam0"]["height"]) == (2048, 2048)
    assert (cams["TS1"]["width"], cams["TS1"]["height"]) == (2048, 2048)
    assert (cams["TS5"]["width"], cams["TS5"]["height"]) == (1920, 1080)
    assert np.isnan(cams["TS5"]["fx"])  # no intrinsics in the source files
    stdout = capsys.readouterr().out
    assert "valid frames: 8 of 10" in stdout and "skipped 1 training sequences" in stdout


def test_only_test_file(tmp_path, npz, read_h5):
    assert main(["--test-npz", str(npz["test"]), "--output", str(tmp_path / "t.h5")]) == 0
    assert read_h5(tmp_path / "t.h5")["sequences"]["split"] == ["test", "test"]


def test_deterministic(tmp_path, npz, same_files):
    assert main(_args(npz, tmp_path / "a.h5")) == 0
    assert main(_args(npz, tmp_path / "b.h5")) == 0
    same_files(tmp_path / "a.h5", tmp_path / "b.h5")


def _bad(tmp_path: Path, npz: dict, capsys) -> str:
    assert main(_args(npz, tmp_path / "out.h5")) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


def test_missing_valid_mask(tmp_path, npz, capsys):
    del npz["test_data"]["TS5"]["valid"]
    np.savez(npz["test"], data=npz["test_data"])
    err = _bad(tmp_path, npz, capsys)
    assert "data_test_3dhp.npz" in err and "['TS5']" in err and "'valid'" in err


def test_valid_mask_length(tmp_path, npz, capsys):
    npz["test_data"]["TS1"]["valid"] = np.ones(2)
    np.savez(npz["test"], data=npz["test_data"])
    assert "expected 3 entries" in _bad(tmp_path, npz, capsys)


def test_wrong_joint_count(tmp_path, npz, capsys):
    npz["train_data"]["S2 Seq2"][0]["8"]["data_3d"] = np.zeros((2, 16, 3))
    np.savez(npz["train"], data=npz["train_data"])
    err = _bad(tmp_path, npz, capsys)
    assert "['S2 Seq2'][0]['8']['data_3d']" in err and "(2, 17, 3)" in err


def test_bad_sequence_key(tmp_path, npz, capsys):
    npz["train_data"]["S9 Seq1"] = npz["train_data"].pop("S2 Seq2")
    np.savez(npz["train"], data=npz["train_data"])
    assert "'S9 Seq1'" in _bad(tmp_path, npz, capsys)


def test_missing_data_key(tmp_path, npz, capsys):
    np.savez(npz["train"], other=npz["train_data"])
    assert "missing key 'data'" in _bad(tmp_path, npz, capsys)


@pytest.mark.parametrize("fps", ["nan", "inf", "0"])
def test_frame_rate_must_be_positive_and_finite(tmp_path, npz, capsys, fps):
    assert main([*_args(npz, tmp_path / "out.h5"), "--fps", fps]) == 2
    assert "--fps: expected a positive, finite frame rate" in capsys.readouterr().err
    assert not (tmp_path / "out.h5").exists()


def test_every_clip_skipped_names_the_reason(tmp_path, npz, capsys):
    # no training sequence has camera 5
    assert (
        main(["--train-npz", str(npz["train"]), "--train-cameras", "5", "--output", str(tmp_path / "o.h5")])
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert "no sequences to write: every input item was skipped (" in err and "camera" in err


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_during_the_write_keeps_the_old_file_and_no_temp(
    tmp_path, npz, capsys, monkeypatch, signum, code
):
    out = tmp_path / "out.h5"
    out.write_bytes(b"previous content")

    def replace_after_a_signal(src: object, dst: object) -> None:
        os.kill(os.getpid(), signum)  # arrives while the complete temp file waits to be renamed
        raise AssertionError("the signal should have interrupted the write")

    monkeypatch.setattr(h5format.os, "replace", replace_after_a_signal)
    assert main([*_args(npz, out), "--overwrite"]) == code
    err = capsys.readouterr().err.strip()
    assert err == f"error: interrupted ({signal.Signals(signum).name}); {out} was not written or changed"
    assert out.read_bytes() == b"previous content"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "data_test_3dhp.npz",
        "data_train_3dhp.npz",
        "out.h5",
    ]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is removed again
