"""Guards shared by the converters: the --output target, damaged .npz inputs, 3D units, seeds."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from test_h36m_motionbert_convert import TEST, TRAIN, _part, _write_pickle

from pose2met.data.prep.common import PrepError, load_npz
from pose2met.data.prep.h36m import main
from pose2met.data.synthmet.cli import MAX_SEED, build_parser


def _pickle(tmp_path: Path, scale: float = 1.0, factor: float | None = None) -> Path:
    data = {"train": _part(TRAIN, 0), "test": _part(TEST, 1)}
    for part in data.values():
        part["joints_2.5d_image"] = part["joints_2.5d_image"] * scale
        part["joint3d_image"] = part["joint3d_image"] * scale
        if factor is not None:
            part["2.5d_factor"][:] = factor
    return _write_pickle(tmp_path / "h36m.pkl", data)


def _one_line_error(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


@pytest.mark.parametrize("output", [".", "out/", ""])
def test_output_naming_a_folder_is_a_usage_error(
    output: str, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    pkl = _pickle(tmp_path)
    assert main(["--motionbert-pkl", str(pkl), "--output", output, "--overwrite"]) == 2
    assert f"argument --output: {output!r} names a folder; expected a file path" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h36m.pkl"]


def test_output_that_is_a_folder_or_an_input_is_refused_before_reading(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    pkl = _pickle(tmp_path)
    folder = tmp_path / "converted"
    folder.mkdir()
    assert main(["--motionbert-pkl", str(pkl), "--output", str(folder), "--overwrite"]) == 2
    assert _one_line_error(capsys) == (
        f"error: --output {folder}: is a folder; expected a file path such as {folder / 'name.h5'}"
    )
    before = pkl.read_bytes()
    for output in (pkl, tmp_path / "converted" / ".." / "h36m.pkl"):
        assert main(["--motionbert-pkl", str(pkl), "--output", str(output), "--overwrite"]) == 2
        assert _one_line_error(capsys) == (
            f"error: --output {output} is the input --motionbert-pkl {pkl}; "
            "write the converted file elsewhere"
        )
    assert pkl.read_bytes() == before  # the licensed source file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["converted", "h36m.pkl"]


@pytest.mark.parametrize("damage", ["truncated", "bad crc", "bad deflate"])
def test_damaged_npz_is_named(damage: str, tmp_path: Path) -> None:
    path = tmp_path / "data_3d_h36m.npz"
    values = np.arange(20000, dtype=np.float64)  # compressible, so deflate damage is in the stream
    if damage == "bad deflate":
        np.savez_compressed(path, positions_3d=values)
    else:
        np.savez(path, positions_3d=values)
    raw = bytearray(path.read_bytes())
    if damage == "truncated":
        raw = raw[: len(raw) // 2]
    else:  # flip bytes inside the member's data: past the local header, before the central directory
        with zipfile.ZipFile(path) as zf:
            info = zf.infolist()[0]
        start = info.header_offset + 30 + len(info.filename) + 200
        for i in range(start, start + 16):
            raw[i] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(
        PrepError, match=rf"{path.name}: not a readable \.npz archive \(.+\); expected the 3D"
    ):
        load_npz(path, "the 3D file")


@pytest.mark.parametrize("scale", [1000.0, 0.001])
def test_3d_joints_in_another_unit_are_refused(
    scale: float, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A factor of 1000 either way takes the median pelvis-thorax distance outside 20-20,000 mm."""
    joints = np.concatenate([_part(TRAIN, 0)["joints_2.5d_image"], _part(TEST, 1)["joints_2.5d_image"]])
    torso = np.median(np.linalg.norm(joints[:, 8] - joints[:, 0], axis=-1).astype(np.float64))
    assert 20 < torso < 20_000  # the unscaled fixture converts (test_h36m_motionbert_convert)
    pkl = _pickle(tmp_path, scale=scale)
    assert main(["--motionbert-pkl", str(pkl), "--output", str(tmp_path / "out.h5")]) == 2
    err = _one_line_error(capsys)
    assert f"the median pelvis-thorax distance is {torso * scale:.3g} mm, expected about 500 mm" in err
    assert "another unit" in err and not (tmp_path / "out.h5").exists()


@pytest.mark.parametrize("factor", [0.0, -2.0])
def test_non_positive_factor_names_the_input(
    factor: float, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    pkl = _pickle(tmp_path, factor=factor)
    assert main(["--motionbert-pkl", str(pkl), "--output", str(tmp_path / "out.h5")]) == 2
    assert _one_line_error(capsys) == (
        f"error: {pkl}: ['train']['2.5d_factor']: expected positive values (mm per pixel), "
        f"got {factor} at frame 0"
    )


@pytest.mark.parametrize("seed", ["-1", str(MAX_SEED + 1), "1.5"])
def test_synthmet_seed_outside_int64_is_a_usage_error(seed: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args(["--seed", seed, "--output", "x.h5"])
    assert stop.value.code == 2
    assert "argument --seed: expected an integer" in capsys.readouterr().err
    assert build_parser().parse_args(["--seed", str(MAX_SEED), "--output", "x.h5"]).seed == MAX_SEED


def test_first_label_row_with_a_clip_key_is_data_not_a_header(tmp_path: Path) -> None:
    from pose2met.data.prep.vid2burn_labels import load_labels

    header = tmp_path / "header.csv"
    header.write_text("File_name,Calorie_label\nS001001R001A001,300\n")
    assert len(load_labels(header)) == 1
    bad_first = tmp_path / "labels.csv"
    bad_first.write_text("S001001R001A001,n/a\nS001004R001A001,300\n")
    with pytest.raises(
        PrepError, match=r"labels\.csv: line 1: label of 'S001001R001A001' is 'n/a', expected a"
    ):
        load_labels(bad_first)
