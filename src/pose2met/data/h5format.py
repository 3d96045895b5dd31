"""The Pose2Met HDF5 format: schema constants and the one atomic writer every converter uses.

Layout (see ``docs/data_format.md``)::

    attrs: format="pose2met", version, dataset, skeleton="h36m17", joint_names, parents, fps, units
    /frames/<name>      (N, ...)  per-frame arrays, chunked along the frame axis
    /sequences/<name>   (S,)      per-sequence index and labels
    /cameras/<id>       attrs: fx, fy, cx, cy, width, height (+ optional extrinsics)
"""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from pose2met.atomic import atomic_path
from pose2met.checks import is_positive_number
from pose2met.skeleton import JOINT_NAMES, NUM_JOINTS, PARENTS

FORMAT_NAME = "pose2met"
FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")
ACTIVITY_SETS = ("known", "unknown")
CAMERA_KEYS = ("fx", "fy", "cx", "cy", "width", "height")


@dataclass(frozen=True)
class ArraySpec:
    """Expected trailing shape (after the leading N or S axis) and dtype kind of one array."""

    trailing_shape: tuple[int, ...]
    kind: str  # "f" float, "i" integer, "b" bool, "S" string
    required: bool


#: Per-frame arrays, shape ``(N, *trailing_shape)``.
FRAME_ARRAYS: dict[str, ArraySpec] = {
    "joints_2d": ArraySpec((NUM_JOINTS, 2), "f", True),  # pixels (detected or ground-truth)
    "confidence": ArraySpec((NUM_JOINTS,), "f", True),  # 0..1
    "joints_3d": ArraySpec((NUM_JOINTS, 3), "f", False),  # camera coordinates, mm
    "factor_2_5d": ArraySpec((), "f", False),  # mm per pixel at root depth
    "joints_2d_gt": ArraySpec((NUM_JOINTS, 2), "f", False),  # exact projection, pixels
    "valid": ArraySpec((), "b", False),  # frame is scored (MPI-INF-3DHP test masks)
}
#: Per-sequence arrays, shape ``(S,)``.
SEQUENCE_ARRAYS: dict[str, ArraySpec] = {
    "start": ArraySpec((), "i", True),
    "length": ArraySpec((), "i", True),
    "subject": ArraySpec((), "S", True),
    "action": ArraySpec((), "S", True),
    "camera": ArraySpec((), "S", True),
    "split": ArraySpec((), "S", True),
    "kcal": ArraySpec((), "f", False),  # kcal/h label
    "activity_set": ArraySpec((), "S", False),  # known | unknown
    "name": ArraySpec((), "S", False),  # source sequence name, e.g. s_09_act_05_subact_02_ca_01
}
_DTYPES = {"f": np.float32, "i": np.int64, "b": np.bool_}
FRAME_CHUNK = 8192


class SchemaError(ValueError):
    """A Pose2Met HDF5 file (or the arrays meant for one) breaks the schema."""

    def __init__(self, path: str | os.PathLike | None, key: str, problem: str) -> None:
        where = f"{path}: " if path is not None else ""
        super().__init__(f"{where}key '{key}': {problem}")
        self.path, self.key, self.problem = path, key, problem


def value_problem(key: str, arr: np.ndarray, confidence_range: bool = True) -> tuple[int, str] | None:
    """First entry (index along the leading axis) of a float array whose values break the schema.

    Every float array must be finite; ``confidence`` must also lie in 0..1 (unless
    ``confidence_range`` is off) and ``factor_2_5d`` be positive. Returns ``(index, what was
    expected)``, or ``None`` when all values are fine.
    """
    if arr.size == 0:
        return None
    rows = arr.reshape(len(arr), -1)
    with np.errstate(invalid="ignore"):
        if key == "confidence" and confidence_range:
            bad, expected = ~((rows >= 0) & (rows <= 1)), "values in 0..1"
        elif key == "factor_2_5d":
            bad, expected = ~((rows > 0) & np.isfinite(rows)), "finite positive values (mm per pixel)"
        else:
            bad, expected = ~np.isfinite(rows), "finite values"
    if not bad.any():
        return None
    return int(np.argmax(bad.any(axis=1))), expected


def sequence_span_problem(start: np.ndarray, length: np.ndarray, num_frames: int) -> tuple[str, str] | None:
    """``(key, problem)`` of the first sequence that is empty or reaches outside the frame arrays."""
    if (length <= 0).any():
        i = int(np.argmax(length <= 0))
        return "/sequences/length", f"sequence {i} has {length[i]} frames; every sequence needs at least 1"
    outside = (start < 0) | (start + length > num_frames)
    if outside.any():
        i = int(np.argmax(outside))
        return "/sequences/start", (
            f"sequence {i} covers frames [{start[i]}, {start[i] + length[i]}), "
            f"outside the {num_frames} frames of /frames"
        )
    return None


def _as_array(values: np.ndarray | Sequence, spec: ArraySpec, path: Path, key: str) -> np.ndarray:
    if spec.kind == "S":
        arr = np.asarray(values, dtype=object)
        if arr.ndim != 1 or not all(isinstance(v, str) for v in arr):
            raise SchemaError(path, key, "expected a 1-D sequence of str")
        return arr
    try:
        arr = np.asarray(values)
    except ValueError:  # ragged input
        raise SchemaError(path, key, "expected a numeric array with one shape per entry") from None
    if arr.size == 0 and arr.dtype == np.float64 and spec.kind == "i":
        arr = arr.astype(np.int64)  # an empty list
    if spec.kind == "i" and not np.issubdtype(arr.dtype, np.integer):
        raise SchemaError(path, key, f"expected integers, got dtype {arr.dtype}")
    if spec.kind in "fb" and not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise SchemaError(path, key, f"expected numbers, got dtype {arr.dtype}")
    arr = arr.astype(_DTYPES[spec.kind], copy=False)
    problem = value_problem(key.rsplit("/", 1)[-1], arr) if spec.kind == "f" and arr.ndim else None
    if problem is not None:
        raise SchemaError(path, key, f"expected {problem[1]} (first violation at index {problem[0]})")
    return arr


def _check_shape(arr: np.ndarray, n: int, spec: ArraySpec, path: Path, key: str) -> None:
    expected = (n, *spec.trailing_shape)
    if arr.shape != expected:
        raise SchemaError(path, key, f"expected shape {expected}, got {arr.shape}")


def validate_arrays(
    frames: Mapping[str, np.ndarray],
    sequences: Mapping[str, np.ndarray | Sequence],
    cameras: Mapping[str, Mapping[str, float]],
    path: Path | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Check arrays against the schema; return them converted to their on-disk dtypes."""
    for group, given, specs in (("frames", frames, FRAME_ARRAYS), ("sequences", sequences, SEQUENCE_ARRAYS)):
        for key in given:
            if key not in specs:
                raise SchemaError(path, f"/{group}/{key}", f"unknown array; expected one of {sorted(specs)}")
        for key, spec in specs.items():
            if spec.required and key not in given:
                raise SchemaError(path, f"/{group}/{key}", "required array is missing")
    frames_out = {k: _as_array(v, FRAME_ARRAYS[k], path, f"/frames/{k}") for k, v in frames.items()}
    seq_out = {k: _as_array(v, SEQUENCE_ARRAYS[k], path, f"/sequences/{k}") for k, v in sequences.items()}
    n = len(frames_out["joints_2d"])
    s = len(seq_out["start"])
    if n == 0 or s == 0:
        raise SchemaError(
            path, "/sequences", f"no frames or no sequences to write ({n} frames, {s} sequences)"
        )
    for k, arr in frames_out.items():
        _check_shape(arr, n, FRAME_ARRAYS[k], path, f"/frames/{k}")
    for k, arr in seq_out.items():
        _check_shape(arr, s, SEQUENCE_ARRAYS[k], path, f"/sequences/{k}")
    span = sequence_span_problem(seq_out["start"], seq_out["length"], n)
    if span:
        raise SchemaError(path, *span)
    for key, allowed in (("split", SPLITS), ("activity_set", ACTIVITY_SETS)):
        if key in seq_out:
            bad = sorted(set(seq_out[key]) - set(allowed))
            if bad:
                raise SchemaError(path, f"/sequences/{key}", f"values {bad} not in {allowed}")
    missing_cams = sorted(set(seq_out["camera"]) - set(cameras))
    if missing_cams:
        raise SchemaError(path, "/cameras", f"no parameters for cameras {missing_cams}")
    for cam, params in cameras.items():
        lacking = [k for k in CAMERA_KEYS if k not in params]
        if lacking:
            raise SchemaError(path, f"/cameras/{cam}", f"missing attributes {lacking}")
        if not (is_positive_number(params["width"]) and is_positive_number(params["height"])):
            size = (params["width"], params["height"])
            raise SchemaError(path, f"/cameras/{cam}", f"image width and height must be positive, got {size}")
    return frames_out, seq_out


def write_dataset(
    path: str | os.PathLike,
    *,
    frames: Mapping[str, np.ndarray],
    sequences: Mapping[str, np.ndarray | Sequence],
    cameras: Mapping[str, Mapping[str, float | np.ndarray]],
    dataset: str,
    fps: float,
    overwrite: bool = False,
    attrs: Mapping[str, str | int | float] | None = None,
    compression: str | None = None,
) -> Path:
    """Validate and write one Pose2Met HDF5 file atomically (temp file in the same folder, then rename).

    Args:
        path: output ``.h5`` file.
        frames: per-frame arrays ``{name: (N, ...)}``, see :data:`FRAME_ARRAYS`.
        sequences: per-sequence arrays ``{name: (S,)}``, see :data:`SEQUENCE_ARRAYS`.
        cameras: ``{camera_id: {fx, fy, cx, cy, width, height, ...}}`` (extra keys such as ``R``,
            ``t`` are stored as attributes too).
        dataset: dataset name stored in the file attributes.
        fps: frame rate of the sequences.
        overwrite: replace an existing file; otherwise an existing file raises ``FileExistsError``.
        attrs: extra root attributes (e.g. generator seed and preset).
        compression: optional h5py compression of the frame arrays (``"lzf"``, ``"gzip"``).

    Returns:
        The written path. An existing file is never touched unless the new one is complete.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder; expected a .h5 file path", str(path))
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass --overwrite (overwrite=True) to replace it")
    if not is_positive_number(fps):
        raise SchemaError(path, "attrs/fps", f"expected a positive, finite frame rate, got {fps!r}")
    frames_out, seq_out = validate_arrays(frames, sequences, cameras, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
            f.attrs.update(
                {
                    "format": FORMAT_NAME,
                    "version": FORMAT_VERSION,
                    "dataset": dataset,
                    "skeleton": "h36m17",
                    "joint_names": list(JOINT_NAMES),
                    "parents": np.asarray(PARENTS, dtype=np.int64),
                    "fps": float(fps),
                    "units": "mm",
                    **dict(attrs or {}),
                }
            )
            g = f.create_group("frames")
            for key, arr in frames_out.items():
                chunks = (min(len(arr), FRAME_CHUNK), *arr.shape[1:]) if len(arr) else None
                g.create_dataset(key, data=arr, chunks=chunks, compression=compression)
            g = f.create_group("sequences")
            for key, arr in seq_out.items():
                dtype = h5py.string_dtype() if SEQUENCE_ARRAYS[key].kind == "S" else arr.dtype
                g.create_dataset(key, data=arr, dtype=dtype)
            g = f.create_group("cameras")
            for cam, params in cameras.items():
                c = g.create_group(cam)
                for k, v in params.items():
                    c.attrs[k] = v
    except OSError as err:  # h5py's errors name only its temporary file, inside the message
        if err.filename is not None:
            raise
        raise OSError(err.errno, f"cannot write the HDF5 file ({err})", str(path)) from err
    return path
