"""write_dataset: values that break the schema are refused with the key, and nothing is written."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from data_tiny_files import CAMERAS, frame_values

from pose2met.data.h5format import SchemaError, write_dataset


def _arrays(n: int = 10) -> tuple[dict[str, object], dict[str, object]]:
    frames: dict[str, object] = {k: v for k, v in frame_values(n).items() if k != "valid"}
    sequences: dict[str, object] = {
        "start": [0, 4], "length": [4, n - 4], "subject": ["S1", "S1"], "action": ["a", "b"],
        "camera": ["c0", "c1"], "split": ["train", "test"],
    }  # fmt: skip
    return frames, sequences


def _write(path: Path, frames: dict, sequences: dict, **kwargs: object) -> Path:
    options: dict = {"cameras": CAMERAS, "dataset": "t", "fps": 50.0, **kwargs}
    return write_dataset(path, frames=frames, sequences=sequences, **options)


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("confidence", 1.5, "values in 0..1 (first violation at index 6)"),
        ("confidence", -0.1, "values in 0..1"),
        ("factor_2_5d", 0.0, "finite positive values"),
        ("factor_2_5d", -2.0, "finite positive values"),
        ("joints_3d", np.inf, "finite values"),
    ],
)
def test_out_of_range_frame_values(tmp_path: Path, key: str, value: float, problem: str) -> None:
    frames, sequences = _arrays()
    frames[key] = np.array(frames[key])  # type: ignore[arg-type]
    frames[key][6] = value  # type: ignore[index]
    with pytest.raises(SchemaError, match=re.escape(f"key '/frames/{key}': expected {problem}")):
        _write(tmp_path / "x.h5", frames, sequences)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("fps", [0.0, float("nan"), float("inf"), "fast"])
def test_frame_rate_must_be_positive_and_finite(tmp_path: Path, fps: object) -> None:
    with pytest.raises(SchemaError, match="key 'attrs/fps': expected a positive, finite frame rate"):
        _write(tmp_path / "x.h5", *_arrays(), fps=fps)


@pytest.mark.parametrize("width", [0.0, float("nan"), -640.0])
def test_camera_size_must_be_positive(tmp_path: Path, width: float) -> None:
    cameras = {**CAMERAS, "c1": {**CAMERAS["c1"], "width": width}}
    with pytest.raises(SchemaError, match="key '/cameras/c1': image width and height must be positive"):
        _write(tmp_path / "x.h5", *_arrays(), cameras=cameras)


def test_empty_and_ragged_inputs(tmp_path: Path) -> None:
    frames, sequences = _arrays()
    empty = {k: [] for k in sequences}
    with pytest.raises(
        SchemaError, match=r"key '/sequences': no frames or no sequences to write \(10 frames, 0"
    ):
        _write(tmp_path / "x.h5", frames, empty)
    ragged = dict(frames, joints_2d=[np.zeros((17, 2)), np.zeros((16, 2))])
    with pytest.raises(SchemaError, match="key '/frames/joints_2d': expected a numeric array with one shape"):
        _write(tmp_path / "x.h5", ragged, sequences)
    words = dict(frames, confidence=np.full((10, 17), "high"))
    with pytest.raises(SchemaError, match="key '/frames/confidence': expected numbers"):
        _write(tmp_path / "x.h5", words, sequences)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("start", "length", "key", "problem"),
    [
        ([0, 4], [4, 0], "/sequences/length", "sequence 1 has 0 frames; every sequence needs at least 1"),
        ([0, 4], [4, 7], "/sequences/start", "sequence 1 covers frames [4, 11), outside the 10 frames"),
        ([-1, 4], [4, 6], "/sequences/start", "sequence 0 covers frames [-1, 3), outside the 10 frames"),
    ],
)
def test_sequence_spans_must_be_non_empty_and_inside_the_frames(
    tmp_path: Path, start: list[int], length: list[int], key: str, problem: str
) -> None:
    frames, sequences = _arrays()
    with pytest.raises(SchemaError, match=re.escape(f"key '{key}': {problem}")):
        _write(tmp_path / "x.h5", frames, dict(sequences, start=start, length=length))
    assert not list(tmp_path.iterdir())
