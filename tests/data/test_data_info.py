"""``pose2met data info``: the summary of a file, and exit code 2 without a traceback on bad files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from pose2met.data.info import main


def test_summary_of_a_tiny_file(tiny_file: Callable[..., Path], capsys: pytest.CaptureFixture[str]) -> None:
    valid = np.ones(74, dtype=bool)
    path = tiny_file(splits=("train", "train", "val", "test"), valid=valid)
    assert main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "dataset:    tiny" in out
    assert "pose2met version 1, skeleton h36m17, 50 fps" in out
    assert "sequences:  4" in out
    assert "frames:     74 (in sequences: 74; length min/mean/max 7/18.5/30)" in out
    assert "subjects:   3 (S0, S1, S2)" in out
    assert "c0 (1000x1002, f=1000), c1 (1920x1080, f=1500)" in out
    # per split: sequences and frames (30 + 12 train, 25 val, 7 test)
    assert "train        2 sequences         42 frames" in out
    assert "val          1 sequences         25 frames" in out
    assert "test         1 sequences          7 frames" in out
    # kcal labels 100, 110, 120, 130
    assert "kcal/h:     min 100.0  mean 115.0  max 130.0" in out
    assert "known    2 sequences" in out and "unknown  2 sequences" in out
    assert "present: /frames/joints_3d, /frames/factor_2_5d, /frames/joints_2d_gt, /frames/valid" in out
    assert "absent:  /sequences/name" in out


def test_bad_files_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "missing.h5")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "missing.h5" in err and "Traceback" not in err
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"\x00" * 64)
    assert main([str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.h5: key '/': cannot be opened as an HDF5 file" in err and "Traceback" not in err
    assert main([]) == 2  # usage error from argparse
