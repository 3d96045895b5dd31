"""Human3.6M from a tiny MotionBERT-format pickle, through the CLI ``main``."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from pose2met.data.h5format import SEQUENCE_ARRAYS
from pose2met.data.prep.h36m import main

# (source, camera_name, action string, frames)
TRAIN = [
    ("s_01_act_02_subact_01_ca_01", "54138969", "Directions", 3),
    ("s_05_act_15_subact_02_ca_03", "58860488", "WalkDog 1", 2),
]
TEST = [("s_09_act_12_subact_01_ca_04", "60457274", "TakingPhoto", 2)]


def _part(runs: list[tuple[str, str, str, int]], seed: int) -> dict:
    rng = np.random.default_rng(seed)
    n = sum(r[3] for r in runs)
    img3d = rng.uniform(0, 1000, (n, 17, 3)).astype(np.float32)
    factor = rng.uniform(2, 6, n).astype(np.float32)
    # joints_2.5d_image = joint3d_image * factor, plus a per-frame root translation (allowed)
    j25 = img3d * factor[:, None, None] + rng.uniform(-100, 100, (n, 1, 3)).astype(np.float32)
    expand = lambda i: [v for r in runs for v in [r[i]] * r[3]]  # noqa: E731
    return {
        "joint_2d": np.arange(n * 17 * 2, dtype=np.float32).reshape(n, 17, 2),
        "confidence": rng.uniform(0, 1, (n, 17, 1)).astype(np.float32),
        "joint3d_image": img3d,
        "joints_2.5d_image": j25,
        "2.5d_factor": factor,
        "camera_name": np.array(expand(1)),
        "action": np.array(expand(2)),
        "source": np.array(expand(0)),
    }


def _write_pickle(path: Path, data: dict) -> Path:
    with path.open("wb") as f:
        pickle.dump(data, f)
    return path


@pytest.fixture
def data() -> dict:
    return {"train": _part(TRAIN, 0), "test": _part(TEST, 1)}


def test_converts_sequences_labels_and_arrays(tmp_path, data, read_h5, capsys):
    pkl = _write_pickle(tmp_path / "h36m.pkl", data)
    assert main(["--motionbert-pkl", str(pkl), "--output", str(tmp_path / "out.h5")]) == 0
    out = read_h5(tmp_path / "out.h5")
    seq = out["sequences"]
    np.testing.assert_array_equal(seq["start"], [0, 3, 5])
    np.testing.assert_array_equal(seq["length"], [3, 2, 2])
    assert seq["subject"] == ["S1", "S5", "S9"]
    assert seq["action"] == ["Directions", "WalkDog", "Photo"]  # act_02, act_15, act_12
    assert seq["camera"] == ["54138969", "58860488", "60457274"]
    assert seq["split"] == ["train", "train", "test"]
    if "name" in SEQUENCE_ARRAYS:
        assert seq["name"] == [r[0] for r in TRAIN + TEST]
    fr = out["frames"]
    both = {k: np.concatenate([data["train"][k], data["test"][k]]) for k in data["train"]}
    np.testing.assert_array_equal(fr["joints_2d"], both["joint_2d"])
    np.testing.assert_array_equal(fr["confidence"], both["confidence"][..., 0])
    np.testing.assert_array_equal(fr["joints_3d"], both["joints_2.5d_image"])  # stored as given, mm
    np.testing.assert_array_equal(fr["factor_2_5d"], both["2.5d_factor"])
    np.testing.assert_array_equal(fr["joints_2d_gt"], both["joint3d_image"][..., :2])
    assert out["cameras"]["54138969"]["width"] == 1000 and out["cameras"]["54138969"]["height"] == 1002
    assert out["cameras"]["58860488"]["height"] == 1000 and out["cameras"]["60457274"]["height"] == 1002
    assert out["cameras"]["54138969"]["fx"] == pytest.approx(1145.0494384765625)
    assert out["attrs"]["fps"] == 50 and out["attrs"]["dataset"] == "h36m"
    assert out["attrs"]["joints_3d_space"] == "image_2.5d_mm"
    stdout = capsys.readouterr().out
    assert "3 sequences, 7 frames" in stdout and "split test: 1 sequences, 2 frames" in stdout


def test_deterministic(tmp_path, data, same_files):
    pkl = _write_pickle(tmp_path / "h36m.pkl", data)
    for name in ("a.h5", "b.h5"):
        assert main(["--motionbert-pkl", str(pkl), "--output", str(tmp_path / name)]) == 0
    same_files(tmp_path / "a.h5", tmp_path / "b.h5")


def test_refuses_to_overwrite_and_leaves_file_untouched(tmp_path, data, capsys):
    pkl = _write_pickle(tmp_path / "h36m.pkl", data)
    out = tmp_path / "out.h5"
    out.write_bytes(b"previous content")
    assert main(["--motionbert-pkl", str(pkl), "--output", str(out)]) == 2
    assert out.read_bytes() == b"previous content"
    assert "--overwrite" in capsys.readouterr().err
    assert main(["--motionbert-pkl", str(pkl), "--output", str(out), "--overwrite"]) == 0
    assert out.read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"


def test_output_under_a_file_names_the_flag(tmp_path, data, capsys):
    pkl = _write_pickle(tmp_path / "h36m.pkl", data)
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    assert main(["--motionbert-pkl", str(pkl), "--output", str(blocker / "out.h5")]) == 2
    err = capsys.readouterr().err
    assert err == f"error: --output {blocker / 'out.h5'}: cannot create it ({blocker} is not a folder)\n"
    assert blocker.read_text() == "x"


def _run_bad(tmp_path: Path, data: dict, capsys) -> str:
    pkl = _write_pickle(tmp_path / "bad.pkl", data)
    assert main(["--motionbert-pkl", str(pkl), "--output", str(tmp_path / "out.h5")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert not (tmp_path / "out.h5").exists()
    return err


def test_missing_key_is_named(tmp_path, data, capsys):
    del data["test"]["source"]
    err = _run_bad(tmp_path, data, capsys)
    assert "bad.pkl" in err and "['test']" in err and "'source'" in err


def test_wrong_joint_count(tmp_path, data, capsys):
    data["train"]["joint_2d"] = data["train"]["joint_2d"][:, :16]
    err = _run_bad(tmp_path, data, capsys)
    assert "'joint_2d'" in err and "(N, 17, 2)" in err


def test_camera_mismatch_with_source(tmp_path, data, capsys):
    data["train"]["camera_name"][0] = "55011271"
    err = _run_bad(tmp_path, data, capsys)
    assert "s_01_act_02_subact_01_ca_01" in err and "54138969" in err


def test_inconsistent_2_5d_factor(tmp_path, data, capsys):
    data["train"]["joints_2.5d_image"][1, 5, 2] += 50.0
    err = _run_bad(tmp_path, data, capsys)
    assert "2.5d_factor" in err and "frame 1" in err


def test_subject_in_wrong_split(tmp_path, data, capsys):
    data["test"]["source"][:] = "s_01_act_12_subact_01_ca_04"
    err = _run_bad(tmp_path, data, capsys)
    assert "S1" in err and "'test'" in err


def test_not_a_pickle(tmp_path, capsys):
    bad = tmp_path / "bad.pkl"
    bad.write_text("not a pickle")
    assert main(["--motionbert-pkl", str(bad), "--output", str(tmp_path / "o.h5")]) == 2
    assert "cannot unpickle" in capsys.readouterr().err


def test_no_source_given(tmp_path, capsys):
    assert main(["--output", str(tmp_path / "o.h5")]) == 2
    assert "no input" in capsys.readouterr().err


def test_sequence_names_written_when_schema_has_them(tmp_path, data, read_h5, monkeypatch):
    """Names (MotionBERT source strings, needed for its S9 exclusion list) reach the file once the
    schema declares an optional ``/sequences/name`` string array."""
    from pose2met.data import h5format

    monkeypatch.setitem(h5format.SEQUENCE_ARRAYS, "name", h5format.ArraySpec((), "S", False))
    pkl = _write_pickle(tmp_path / "h36m.pkl", data)
    assert main(["--motionbert-pkl", str(pkl), "--output", str(tmp_path / "out.h5")]) == 0
    assert read_h5(tmp_path / "out.h5")["sequences"]["name"] == [r[0] for r in TRAIN + TEST]


def test_ragged_keypoints_are_one_line(tmp_path, data, capsys):
    data["train"]["joint_2d"] = [np.zeros((17, 2)), np.zeros((16, 2)), np.zeros((17, 2))]
    err = _run_bad(tmp_path, data, capsys)
    assert "['train']['joint_2d']" in err and "entries of different shapes" in err


def test_confidences_are_clipped_to_0_1(tmp_path, data, read_h5):
    data["train"]["confidence"][0, 3] = 7.0
    data["train"]["confidence"][1, 4] = -0.5
    pkl = _write_pickle(tmp_path / "h36m.pkl", data)
    assert main(["--motionbert-pkl", str(pkl), "--output", str(tmp_path / "out.h5")]) == 0
    conf = read_h5(tmp_path / "out.h5")["frames"]["confidence"]
    assert (conf[0, 3], conf[1, 4]) == (1.0, 0.0)
    np.testing.assert_array_equal(conf[2], data["train"]["confidence"][2, :, 0])


def test_both_splits_empty(tmp_path, data, capsys):
    for part in data.values():
        for key, value in part.items():
            part[key] = value[:0]
    err = _run_bad(tmp_path, data, capsys)
    assert "out.h5" in err and "no frames or no sequences to write (0 frames, 0 sequences)" in err
