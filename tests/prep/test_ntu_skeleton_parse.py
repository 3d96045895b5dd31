"""NTU ``.skeleton`` parser, clip names, Vid2Burn label keys and the default split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pose2met.data.prep.common import PrepError
from pose2met.data.prep.ntu_skeleton import ClipId, read_skeleton, to_h36m
from pose2met.data.prep.vid2burn_labels import (
    Labels,
    _add,
    activity_set,
    default_split,
    load_labels,
    normalize_label_key,
)


def joint_line(j: int, state: int = 2) -> str:
    return f"{j * 0.1:.1f} {-j * 0.1:.1f} 2.5 256 212 {500 + j} {300 + j} 1 0 0 0 {state}"


def body_lines(states: dict[int, int] | None = None) -> list[str]:
    states = states or {}
    return ["72057594037931101 0 1 1 1 1 0 0.01 -0.25 2", "25"] + [
        joint_line(j, states.get(j, 2)) for j in range(25)
    ]


def write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "S001C001P001R001A001.skeleton"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_reads_first_body_of_each_frame(tmp_path):
    second = [ln.replace("2.5 256", "9.5 256") for ln in body_lines()]
    lines = ["3", "2", *body_lines({7: 1}), *second, "0", "1", *body_lines({0: 0})]
    clip = read_skeleton(write(tmp_path, lines))
    np.testing.assert_array_equal(clip.bodies, [2, 0, 1])
    assert clip.xyz[0, 7].tolist() == pytest.approx([0.7, -0.7, 2.5])  # first body, not the z = 9.5 one
    assert clip.color[2, 24].tolist() == [524.0, 324.0]
    assert clip.state[0, 7] == 1 and clip.state[2, 0] == 0 and clip.state[2, 1] == 2
    assert np.isnan(clip.xyz[1]).all()
    frames = to_h36m(clip)
    assert frames is not None and frames.interpolated == 1 and frames.multi_body == 1
    np.testing.assert_allclose(frames.joints_3d[0, 0], [0.0, 0.0, 2500.0])  # pelvis = SpineBase (NTU 0)
    np.testing.assert_allclose(frames.joints_3d[0, 8], [2000.0, 2000.0, 2500.0])  # thorax = NTU 20, y flipped


def test_no_body_anywhere(tmp_path):
    assert to_h36m(read_skeleton(write(tmp_path, ["2", "0", "0"]))) is None


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["2", "1", *body_lines()], "truncated"),
        (["x"], "line 1: expected the frame count"),
        (["1", "1", *body_lines()[:-1], "1 2 3"], "line 29: expected 12 values"),
        (["1", "1", "1 2 3", "25"], "line 3: expected 10 values"),
        (
            ["1", "1", *body_lines()[:2], joint_line(0).replace("2.5", "abc"), *body_lines()[3:]],
            "non-numeric",
        ),
        (
            ["1", "1", *body_lines()[:2], joint_line(0).replace("2.5", "nan"), *body_lines()[3:]],
            "line 5: non-finite",
        ),
        (["1", "1", *body_lines({4: 3})], "line 9: trackingState"),
        (["1", "1", *body_lines(), "0"], "line 30: unexpected content"),
    ],
)
def test_malformed_files(tmp_path, lines, message):
    with pytest.raises(PrepError, match=message) as info:
        read_skeleton(write(tmp_path, lines))
    assert "S001C001P001R001A001.skeleton" in str(info.value)


def test_clip_ids_and_label_keys():
    clip = ClipId.parse("/x/S017C003P020R002A060.skeleton")
    assert clip == ClipId(17, 3, 20, 2, 60)
    assert clip.name == "S017C003P020R002A060" and clip.unified_name == "S017020R002A060"
    assert normalize_label_key("S003007R002A006") == "S003007R002A006"
    assert normalize_label_key("a/b/S003C001P007R002A006.skeleton.npy") == "S003C001P007R002A006"
    assert normalize_label_key("File_name") is None


def test_label_lookup_and_conflicts(tmp_path):
    labels = Labels()
    _add(labels, "S001001R001A001", 200, "t")
    _add(labels, "S001C002P001R001A001", 210, "t")
    assert labels.lookup(ClipId(1, 1, 1, 1, 1)) == 200 and labels.lookup(ClipId(1, 2, 1, 1, 1)) == 210
    assert labels.lookup(ClipId(1, 1, 2, 1, 1)) is None
    with pytest.raises(PrepError, match="two different labels"):
        _add(labels, "S001001R001A001", 201, "t")
    with pytest.raises(PrepError, match="positive"):
        _add(labels, "S001001R001A002", -3, "t")
    csv = tmp_path / "l.csv"
    csv.write_text("S001001R001A001,200\nS001001R001A002,x\n")
    with pytest.raises(PrepError, match="l.csv: line 2"):
        load_labels(csv)


def test_activity_sets_and_default_split():
    assert [activity_set(a) for a in (1, 33, 34, 39, 40)] == ["known", "known", "unknown", "unknown", None]
    assert default_split(ClipId(1, 1, 1, 1, 1)) == "train"  # NTU cross-subject training performer
    assert default_split(ClipId(1, 1, 3, 1, 1)) == "test"  # NTU cross-subject test performer
    assert default_split(ClipId(1, 1, 18, 1, 1)) == "val"  # held-out training performer
    assert default_split(ClipId(1, 1, 1, 1, 35)) == "test"  # unknown activities are test only


def test_absurd_frame_count_is_a_truncation_not_an_allocation(tmp_path):
    with pytest.raises(PrepError, match="truncated: 999999999999 frames announced, 28 lines follow"):
        read_skeleton(write(tmp_path, ["999999999999", "1", *body_lines()]))
