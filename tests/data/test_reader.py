"""Pose2MetFile: schema validation errors name file and key; lazy, fork- and pickle-safe reads."""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
from data_tiny_files import frame_values

from pose2met.data.datamodule import Pose2MetDataModule
from pose2met.data.h5format import SchemaError
from pose2met.data.reader import Pose2MetFile


def _edit(path: Path, edit: Callable[[h5py.File], None]) -> Path:
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


def test_index_and_slices_match_the_written_values(tiny_file: Callable[..., Path]) -> None:
    f = Pose2MetFile(tiny_file())
    assert (f.num_sequences, f.num_frames, f.fps, f.dataset) == (4, 74, 50.0, "tiny")
    assert f.has_3d and f.has_kcal and f.has("joints_2d_gt") and not f.has("valid")
    np.testing.assert_array_equal(f.split_indices("test"), [2, 3])
    np.testing.assert_array_equal(f.image_sizes(), [[1000, 1002], [1920, 1080], [1000, 1002], [1920, 1080]])
    # sequence 1 starts at frame 30: positions [2, 5) are file frames 32..34
    got = f.read_sequence(1, 2, 5, ["joints_2d", "joints_3d"])
    ref = frame_values(74)
    np.testing.assert_array_equal(got["joints_2d"], ref["joints_2d"][32:35])
    np.testing.assert_array_equal(got["joints_3d"], ref["joints_3d"][32:35])
    assert f._handle is not None


def test_open_does_not_keep_a_handle(tiny_file: Callable[..., Path]) -> None:
    f = Pose2MetFile(tiny_file())
    assert f._handle is None  # validated through a handle that was closed again


def _set_attr(name: str, value: object) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        f.attrs[name] = value

    return edit


def _delete(key: str) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        del f[key]

    return edit


def _replace(key: str, shape: tuple[int, ...]) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        if key in f:
            del f[key]
        f.create_dataset(key, shape, "f4")

    return edit


def _set_value(key: str, index: int, value: object) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        f[key][index] = value

    return edit


def _delete_camera_attr(f: h5py.File) -> None:
    del f["cameras/c0"].attrs["width"]


def _set_camera_width(width: float) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        f["cameras/c0"].attrs["width"] = width

    return edit


@pytest.mark.parametrize(
    ("edit", "key", "problem"),
    [
        (_set_attr("format", "other"), "attrs/format", "not a pose2met file"),
        (_set_attr("skeleton", "coco"), "attrs/skeleton", "expected 'h36m17'"),
        (_set_attr("joint_names", ["a"] * 17), "attrs/joint_names", "h36m17 joints"),
        (_set_attr("version", 99), "attrs/version", "unsupported version"),
        (_delete("frames/confidence"), "/frames/confidence", "required array is missing"),
        (_delete("sequences/split"), "/sequences/split", "required array is missing"),
        (_delete("frames"), "/frames", "required group is missing"),
        (_replace("frames/joints_3d", (74, 16, 3)), "/frames/joints_3d", "expected shape"),
        (_replace("frames/factor_2_5d", (70,)), "/frames/factor_2_5d", "has 70 frames"),
        (_replace("frames/extra", (74,)), "/frames/extra", "unknown array"),
        (_set_value("sequences/length", 0, 75), "/sequences/start", "sequence 0 covers frames [0, 75)"),
        (
            _set_value("sequences/length", 1, 0),
            "/sequences/length",
            "sequence 1 has 0 frames; every sequence",
        ),
        (_set_value("sequences/start", 2, -3), "/sequences/start", "sequence 2 covers frames [-3, "),
        (_set_value("sequences/split", 1, "holdout"), "/sequences/split", "['holdout'] not in"),
        (_delete("cameras/c1"), "/cameras/c1", "camera used by /sequences/camera is missing"),
        (_delete_camera_attr, "/cameras/c0", "missing attributes ['width']"),
        (_set_camera_width(float("nan")), "/cameras/c0", "image size must be positive"),
        (_set_attr("fps", float("inf")), "attrs/fps", "expected a positive, finite frame rate"),
    ],
)
def test_schema_violations_name_file_and_key(
    tiny_file: Callable[..., Path], edit: Callable[[h5py.File], object], key: str, problem: str
) -> None:
    path = _edit(tiny_file(), edit)
    with pytest.raises(SchemaError) as err:
        Pose2MetFile(path)
    message = str(err.value)
    assert str(path) in message and f"key '{key}'" in message and problem in message, message
    assert err.value.key == key


def test_missing_and_non_hdf5_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        Pose2MetFile(tmp_path / "nope.h5")
    with pytest.raises(SchemaError, match=r"key '/': is a folder; expected a Pose2Met \.h5 file"):
        Pose2MetFile(tmp_path)
    with pytest.raises(ValueError, match=r"is a folder; expected a Pose2Met \.h5 file \(data\.path\)"):
        Pose2MetDataModule(path=str(tmp_path))
    odd = tmp_path / "odd.h5"
    with h5py.File(odd, "w") as f:  # a file claiming the format, with a number for joint names
        f.attrs.update(format="pose2met", version=1, skeleton="h36m17", joint_names=3)
    with pytest.raises(SchemaError, match="key 'attrs/joint_names': expected the h36m17 joints"):
        Pose2MetFile(odd)
    text = tmp_path / "text.h5"
    text.write_text("not hdf5")
    with pytest.raises(SchemaError, match=r"text\.h5: key '/': cannot be opened as an HDF5 file"):
        Pose2MetFile(text)


def test_sequence_index_and_split_errors(tiny_file: Callable[..., Path]) -> None:
    f = Pose2MetFile(tiny_file())
    with pytest.raises(SchemaError, match=r"key '/sequences': sequence index 4 out of bounds \(file has 4\)"):
        f.read_sequence(4, 0, 1, ["joints_2d"])
    with pytest.raises(SchemaError, match=r"key '/sequences': sequence index -1 out of bounds"):
        f.read_sequence(-1, 0, 1, ["joints_2d"])
    with pytest.raises(SchemaError, match="unknown split 'dev'"):
        f.split_indices("dev")
    with pytest.raises(IndexError, match="frames \\[5, 13\\) outside sequence 1 of length 12"):
        f.read_sequence(1, 5, 13, ["joints_2d"])
    with pytest.raises(SchemaError, match="key '/frames/valid': array is not in this file"):
        f.read_sequence(1, 0, 2, ["valid"])


@pytest.mark.parametrize("key", ["joints_2d", "joints_3d", "joints_2d_gt"])
def test_non_finite_values_in_a_served_sequence(tiny_file: Callable[..., Path], key: str) -> None:
    # file frame 45 is position 3 of sequence 2 (which starts at frame 42)
    path = _edit(tiny_file(), lambda f: f[f"frames/{key}"].__setitem__((45, 4, 1), np.nan))
    f = Pose2MetFile(path)  # values are checked when served, not on open
    assert len(f.read_sequence(1, 0, 12, [key])[key]) == 12  # another sequence is fine
    with pytest.raises(SchemaError) as err:
        f.read_sequence(2, 0, 10, [key])
    message = str(err.value)
    assert str(path) in message and f"'/frames/{key}'" in message and "sequence 2" in message, message
    assert "frame 3 of the sequence, file frame 45" in message


def test_out_of_range_values_in_a_served_sequence(tiny_file: Callable[..., Path]) -> None:
    # a file written by another tool: the 2.5D target would divide by 0
    path = _edit(tiny_file(), lambda f: f["frames/factor_2_5d"].__setitem__(45, 0.0))
    f = Pose2MetFile(path)
    assert len(f.read_sequence(1, 0, 12, ["factor_2_5d"])["factor_2_5d"]) == 12
    with pytest.raises(
        SchemaError, match="'/frames/factor_2_5d': expected finite positive values.*in sequence 2"
    ):
        f.read_sequence(2, 0, 10, ["factor_2_5d"])
    f.close()
    # a confidence above 1 (older converters did not clip every detector) is served as it is
    path = _edit(path, lambda f: f["frames/confidence"].__setitem__((45, 4), 1.5))
    assert Pose2MetFile(path).read_sequence(2, 3, 4, ["confidence"])["confidence"][0, 4] == 1.5


def test_pickle_drops_the_handle_and_reopens(tiny_file: Callable[..., Path]) -> None:
    f = Pose2MetFile(tiny_file())
    before = f.read_sequence(0, 0, 30, ["joints_2d", "confidence"])
    clone = pickle.loads(pickle.dumps(f))  # an open h5py handle cannot be pickled
    assert clone._handle is None
    after = clone.read_sequence(0, 0, 30, ["joints_2d", "confidence"])
    for key in before:
        np.testing.assert_array_equal(after[key], before[key])


def test_reopens_in_a_new_process_id(tiny_file: Callable[..., Path]) -> None:
    f = Pose2MetFile(tiny_file())
    f.read_sequence(0, 0, 2, ["joints_2d"])
    first = f._handle
    f._pid = os.getpid() + 1  # what a forked worker sees: the handle belongs to another process
    f.read_sequence(0, 0, 2, ["joints_2d"])
    assert f._handle is not first and f._pid == os.getpid()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_reads_with_its_own_handle(tiny_file: Callable[..., Path]) -> None:
    f = Pose2MetFile(tiny_file())
    f.read_sequence(0, 0, 2, ["joints_2d"])  # parent opens its handle first
    expected = frame_values(74)["joints_2d"][42:67]
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            got = f.read_sequence(2, 0, 25, ["joints_2d"])["joints_2d"]
            ok = f._pid == os.getpid() and np.array_equal(got, expected)
            os.write(write_end, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(write_end)
    answer = os.read(read_end, 1)
    os.waitpid(pid, 0)
    assert answer == b"1"
