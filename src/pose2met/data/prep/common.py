"""Shared plumbing of the dataset converters: input loading, sequence assembly, summary and CLI runner.

Every converter returns a :class:`Converted` (frame arrays, sequence arrays, cameras) that
:func:`run_converter` validates and writes through :func:`pose2met.data.h5format.write_dataset`.
Bad input raises :class:`PrepError`, whose message names the file, the key or field and what was
expected; the CLI prints it on one line and exits with code 2.
"""

from __future__ import annotations

import argparse
import pickle
import re
import sys
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pose2met.data.argflags import describe_os_error, output_file, output_problem
from pose2met.data.h5format import SEQUENCE_ARRAYS, SchemaError, write_dataset
from pose2met.data.interrupts import Terminated, interrupted_message, sigterm_raises
from pose2met.skeleton import JOINT_NAMES, ROOT

#: Sentence every ``--help`` carries: pickles (and ``.npz`` object arrays) execute code on load.
PICKLE_WARNING = (
    "Pickle files (and .npz files holding pickled objects) can run arbitrary code when loaded: "
    "this converter only reads the files you name on the command line; pass only files you trust."
)
#: Camera intrinsics that a source does not provide are stored as NaN (width/height are always known).
UNKNOWN = float("nan")


class PrepError(Exception):
    """Invalid converter input; the message names the file, the key or field and what was expected."""


@dataclass
class Converted:
    """Everything a converter produced, ready for :func:`write_dataset`.

    Attributes:
        frames: per-frame arrays ``{name: (N, ...)}`` (see ``h5format.FRAME_ARRAYS``).
        sequences: per-sequence arrays ``{name: (S,)}``; may hold ``name`` (dropped if the schema lacks it).
        cameras: ``{camera_id: {fx, fy, cx, cy, width, height}}``.
        dataset: dataset name stored in the file.
        fps: frame rate.
        attrs: extra root attributes (source format, meaning of ``joints_3d``...).
        notes: human-readable lines for the summary (skipped items, trims, interpolations).
    """

    frames: dict[str, np.ndarray]
    sequences: dict[str, list | np.ndarray]
    cameras: dict[str, dict[str, float]]
    dataset: str
    fps: float
    attrs: dict[str, str | int | float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------
# Input loading


def load_pickle(path: str | Path, what: str) -> Any:
    """Unpickle a file the user named; errors name the file and what it should have been."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            return pickle.load(f)
    except FileNotFoundError:
        raise PrepError(f"{path}: file not found (expected {what})") from None
    except IsADirectoryError:
        raise PrepError(f"{path}: is a directory (expected {what})") from None
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError, TypeError) as e:
        raise PrepError(f"{path}: cannot unpickle ({type(e).__name__}: {e}); expected {what}") from None


def load_npz(path: str | Path, what: str) -> Mapping[str, np.ndarray]:
    """Open an ``.npz`` archive (object arrays allowed) and read all its members eagerly."""
    path = Path(path)
    try:
        loaded = np.load(path, allow_pickle=True)
        if not isinstance(loaded, np.lib.npyio.NpzFile):  # a .npy array or a plain pickle
            raise PrepError(f"{path}: a single {type(loaded).__name__}, not an .npz archive; expected {what}")
        with loaded as npz:
            return {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise PrepError(f"{path}: file not found (expected {what})") from None
    except IsADirectoryError:
        raise PrepError(f"{path}: is a directory (expected {what})") from None
    except (OSError, ValueError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, zlib.error) as e:
        raise PrepError(f"{path}: not a readable .npz archive ({e}); expected {what}") from None


def npz_object(npz: Mapping[str, np.ndarray], key: str, path: str | Path, kind: type = dict) -> Any:
    """Return the Python object pickled under ``key`` of an ``.npz`` (a 0-d object array)."""
    if key not in npz:
        raise PrepError(f"{path}: missing key '{key}' (found {sorted(npz)})")
    arr = npz[key]
    if not (isinstance(arr, np.ndarray) and arr.dtype == object and arr.shape == ()):
        raise PrepError(f"{path}: key '{key}' should hold a pickled {kind.__name__} (0-d object array)")
    obj = arr.item()
    if not isinstance(obj, kind):
        raise PrepError(f"{path}: key '{key}' holds a {type(obj).__name__}, expected a {kind.__name__}")
    return obj


def any_array(value: Any, where: str) -> np.ndarray:
    """``np.asarray(value)`` with a :class:`PrepError` for ragged input (entries of different shapes)."""
    try:
        return np.asarray(value)
    except ValueError:
        raise PrepError(f"{where}: expected an array, got entries of different shapes") from None


def get_key(mapping: Any, key: str, where: str) -> Any:
    """``mapping[key]`` with an error naming ``where`` when the mapping or the key is missing."""
    if not isinstance(mapping, Mapping):
        raise PrepError(f"{where}: expected a dict, got {type(mapping).__name__}")
    if key not in mapping:
        raise PrepError(f"{where}: missing key '{key}' (found {sorted(map(str, mapping))[:20]})")
    return mapping[key]


def float_array(value: Any, where: str, shape: Sequence[int | None], dtype: type = np.float64) -> np.ndarray:
    """Numeric array with the given shape (``None`` = any size), all finite.

    Args:
        value: array-like read from a source file.
        where: "file: key" text used in error messages.
        shape: expected shape; ``None`` entries accept any length.
        dtype: float type of the result (no copy if the input already has it).
    """
    try:
        arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError):
        raise PrepError(f"{where}: expected a numeric array of shape {_shape_text(shape)}") from None
    if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape, strict=True)):
        raise PrepError(f"{where}: expected shape {_shape_text(shape)}, got {arr.shape}")
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise PrepError(f"{where}: non-finite value at index {tuple(int(i) for i in bad)}")
    return arr


def keypoints_2d(value: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Split ``(N, J, 2)`` or ``(N, J, 3)`` keypoints into pixels ``(N, J, 2)`` and confidence ``(N, J)``.

    A third channel is the detector confidence (clipped to 0..1); without one confidence is 1.
    """
    arr = any_array(value, where)
    if arr.ndim != 3 or arr.shape[2] not in (2, 3):
        raise PrepError(f"{where}: expected 2D keypoints of shape (N, J, 2) or (N, J, 3), got {arr.shape}")
    arr = float_array(arr, where, (None, None, arr.shape[2]))
    conf = np.clip(arr[..., 2], 0.0, 1.0) if arr.shape[2] == 3 else np.ones(arr.shape[:2])
    return arr[..., :2], conf


def str_array(value: Any, where: str, length: int | None = None) -> np.ndarray:
    """1-D object array of Python ``str`` (bytes decoded as UTF-8), optionally of a given length."""
    arr = None if isinstance(value, (str, bytes)) else np.asarray(value, dtype=object)
    if arr is None or arr.ndim != 1:
        raise PrepError(f"{where}: expected a 1-D sequence of strings")
    out = np.array([v.decode() if isinstance(v, bytes) else str(v) for v in arr], dtype=object)
    if length is not None and len(out) != length:
        raise PrepError(f"{where}: expected {length} entries (one per frame), got {len(out)}")
    return out


def _shape_text(shape: Sequence[int | None]) -> str:
    return "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"


# ----------------------------------------------------------------------------------------------
# Sequence assembly


class SequenceBuilder:
    """Collects sequences one at a time and concatenates them into the columnar layout."""

    def __init__(self) -> None:
        self._frames: dict[str, list[np.ndarray]] = {}
        self._seq: dict[str, list] = {k: [] for k in ("start", "length", "name")}
        self._n = 0

    def __len__(self) -> int:
        return len(self._seq["start"])

    def add(self, frames: Mapping[str, np.ndarray], **labels: str | float) -> None:
        """Append one sequence.

        Args:
            frames: its per-frame arrays, all of the same length ``T >= 1`` (``T = 0`` raises
                :class:`PrepError`); every call must give the same keys.
            labels: per-sequence values (``name``, ``subject``, ``action``, ``camera``, ``split``,
                optionally ``kcal``, ``activity_set``); every call must give the same keys.
        """
        lengths = {len(v) for v in frames.values()}
        if len(lengths) != 1:
            raise ValueError(f"frame arrays of one sequence must share a length, got {lengths}")
        if 0 in lengths:
            raise PrepError(f"sequence {labels.get('name', len(self))!r} has no frames")
        if self._frames and set(frames) != set(self._frames):
            raise ValueError(f"frame keys {sorted(frames)} differ from earlier {sorted(self._frames)}")
        expected = set(self._seq) - {"start", "length"}
        if len(self) and set(labels) != expected:
            raise ValueError(f"labels {sorted(labels)} differ from earlier {sorted(expected)}")
        (length,) = lengths
        for k, v in frames.items():
            self._frames.setdefault(k, []).append(v)
        for k, v in labels.items():
            self._seq.setdefault(k, []).append(v)
        self._seq["start"].append(self._n)
        self._seq["length"].append(length)
        self._n += length

    def build(self, notes: Sequence[str] = ()) -> tuple[dict[str, np.ndarray], dict[str, list]]:
        """Concatenated frame arrays and per-sequence lists (``notes`` explain an empty result)."""
        if not len(self):
            why = "; ".join(notes) if notes else "the inputs hold no sequences"
            raise PrepError(f"no sequences to write: every input item was skipped ({why})")
        frames = {k: np.concatenate(v) for k, v in self._frames.items()}
        return frames, dict(self._seq)


def runs(values: np.ndarray) -> list[tuple[int, int]]:
    """Contiguous runs of equal values: ``[(start, length), ...]`` in order."""
    if len(values) == 0:
        return []
    change = np.flatnonzero(values[1:] != values[:-1]) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(values)]])
    return [(int(s), int(e - s)) for s, e in zip(starts, ends, strict=True)]


def camera_entry(
    width: float,
    height: float,
    fx: float = UNKNOWN,
    fy: float = UNKNOWN,
    cx: float = UNKNOWN,
    cy: float = UNKNOWN,
) -> dict[str, float]:
    """One ``/cameras/<id>`` attribute dict (NaN for intrinsics the source does not give)."""
    return {
        "fx": float(fx),
        "fy": float(fy),
        "cx": float(cx),
        "cy": float(cy),
        "width": float(width),
        "height": float(height),
    }


# ----------------------------------------------------------------------------------------------
# Summary and CLI


def _range(arr: np.ndarray) -> str:
    return f"[{float(np.min(arr)):.1f}, {float(np.max(arr)):.1f}]" if arr.size else "[]"


def summary_lines(conv: Converted) -> list[str]:
    """Human-readable summary: counts, subjects, splits, label and coordinate ranges, notes."""
    f, s = conv.frames, conv.sequences
    lengths = np.asarray(s["length"], dtype=np.int64)
    split = np.asarray(s["split"], dtype=object)
    subjects = sorted(set(s["subject"]), key=_natural_key)
    lines = [
        f"dataset {conv.dataset} ({conv.fps:g} fps): {len(lengths)} sequences, {int(lengths.sum())} frames, "
        f"{len(subjects)} subjects, {len(set(s['action']))} actions, cameras {sorted(set(s['camera']))}",
        f"subjects: {', '.join(subjects)}",
    ]
    for name in ("train", "val", "test"):
        m = split == name
        if m.any():
            subj = sorted(set(np.asarray(s["subject"], dtype=object)[m]), key=_natural_key)
            lines.append(
                f"split {name}: {int(m.sum())} sequences, {int(lengths[m].sum())} frames, "
                f"subjects {', '.join(subj)}"
            )
    xy = f["joints_2d"]
    lines.append(
        f"joints_2d px: x {_range(xy[..., 0])}, y {_range(xy[..., 1])}; "
        f"confidence mean {float(np.mean(f['confidence'])):.3f}"
    )
    if "joints_3d" in f:
        extent = np.abs(f["joints_3d"] - f["joints_3d"][:, :1]).reshape(-1, 3).max(0).round(1).tolist()
        root_z = _range(f["joints_3d"][:, 0, 2])
        lines.append(f"joints_3d mm: root depth {root_z}, root-relative max |x|, |y|, |z| {extent}")
    if "factor_2_5d" in f:
        lines.append(f"factor_2_5d mm/px: {_range(f['factor_2_5d'])}")
    if "valid" in f:
        lines.append(f"valid frames: {int(np.sum(f['valid']))} of {len(f['valid'])}")
    if "kcal" in s:
        kcal = np.asarray(s["kcal"], dtype=np.float64)
        lines.append(f"kcal/h: min {kcal.min():.1f}, mean {kcal.mean():.1f}, max {kcal.max():.1f}")
    if "activity_set" in s:
        counts = Counter(s["activity_set"])
        lines.append("activity sets: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    lines.extend(f"note: {n}" for n in conv.notes)
    return lines


def _natural_key(text: str) -> tuple:
    """Sort key that orders S2 before S11 (digit runs compare as numbers)."""
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.findall(r"\d+|\D+", text))


def natural_sorted(items: Any) -> list:
    """``sorted`` with S2 before S11 (keys converted with ``str``)."""
    return sorted(items, key=lambda k: _natural_key(str(k)))


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """``--output`` and ``--overwrite``, shared by every converter CLI."""
    parser.add_argument(
        "--output", required=True, type=output_file, metavar="FILE.h5", help="Pose2Met HDF5 file to write"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace FILE.h5 if it exists (default: refuse)"
    )


#: Plausible median pelvis-thorax distance of ``joints_3d`` in mm (a person's is about 500 mm): a
#: factor of 1000 off either way (metres, or millimetres scaled again) falls outside.
TORSO_MM_RANGE = (20.0, 20_000.0)


def check_millimetres(joints_3d: np.ndarray) -> None:
    """Refuse ``joints_3d (N, 17, 3)`` whose scale says the source was not in the expected unit."""
    thorax = JOINT_NAMES.index("thorax")
    torso = float(np.median(np.linalg.norm(joints_3d[:, thorax] - joints_3d[:, ROOT], axis=-1)))
    low, high = TORSO_MM_RANGE
    if not low <= torso <= high:
        raise PrepError(
            f"3D joints: the median pelvis-thorax distance is {torso:.3g} mm, expected about 500 mm "
            f"({low:g}-{high:g}); the 3D input is in another unit than the converter expects "
            "(e.g. millimetres where metres are read, or the reverse)"
        )


def write_converted(conv: Converted, output: str | Path, overwrite: bool) -> Path:
    """Validate and write atomically; sequence names are dropped if the schema has no ``name`` array."""
    if "joints_3d" in conv.frames and len(conv.frames["joints_3d"]):
        check_millimetres(conv.frames["joints_3d"])
    sequences = dict(conv.sequences)
    if "name" not in SEQUENCE_ARRAYS:
        sequences.pop("name", None)
    return write_dataset(
        output,
        frames=conv.frames,
        sequences=sequences,
        cameras=conv.cameras,
        dataset=conv.dataset,
        fps=conv.fps,
        overwrite=overwrite,
        attrs=conv.attrs,
    )


def run_converter(
    parser: argparse.ArgumentParser,
    convert: Callable[[argparse.Namespace], Converted],
    argv: Sequence[str] | None,
) -> int:
    """Parse ``argv``, convert, write, print the summary; return the exit code.

    Input errors (:class:`PrepError`, schema violations, an existing output without
    ``--overwrite``, unreadable paths) print one ``error:`` line on stderr and return 2; SIGINT
    and SIGTERM remove the partial temp file, leave an existing output as it was and return 130 / 143.
    """
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2): argparse already printed the message
        return int(e.code) if isinstance(e.code, int) else 2
    output = Path(args.output)
    problem = output_problem(output, parser, args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        if output.exists() and not args.overwrite:
            raise FileExistsError(f"{output} exists; pass --overwrite to replace it")
        with sigterm_raises():
            conv = convert(args)
            written = write_converted(conv, output, args.overwrite)
    except (PrepError, SchemaError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # FileExistsError included ("exists; pass --overwrite" names no file: as is)
        print(f"error: {describe_os_error(e, parser, args)}", file=sys.stderr)
        return 2
    except (Terminated, KeyboardInterrupt) as e:
        text, code = interrupted_message(e, output)
        print(text, file=sys.stderr)
        return code
    print(f"wrote {written}")
    for line in summary_lines(conv):
        print(line)
    return 0
