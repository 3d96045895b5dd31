"""Human3.6M -> Pose2Met HDF5 (command ``python data_prep/h36m.py``).

Two sources: the MotionBERT pickle (``--motionbert-pkl``, see :mod:`.h36m_motionbert`) or the
VideoPose3D npz pair plus a cameras JSON (``--videopose3d-3d/--videopose3d-2d/--cameras``, see
:mod:`.h36m_videopose3d`). Details and choices: ``docs/datasets.md``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from pose2met.data.prep.common import (
    PICKLE_WARNING,
    Converted,
    PrepError,
    add_output_arguments,
    run_converter,
)
from pose2met.data.prep.h36m_motionbert import convert_motionbert
from pose2met.data.prep.h36m_videopose3d import convert_videopose3d


def build_parser() -> argparse.ArgumentParser:
    """Argument parser of the Human3.6M converter."""
    parser = argparse.ArgumentParser(
        prog="data_prep/h36m.py",
        description="Convert Human3.6M (MotionBERT pickle, or VideoPose3D npz files + cameras JSON) "
        "into the Pose2Met HDF5 format: train S1, S5-S8; test S9, S11; 50 fps; h36m17 joints.",
        epilog=PICKLE_WARNING + " See docs/datasets.md for where to get the files.",
    )
    src = parser.add_argument_group("source A: MotionBERT")
    src.add_argument("--motionbert-pkl", metavar="F", help="h36m_sh_conf_cam_source_final.pkl (a pickle)")
    src = parser.add_argument_group("source B: VideoPose3D")
    src.add_argument("--videopose3d-3d", metavar="F", help="data_3d_h36m.npz (world positions, metres)")
    src.add_argument("--videopose3d-2d", metavar="F", help="data_2d_h36m_<detector>.npz (2D keypoints)")
    src.add_argument("--cameras", metavar="F", help="cameras JSON (schema in docs/datasets.md)")
    add_output_arguments(parser)
    return parser


def convert(args: argparse.Namespace) -> Converted:
    """Dispatch to the source the arguments name (exactly one)."""
    vp3d = (args.videopose3d_3d, args.videopose3d_2d, args.cameras)
    if args.motionbert_pkl and any(vp3d):
        raise PrepError("give either --motionbert-pkl or the VideoPose3D files, not both")
    if args.motionbert_pkl:
        return convert_motionbert(args.motionbert_pkl)
    if all(vp3d):
        return convert_videopose3d(*vp3d)
    if any(vp3d):
        raise PrepError(
            "the VideoPose3D source needs all of --videopose3d-3d, --videopose3d-2d and --cameras"
        )
    raise PrepError("no input: give --motionbert-pkl F, or --videopose3d-3d F --videopose3d-2d F --cameras F")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the converter; returns the exit code (0 ok, 2 bad input)."""
    return run_converter(build_parser(), convert, argv)
