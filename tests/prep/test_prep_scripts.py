"""The thin ``data_prep/*.py`` scripts: help text, exit codes, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "data_prep" / script), *args], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("script", ["h36m.py", "mpi_inf_3dhp.py", "vid2burn_adl.py"])
def test_help_mentions_output_and_pickle_warning(script):
    proc = run(script, "--help")
    assert proc.returncode == 0
    assert "--output" in proc.stdout and "--overwrite" in proc.stdout and "arbitrary code" in proc.stdout


def test_bad_input_exits_2_with_one_line(tmp_path):
    proc = run(
        "vid2burn_adl.py",
        "--skeletons",
        str(tmp_path / "missing"),
        "--labels",
        "x.csv",
        "--output",
        str(tmp_path / "o.h5"),
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1 and "missing" in proc.stderr


def test_existing_output_is_refused_before_reading(tmp_path):
    out = tmp_path / "o.h5"
    out.write_text("keep me")
    proc = run("mpi_inf_3dhp.py", "--test-npz", str(tmp_path / "absent.npz"), "--output", str(out))
    assert proc.returncode == 2 and "--overwrite" in proc.stderr
    assert out.read_text() == "keep me"


@pytest.mark.parametrize("content", ["npy", "text"])
def test_wrong_kind_of_npz_is_one_line(tmp_path, content):
    """An ``.npy`` array or a text file where an ``.npz`` archive is expected: exit 2, named file."""
    import numpy as np

    bad = tmp_path / "data_test_3dhp.npz"
    if content == "npy":
        with bad.open("wb") as f:
            np.save(f, np.zeros((4, 17, 3)))
    else:
        bad.write_text("not an archive\n")
    proc = run("mpi_inf_3dhp.py", "--test-npz", str(bad), "--output", str(tmp_path / "o.h5"))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"error: {bad}: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "expected data_test_3dhp.npz" in proc.stderr
    assert not (tmp_path / "o.h5").exists()


def test_output_under_a_file_names_the_flag(tmp_path):
    """An ``--output`` whose folder is a file: one line naming ``--output``, not a bare errno text."""
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    proc = run("synthmet.py", "--preset", "tiny", "--output", str(blocker / "x.h5"))
    assert proc.returncode == 2, proc.stderr
    expected = f"synthmet: error: --output {blocker / 'x.h5'}: cannot create it ({blocker} is not a folder)\n"
    assert proc.stderr == expected
    assert blocker.read_text() == "x"
