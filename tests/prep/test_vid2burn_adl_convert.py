"""Vid2Burn-ADL from tiny NTU ``.skeleton`` files and label files, through the CLI ``main``."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from pose2met.data.h5format import SEQUENCE_ARRAYS
from pose2met.data.prep.vid2burn_adl import main
from pose2met.skeleton import JOINT_NAMES

# NTU joint (0-based) feeding each h36m17 joint, by name (DESIGN section 6).
NTU_OF = {
    "pelvis": 0,
    "right_hip": 16,
    "right_knee": 17,
    "right_ankle": 18,
    "left_hip": 12,
    "left_knee": 13,
    "left_ankle": 14,
    "spine": 1,
    "thorax": 20,
    "neck": 2,
    "head": 3,
    "left_shoulder": 4,
    "left_elbow": 5,
    "left_wrist": 6,
    "right_shoulder": 8,
    "right_elbow": 9,
    "right_wrist": 10,
}
BODY_INFO = "72057594037931101 0 1 1 1 1 0 0.01 -0.25 2"


def body(t: float, shift: float = 0.0, states: dict[int, int] | None = None) -> np.ndarray:
    """25 joint rows: x = j/100 + shift, y = j/50, z = 3 + t/10; colorX = 100 + 10 j + t, colorY = 50 + j."""
    j = np.arange(25)
    rows = np.zeros((25, 12))
    rows[:, 0], rows[:, 1], rows[:, 2] = j / 100 + shift, j / 50, 3 + t / 10
    rows[:, 3], rows[:, 4] = 200.0, 150.0
    rows[:, 5], rows[:, 6] = 100 + 10 * j + t, 50 + j
    rows[:, 7] = 1.0
    rows[:, 11] = 2
    for k, s in (states or {}).items():
        rows[k, 11] = s
    return rows


def write_skeleton(path: Path, frames: list[list[np.ndarray]], joints: int = 25) -> Path:
    lines = [str(len(frames))]
    for bodies in frames:
        lines.append(str(len(bodies)))
        for rows in bodies:
            lines += [BODY_INFO, str(joints)]
            lines += [" ".join(f"{v:.6g}" if c != 11 else str(int(v)) for c, v in enumerate(r)) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def dataset(tmp_path) -> dict:
    d = tmp_path / "nturgb+d_skeletons"
    d.mkdir()
    states = {3: 1, 5: 0}  # head inferred, left elbow not tracked
    # empty, [body, second body], empty, body, empty -> 3 frames after trimming, middle interpolated
    write_skeleton(
        d / "S001C001P001R001A001.skeleton",
        [[], [body(1, states=states), body(1, shift=5)], [], [body(3, states=states)], []],
    )
    write_skeleton(d / "S001C002P001R001A001.skeleton", [[body(0)], [body(1)]])
    write_skeleton(d / "S001C001P003R001A035.skeleton", [[body(0)], [body(1)], [body(2)]])  # unknown activity
    write_skeleton(d / "S001C001P018R002A010.skeleton", [[body(0)], [body(1)]])  # validation performer
    write_skeleton(d / "S001C001P001R001A045.skeleton", [[body(0)]])  # not a Vid2Burn-ADL activity
    write_skeleton(d / "S001C001P002R001A002.skeleton", [[body(0)]])  # no label
    write_skeleton(d / "S001C001P004R001A003.skeleton", [[], []])  # no body at all
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "File_name,Calorie_label\nS001001R001A001,200.5\nS001003R001A035,250\nS001018R002A010,300.25\n"
        "S001001R001A045,400\nS001004R001A003,180\n"
    )
    return {"dir": d, "labels": labels}


def _args(ds: dict, out: Path, *extra: str) -> list[str]:
    return ["--skeletons", str(ds["dir"]), "--labels", str(ds["labels"]), "--output", str(out), *extra]


def test_converts_clips(tmp_path, dataset, read_h5, capsys):
    assert main(_args(dataset, tmp_path / "out.h5")) == 0
    out = read_h5(tmp_path / "out.h5")
    seq, fr = out["sequences"], out["frames"]
    # sorted file order: C001P001 A001, C001P003 A035, C001P018 A010, C002P001 A001
    np.testing.assert_array_equal(seq["length"], [3, 3, 2, 2])
    assert seq["subject"] == ["P001", "P003", "P018", "P001"]
    assert seq["action"] == ["A001", "A035", "A010", "A001"]
    assert seq["camera"] == ["C001", "C001", "C001", "C002"]
    assert seq["split"] == ["train", "test", "val", "train"]
    assert seq["activity_set"] == ["known", "unknown", "known", "known"]
    np.testing.assert_allclose(
        seq["kcal"], [200.5, 250.0, 300.25, 200.5]
    )  # camera-free label for both cameras
    if "name" in SEQUENCE_ARRAYS:
        assert seq["name"][0] == "S001C001P001R001A001"
    first = slice(0, 3)  # frames t = 1 (two bodies: the first kept), t = 2 (interpolated), t = 3
    for k, name in enumerate(JOINT_NAMES):
        j = NTU_OF[name]
        np.testing.assert_allclose(
            fr["joints_2d"][first, k, 0], 100 + 10 * j + np.array([1, 2, 3]), atol=1e-3
        )
        np.testing.assert_allclose(fr["joints_2d"][first, k, 1], 50 + j, atol=1e-3)
        # metres -> mm; Kinect +Y up -> image-aligned +y down
        np.testing.assert_allclose(fr["joints_3d"][first, k, 0], 10.0 * j, atol=1e-2)
        np.testing.assert_allclose(fr["joints_3d"][first, k, 1], -20.0 * j, atol=1e-2)
        np.testing.assert_allclose(fr["joints_3d"][first, k, 2], 3000 + 100 * np.array([1, 2, 3]), atol=1e-2)
    head, l_elbow, pelvis = JOINT_NAMES.index("head"), JOINT_NAMES.index("left_elbow"), 0
    np.testing.assert_array_equal(fr["confidence"][first, head], [0.5, 0.0, 0.5])  # inferred; gap -> 0
    np.testing.assert_array_equal(fr["confidence"][first, l_elbow], [0.0, 0.0, 0.0])  # not tracked
    np.testing.assert_array_equal(fr["confidence"][first, pelvis], [1.0, 0.0, 1.0])
    cams = out["cameras"]
    assert sorted(cams) == ["C001", "C002"] and (cams["C001"]["width"], cams["C001"]["height"]) == (
        1920,
        1080,
    )
    assert out["attrs"]["fps"] == 30
    stdout = capsys.readouterr().out
    for text in ("activity outside A001-A039", "no label", "no body in any frame"):
        assert f"skipped 1 clips: {text}" in stdout
    assert "2 dropped at clip ends, 1 interpolated" in stdout and "1 frames listed several bodies" in stdout
    assert "kcal/h: min 200.5" in stdout


def test_per_camera_pickle_labels_override(tmp_path, dataset, read_h5):
    labels = tmp_path / "labels.pkl"
    with labels.open("wb") as f:
        pickle.dump(
            {
                "S001001R001A001": 200.0,
                "/data/S001C002P001R001A001.skeleton.npy": 222.0,
                "S001C001P003R001A035": 250.0,
                "S001018R002A010": np.float64(300.0),
            },
            f,
        )
    out = tmp_path / "out.h5"
    assert main(["--skeletons", str(dataset["dir"]), "--labels", str(labels), "--output", str(out)]) == 0
    np.testing.assert_allclose(read_h5(out)["sequences"]["kcal"], [200.0, 250.0, 300.0, 222.0])


def test_split_file(tmp_path, dataset, read_h5, capsys):
    split = tmp_path / "split.txt"
    split.write_text("# performers\nP001 val\nP003 train\nS001C001P001R001A001 test\n")
    assert main(_args(dataset, tmp_path / "out.h5", "--split-file", str(split))) == 0
    seq = read_h5(tmp_path / "out.h5")["sequences"]
    # clip line beats its performer line; P003's only clip is an unknown activity (A035): test only
    assert seq["split"] == ["test", "test", "val"]
    assert seq["subject"] == ["P001", "P003", "P001"]
    out = capsys.readouterr().out
    assert "skipped 2 clips: not in the split file" in out  # P018, P004
    assert "1 clips of unknown activities (A034-A039) put in test, not in their performer's split" in out
    # a clip line of its own is applied as written (e.g. to reproduce a published split), with a note
    split.write_text("P001 val\nS001C001P003R001A035 train\nS001C001P001R001A001 test\n")
    assert main(_args(dataset, tmp_path / "out2.h5", "--split-file", str(split))) == 0
    assert read_h5(tmp_path / "out2.h5")["sequences"]["split"] == ["test", "train", "val"]
    out = capsys.readouterr().out
    assert "1 clips of unknown activities put in train/val by clip lines" in out
    assert "no clip is in the test split" not in out
    split.write_text("P001 val\nP003 val\n")  # the unknown clip still goes to test: never empty here
    assert main(_args(dataset, tmp_path / "out3.h5", "--split-file", str(split))) == 0
    split.write_text("P001 val\n")
    assert main(_args(dataset, tmp_path / "out4.h5", "--split-file", str(split))) == 0
    assert "note: no clip is in the test split" in capsys.readouterr().out


def test_deterministic(tmp_path, dataset, same_files):
    assert main(_args(dataset, tmp_path / "a.h5")) == 0
    assert main(_args(dataset, tmp_path / "b.h5")) == 0
    same_files(tmp_path / "a.h5", tmp_path / "b.h5")


def _bad(tmp_path: Path, dataset: dict, capsys, *extra: str) -> str:
    assert main(_args(dataset, tmp_path / "out.h5", *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "out.h5").exists()
    return err


def test_truncated_skeleton_file(tmp_path, dataset, capsys):
    path = dataset["dir"] / "S001C002P001R001A001.skeleton"
    path.write_text("\n".join(path.read_text().splitlines()[:-10]) + "\n")
    err = _bad(tmp_path, dataset, capsys)
    assert "S001C002P001R001A001.skeleton" in err and "truncated" in err and "frame 2" in err


def test_wrong_joint_count(tmp_path, dataset, capsys):
    write_skeleton(dataset["dir"] / "S001C002P001R001A001.skeleton", [[body(0)[:24]]], joints=24)
    err = _bad(tmp_path, dataset, capsys)
    assert "S001C002P001R001A001.skeleton" in err and "expected 25 joints, got 24" in err


def test_bad_label_key(tmp_path, dataset, capsys):
    dataset["labels"].write_text("File_name,Calorie_label\nS001001R001A001,200\nwalking,250\n")
    err = _bad(tmp_path, dataset, capsys)
    assert "labels.csv: line 3" in err and "'walking'" in err


def test_bad_split_line(tmp_path, dataset, capsys):
    split = tmp_path / "split.txt"
    split.write_text("P001 training\n")
    err = _bad(tmp_path, dataset, capsys, "--split-file", str(split))
    assert "split.txt: line 1" in err


def test_badly_named_skeleton_file(tmp_path, dataset, capsys):
    write_skeleton(dataset["dir"] / "clip01.skeleton", [[body(0)]])
    assert "clip01.skeleton" in _bad(tmp_path, dataset, capsys)


def test_duplicate_clip_in_subfolder(tmp_path, dataset, capsys):
    (dataset["dir"] / "more").mkdir()
    write_skeleton(dataset["dir"] / "more" / "S001C002P001R001A001.skeleton", [[body(0)]])
    assert "S001C002P001R001A001 found twice" in _bad(tmp_path, dataset, capsys)


def test_label_file_with_a_byte_order_mark(tmp_path, dataset, read_h5):
    text = dataset["labels"].read_text()
    dataset["labels"].write_text("\ufeff" + text.split("\n", 1)[1], encoding="utf-8")  # BOM, no header
    assert main(_args(dataset, tmp_path / "out.h5")) == 0
    np.testing.assert_allclose(read_h5(tmp_path / "out.h5")["sequences"]["kcal"][0], 200.5)
