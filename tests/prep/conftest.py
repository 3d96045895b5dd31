"""Helpers for the converter tests: read a written Pose2Met file back into plain Python objects."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest


def _read(path: Path) -> dict:
    out: dict = {"frames": {}, "sequences": {}, "cameras": {}}
    with h5py.File(path, "r") as f:
        out["attrs"] = dict(f.attrs)
        for k, d in f["frames"].items():
            out["frames"][k] = d[()]
        for k, d in f["sequences"].items():
            v = d[()]
            out["sequences"][k] = [x.decode() for x in v] if v.dtype.kind == "O" else v
        for cam, g in f["cameras"].items():
            out["cameras"][cam] = {k: float(v) for k, v in g.attrs.items()}
    return out


@pytest.fixture
def read_h5():
    """``read_h5(path) -> {"attrs", "frames", "sequences", "cameras"}`` with numpy arrays / lists of str."""
    return _read


@pytest.fixture
def same_files():
    """``same_files(a, b)``: assert two written files hold identical arrays, labels and attributes."""

    def check(a: Path, b: Path) -> None:
        ra, rb = _read(a), _read(b)
        for group in ("frames", "sequences"):
            assert ra[group].keys() == rb[group].keys()
            for k in ra[group]:
                np.testing.assert_array_equal(np.asarray(ra[group][k]), np.asarray(rb[group][k]))
        assert ra["cameras"].keys() == rb["cameras"].keys()
        for cam in ra["cameras"]:
            np.testing.assert_array_equal(
                list(ra["cameras"][cam].values()), list(rb["cameras"][cam].values())
            )
        assert ra["attrs"].keys() == rb["attrs"].keys()

    return check
