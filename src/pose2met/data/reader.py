"""Reading Pose2Met HDF5 files: schema validation on open, lazy per-process h5py handles.

The index (``/sequences`` arrays, cameras, root attributes) is read once and kept in memory; the
frame arrays stay on disk and are read as contiguous slices. The h5py handle is opened on first
access in each process (DataLoader worker) and never pickled, so a :class:`Pose2MetFile` can be
handed to workers (fork or spawn) safely.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pose2met.checks import is_positive_number
from pose2met.data.h5format import (
    ACTIVITY_SETS,
    CAMERA_KEYS,
    FORMAT_NAME,
    FORMAT_VERSION,
    FRAME_ARRAYS,
    SEQUENCE_ARRAYS,
    SPLITS,
    ArraySpec,
    SchemaError,
    sequence_span_problem,
    value_problem,
)
from pose2met.skeleton import JOINT_NAMES

#: Frame arrays whose values are checked for NaN/inf whenever a slice of them is served.
CHECKED_FRAME_ARRAYS = ("joints_2d", "confidence", "joints_3d", "factor_2_5d", "joints_2d_gt")


@dataclass(frozen=True)
class Camera:
    """Intrinsics and image size of one camera (``/cameras/<id>`` attributes)."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: float
    height: float


def _decode(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray) and value.dtype.kind in "OS":
        return [_decode(v) for v in value.tolist()]
    return value


def _kind_ok(dtype: np.dtype, spec: ArraySpec) -> bool:
    if spec.kind == "S":
        return h5py.check_string_dtype(dtype) is not None
    if spec.kind == "i":
        return dtype.kind in "iu"
    return dtype.kind == spec.kind


class Pose2MetFile:
    """A validated, lazily opened Pose2Met HDF5 file.

    Args:
        path: the ``.h5`` file.

    Raises:
        FileNotFoundError: the file does not exist.
        SchemaError: the file is not a readable Pose2Met file; the message names the file and key.

    Attributes:
        path: the file.
        attrs: root attributes (decoded to str / float / list).
        frame_arrays: names of the frame arrays present, e.g. ``("joints_2d", "confidence", ...)``.
        num_frames: ``N``, length of the frame arrays.
        sequences: ``{name: (S,) array}``, the whole ``/sequences`` group (str arrays as object arrays).
        cameras: ``{camera_id: Camera}``.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise SchemaError(self.path, "/", "is a folder; expected a Pose2Met .h5 file")
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such Pose2Met file")
        try:
            handle = h5py.File(self.path, "r")
        except OSError as err:
            raise SchemaError(self.path, "/", f"cannot be opened as an HDF5 file ({err})") from None
        with handle:
            self._load_index(handle)
        self._handle: h5py.File | None = None
        self._pid: int | None = None
        self._dsets: dict[str, h5py.Dataset] = {}

    # ----------------------------------------------------------------- index
    def _load_index(self, f: h5py.File) -> None:
        attrs = {k: _decode(v) for k, v in f.attrs.items()}
        if attrs.get("format") != FORMAT_NAME:
            raise SchemaError(
                self.path, "attrs/format", f"not a {FORMAT_NAME} file (format={attrs.get('format')!r})"
            )
        version = attrs.get("version")
        if not isinstance(version, (int, np.integer)) or not 1 <= int(version) <= FORMAT_VERSION:
            raise SchemaError(
                self.path, "attrs/version", f"unsupported version {version!r}; this reader reads 1"
            )
        if attrs.get("skeleton") != "h36m17":
            raise SchemaError(
                self.path, "attrs/skeleton", f"expected 'h36m17', got {attrs.get('skeleton')!r}"
            )
        names = attrs.get("joint_names")
        if names is None or np.ndim(names) != 1 or tuple(str(n) for n in names) != JOINT_NAMES:
            raise SchemaError(
                self.path, "attrs/joint_names", f"expected the h36m17 joints {list(JOINT_NAMES)}"
            )
        fps = attrs.get("fps")
        if not isinstance(fps, (float, int, np.number)) or not is_positive_number(fps):
            raise SchemaError(self.path, "attrs/fps", f"expected a positive, finite frame rate, got {fps!r}")
        self.attrs = attrs
        for group in ("frames", "sequences", "cameras"):
            if not isinstance(f.get(group), h5py.Group):
                raise SchemaError(self.path, f"/{group}", "required group is missing")
        self._load_frames(f["frames"])
        self._load_sequences(f["sequences"])
        self._load_cameras(f["cameras"])

    def _check_group(self, group: h5py.Group, specs: dict[str, ArraySpec]) -> None:
        name = group.name
        for key in group:
            if key not in specs:
                raise SchemaError(
                    self.path, f"{name}/{key}", f"unknown array; expected one of {sorted(specs)}"
                )
        for key, spec in specs.items():
            if key not in group:
                if spec.required:
                    raise SchemaError(self.path, f"{name}/{key}", "required array is missing")
                continue
            ds = group[key]
            if not isinstance(ds, h5py.Dataset):
                raise SchemaError(self.path, f"{name}/{key}", "expected a dataset, found a group")
            if ds.ndim != 1 + len(spec.trailing_shape) or ds.shape[1:] != spec.trailing_shape:
                raise SchemaError(
                    self.path, f"{name}/{key}", f"expected shape (n, {spec.trailing_shape}), got {ds.shape}"
                )
            if not _kind_ok(ds.dtype, spec):
                raise SchemaError(
                    self.path, f"{name}/{key}", f"dtype {ds.dtype} does not match kind '{spec.kind}'"
                )

    def _load_frames(self, g: h5py.Group) -> None:
        self._check_group(g, FRAME_ARRAYS)
        self.num_frames = int(g["joints_2d"].shape[0])
        for key in g:
            if g[key].shape[0] != self.num_frames:
                raise SchemaError(
                    self.path,
                    f"/frames/{key}",
                    f"has {g[key].shape[0]} frames, /frames/joints_2d {self.num_frames}",
                )
        self.frame_arrays: tuple[str, ...] = tuple(k for k in FRAME_ARRAYS if k in g)

    def _load_sequences(self, g: h5py.Group) -> None:
        self._check_group(g, SEQUENCE_ARRAYS)
        seq: dict[str, np.ndarray] = {}
        for key in g:
            ds = g[key]
            if SEQUENCE_ARRAYS[key].kind == "S":
                seq[key] = np.asarray(ds.asstr()[()], dtype=object)
            else:
                seq[key] = np.asarray(ds[()])
        n_seq = len(seq["start"])
        for key, arr in seq.items():
            if len(arr) != n_seq:
                raise SchemaError(
                    self.path, f"/sequences/{key}", f"has {len(arr)} entries, /sequences/start has {n_seq}"
                )
        seq["start"] = seq["start"].astype(np.int64)
        seq["length"] = seq["length"].astype(np.int64)
        span = sequence_span_problem(seq["start"], seq["length"], self.num_frames)
        if span:
            raise SchemaError(self.path, *span)
        for key, allowed in (("split", SPLITS), ("activity_set", ACTIVITY_SETS)):
            if key in seq:
                unknown = sorted(set(seq[key]) - set(allowed))
                if unknown:
                    raise SchemaError(self.path, f"/sequences/{key}", f"values {unknown} not in {allowed}")
        if "kcal" in seq and not np.isfinite(seq["kcal"]).all():
            i = int(np.argmax(~np.isfinite(seq["kcal"])))
            raise SchemaError(self.path, "/sequences/kcal", f"non-finite label for sequence {i}")
        self.sequences = seq

    def _load_cameras(self, g: h5py.Group) -> None:
        cameras: dict[str, Camera] = {}
        for cam in sorted(set(self.sequences["camera"])):
            if cam not in g:
                raise SchemaError(self.path, f"/cameras/{cam}", "camera used by /sequences/camera is missing")
            params = g[cam].attrs
            lacking = [k for k in CAMERA_KEYS if k not in params]
            if lacking:
                raise SchemaError(self.path, f"/cameras/{cam}", f"missing attributes {lacking}")
            values = {k: float(np.asarray(params[k])) for k in CAMERA_KEYS}
            if not (is_positive_number(values["width"]) and is_positive_number(values["height"])):
                raise SchemaError(self.path, f"/cameras/{cam}", f"image size must be positive, got {values}")
            cameras[cam] = Camera(**values)
        self.cameras = cameras

    # ------------------------------------------------------------ properties
    @property
    def num_sequences(self) -> int:
        return len(self.sequences["start"])

    @property
    def num_joints(self) -> int:
        return len(JOINT_NAMES)

    @property
    def fps(self) -> float:
        return float(self.attrs["fps"])

    @property
    def dataset(self) -> str:
        return str(self.attrs.get("dataset", ""))

    @property
    def has_3d(self) -> bool:
        return "joints_3d" in self.frame_arrays

    @property
    def has_kcal(self) -> bool:
        return "kcal" in self.sequences

    def has(self, frame_array: str) -> bool:
        """Whether the optional frame array ``frame_array`` (e.g. ``"joints_2d_gt"``) is present."""
        return frame_array in self.frame_arrays

    def split_indices(self, split: str) -> np.ndarray:
        """Indices ``(S_split,)`` int64 of the sequences of ``split``, in file order."""
        if split not in SPLITS:
            raise SchemaError(
                self.path, "/sequences/split", f"unknown split '{split}'; expected one of {SPLITS}"
            )
        return np.flatnonzero(self.sequences["split"] == split).astype(np.int64)

    def check_sequence(self, index: int) -> int:
        """Return ``index`` as int, or raise :class:`SchemaError` if it is outside ``0..S-1``."""
        if not 0 <= int(index) < self.num_sequences:
            raise SchemaError(
                self.path,
                "/sequences",
                f"sequence index {index} out of bounds (file has {self.num_sequences})",
            )
        return int(index)

    def image_sizes(self) -> np.ndarray:
        """Per-sequence image size ``(S, 2)`` float64: width, height of the sequence's camera."""
        return np.array([[self.cameras[c].width, self.cameras[c].height] for c in self.sequences["camera"]])

    # ----------------------------------------------------------------- frames
    def _datasets(self) -> dict[str, h5py.Dataset]:
        pid = os.getpid()
        if self._handle is None or self._pid != pid:
            # A handle inherited through fork is never used: each process opens its own.
            self._handle = h5py.File(self.path, "r")
            self._pid = pid
            self._dsets = {k: self._handle["frames"][k] for k in self.frame_arrays}
        return self._dsets

    def read_sequence(self, index: int, start: int, stop: int, keys: Iterable[str]) -> dict[str, np.ndarray]:
        """Frames ``[start, stop)`` of sequence ``index`` (positions within the sequence).

        One contiguous slice read per array. Values of the pose arrays are checked: NaN/inf raises
        :class:`SchemaError` naming the file, the key and the sequence.

        Returns:
            ``{key: (stop - start, ...) array}`` for each requested frame array.
        """
        index = self.check_sequence(index)
        length = int(self.sequences["length"][index])
        if not 0 <= start < stop <= length:
            raise IndexError(
                f"{self.path}: frames [{start}, {stop}) outside sequence {index} of length {length}"
            )
        offset = int(self.sequences["start"][index])
        datasets = self._datasets()
        out: dict[str, np.ndarray] = {}
        for key in keys:
            if key not in self.frame_arrays:
                raise SchemaError(self.path, f"/frames/{key}", "array is not in this file")
            arr = datasets[key][offset + start : offset + stop]
            # a confidence above 1 (files of older converters) is harmless; NaN and a 2.5D factor <= 0
            # would give NaN/inf model inputs or targets
            problem = value_problem(key, arr, confidence_range=False) if key in CHECKED_FRAME_ARRAYS else None
            if problem is not None:
                bad, expected = problem
                raise SchemaError(
                    self.path,
                    f"/frames/{key}",
                    f"expected {expected}; violated in sequence {index} (frame {start + bad} of the "
                    f"sequence, file frame {offset + start + bad})",
                )
            out[key] = arr
        return out

    def read_whole(self, key: str) -> np.ndarray:
        """The whole frame array ``key`` ``(N, ...)``, read through a temporary handle (closed after)."""
        if key not in self.frame_arrays:
            raise SchemaError(self.path, f"/frames/{key}", "array is not in this file")
        with h5py.File(self.path, "r") as f:
            return f["frames"][key][()]

    def close(self) -> None:
        """Close this process's handle (it reopens on the next read)."""
        if self._handle is not None and self._pid == os.getpid():
            self._handle.close()
        self._handle = self._pid = None
        self._dsets = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_handle"] = None
        state["_pid"] = None
        state["_dsets"] = {}
        return state

    def __repr__(self) -> str:
        return (
            f"Pose2MetFile('{self.path}', dataset={self.dataset!r}, sequences={self.num_sequences}, "
            f"frames={self.num_frames}, arrays={list(self.frame_arrays)})"
        )
