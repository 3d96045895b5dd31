"""MPI-INF-3DHP -> Pose2Met HDF5 from P-STMO-style npz files (``python data_prep/mpi_inf_3dhp.py``).

* ``data_train_3dhp.npz``: key ``data`` = ``{"S1 Seq1": [{camera: {"data_3d": (N, 17, 3),
  "data_2d": (N, 17, 2)}}], ...}`` (the list's first dict is used, cameras as ints or strings).
* ``data_test_3dhp.npz``: key ``data`` = ``{"TS1": {"data_3d", "data_2d", "valid": (N,)}, ...}``.

3D is the universal (height-normalized) skeleton in camera coordinates, mm; 2D is pixels
(2048x2048; TS5, TS6: 1920x1080). Joints come in the 3DHP 17-joint order and are mapped to h36m17.
The files hold no intrinsics, so ``/cameras`` carries width and height with NaN ``fx, fy, cx, cy``,
and there is no ``factor_2_5d``.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pose2met.checks import is_positive_number
from pose2met.data.prep.common import (
    PICKLE_WARNING,
    Converted,
    PrepError,
    SequenceBuilder,
    add_output_arguments,
    camera_entry,
    float_array,
    get_key,
    keypoints_2d,
    load_npz,
    natural_sorted,
    npz_object,
    run_converter,
)

#: For every h36m17 joint, its index in the 3DHP 17-joint order (head top, neck, R shoulder,
#: R elbow, R wrist, L shoulder, L elbow, L wrist, R hip, R knee, R ankle, L hip, L knee, L ankle,
#: pelvis, spine, head).
MPI_TO_H36M: tuple[int, ...] = (14, 8, 9, 10, 11, 12, 13, 15, 1, 16, 0, 5, 6, 7, 2, 3, 4)
TRAIN_CAMERAS: tuple[int, ...] = (0, 1, 2, 4, 5, 6, 7, 8)
TRAIN_SIZE = (2048, 2048)
TEST_SIZES: dict[str, tuple[int, int]] = {
    "TS1": (2048, 2048), "TS2": (2048, 2048), "TS3": (2048, 2048), "TS4": (2048, 2048),
    "TS5": (1920, 1080), "TS6": (1920, 1080),
}  # fmt: skip
DEFAULT_FPS = 25.0
_TRAIN_KEY = re.compile(r"^S([1-8]) (Seq\d+)$")


def _frames(anim: object, where: str) -> dict[str, np.ndarray]:
    """Map one sequence's 3DHP arrays to h36m17 frame arrays (all frames valid)."""
    xy, conf = keypoints_2d(get_key(anim, "data_2d", where), f"{where}['data_2d']")
    if xy.shape[1] != 17:
        raise PrepError(f"{where}['data_2d']: expected 17 joints, got {xy.shape[1]}")
    n = len(xy)
    xyz = float_array(get_key(anim, "data_3d", where), f"{where}['data_3d']", (n, 17, 3))
    if n == 0:
        raise PrepError(f"{where}: sequence has no frames")
    idx = list(MPI_TO_H36M)
    return {
        "joints_2d": xy[:, idx],
        "confidence": conf[:, idx],
        "joints_3d": xyz[:, idx],
        "valid": np.ones(n, dtype=bool),
    }


def _camera_index(key: object, where: str) -> int:
    try:
        return int(str(key).removeprefix("cam").removeprefix("camera"))
    except ValueError:
        raise PrepError(f"{where}: camera key {key!r} is not a camera number") from None


def _add_train(builder: SequenceBuilder, path: Path, cameras: Sequence[int], notes: list[str]) -> None:
    data = npz_object(load_npz(path, "data_train_3dhp.npz"), "data", path)
    skipped = 0
    for key in natural_sorted(data):
        m = _TRAIN_KEY.match(str(key))
        if m is None:
            raise PrepError(f"{path}: ['data'] key {key!r} does not look like 'S1 Seq1' (subjects S1-S8)")
        subject, seq = f"S{m.group(1)}", m.group(2)
        entry = data[key]
        if not isinstance(entry, list | tuple) or not entry or not isinstance(entry[0], dict):
            raise PrepError(
                f"{path}: ['data']['{key}'] should be a list whose first item maps cameras to arrays"
            )
        by_index = {_camera_index(c, f"{path}: ['data']['{key}'][0]"): c for c in entry[0]}
        for cam in sorted(by_index):
            if cam not in cameras:
                skipped += 1
                continue
            where = f"{path}: ['data']['{key}'][0][{by_index[cam]!r}]"
            builder.add(
                _frames(entry[0][by_index[cam]], where),
                name=f"{subject} {seq} cam{cam}",
                subject=subject,
                action=seq,
                camera=f"cam{cam}",
                split="train",
            )
    if skipped:
        notes.append(f"skipped {skipped} training sequences from cameras outside {list(cameras)}")


def _add_test(builder: SequenceBuilder, path: Path) -> None:
    data = npz_object(load_npz(path, "data_test_3dhp.npz"), "data", path)
    for key in natural_sorted(data):
        if key not in TEST_SIZES:
            raise PrepError(f"{path}: ['data'] key {key!r} is not one of {list(TEST_SIZES)}")
        where = f"{path}: ['data']['{key}']"
        frames = _frames(data[key], where)
        n = len(frames["valid"])
        raw_valid = np.asarray(get_key(data[key], "valid", where))
        if raw_valid.size != n:
            raise PrepError(
                f"{where}['valid']: expected {n} entries (one per frame), got shape {raw_valid.shape}"
            )
        frames["valid"] = float_array(raw_valid.reshape(-1), f"{where}['valid']", (n,)) != 0
        builder.add(frames, name=key, subject=key, action=key, camera=key, split="test")


def convert_mpi_inf_3dhp(
    train_npz: str | Path | None,
    test_npz: str | Path | None,
    fps: float = DEFAULT_FPS,
    train_cameras: Sequence[int] = TRAIN_CAMERAS,
) -> Converted:
    """Convert the train and/or test npz (train S1-S8, test TS1-TS6 with per-frame valid masks)."""
    if train_npz is None and test_npz is None:
        raise PrepError("no input: give --train-npz and/or --test-npz")
    builder = SequenceBuilder()
    notes: list[str] = []
    if train_npz is not None:
        _add_train(builder, Path(train_npz), train_cameras, notes)
    if test_npz is not None:
        _add_test(builder, Path(test_npz))
    frames, seqs = builder.build(notes)
    cameras = {}
    for cam in sorted(set(seqs["camera"])):
        cameras[cam] = camera_entry(*(TEST_SIZES[cam] if cam in TEST_SIZES else TRAIN_SIZE))
    return Converted(
        frames=frames,
        sequences=seqs,
        cameras=cameras,
        dataset="mpi_inf_3dhp",
        fps=fps,
        attrs={"source_format": "pstmo_npz", "joints_3d_space": "camera_mm_univ"},
        notes=notes,
    )


def build_parser() -> argparse.ArgumentParser:
    """Argument parser of the MPI-INF-3DHP converter."""
    parser = argparse.ArgumentParser(
        prog="data_prep/mpi_inf_3dhp.py",
        description="Convert MPI-INF-3DHP (P-STMO npz files) into the Pose2Met HDF5 format: "
        "train S1-S8 (cameras 0,1,2,4,5,6,7,8), test TS1-TS6 with valid masks; h36m17 joints.",
        epilog=PICKLE_WARNING + " See docs/datasets.md for where to get the files.",
    )
    parser.add_argument("--train-npz", metavar="F", help="data_train_3dhp.npz (holds a pickled dict)")
    parser.add_argument("--test-npz", metavar="F", help="data_test_3dhp.npz (holds a pickled dict)")
    parser.add_argument("--fps", type=float, default=DEFAULT_FPS, help="frame rate to record (default 25)")
    parser.add_argument(
        "--train-cameras",
        default=",".join(map(str, TRAIN_CAMERAS)),
        help="comma-separated training cameras to keep (default 0,1,2,4,5,6,7,8)",
    )
    add_output_arguments(parser)
    return parser


def _convert_args(args: argparse.Namespace) -> Converted:
    try:
        cams = [int(c) for c in args.train_cameras.split(",") if c.strip()]
    except ValueError:
        raise PrepError(
            f"--train-cameras: expected comma-separated integers, got '{args.train_cameras}'"
        ) from None
    if not is_positive_number(args.fps):
        raise PrepError(f"--fps: expected a positive, finite frame rate, got {args.fps}")
    return convert_mpi_inf_3dhp(args.train_npz, args.test_npz, args.fps, cams)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the converter; returns the exit code (0 ok, 2 bad input)."""
    return run_converter(build_parser(), _convert_args, argv)
