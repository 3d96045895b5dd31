"""Vid2Burn-ADL -> Pose2Met HDF5 from NTU RGB+D ``.skeleton`` files and the Vid2Burn labels
(command ``python data_prep/vid2burn_adl.py``).

One sequence per labelled clip of activities A001-A039: the first body listed in each frame
(see :mod:`.ntu_skeleton`), h36m17 joints, 2D in colour pixels (1920x1080), 3D in mm, 30 fps,
``kcal`` from the label file (:mod:`.vid2burn_labels`), ``activity_set`` known (A001-A033) or
unknown (A034-A039), a cross-subject split by default or an explicit ``--split-file``.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from pose2met.data.prep.common import (
    PICKLE_WARNING,
    Converted,
    PrepError,
    SequenceBuilder,
    add_output_arguments,
    camera_entry,
    run_converter,
)
from pose2met.data.prep.ntu_skeleton import COLOR_SIZE, FPS, ClipId, read_skeleton, to_h36m
from pose2met.data.prep.vid2burn_labels import (
    activity_set,
    default_split,
    load_labels,
    load_split_file,
)


def convert_vid2burn_adl(
    skeletons: str | Path,
    labels: str | Path,
    split_file: str | Path | None = None,
) -> Converted:
    """Convert every labelled Vid2Burn-ADL clip found under ``skeletons`` (searched recursively).

    Clips without a label, outside A001-A039, without any body, or (with a split file) not listed
    in it are skipped and counted in the notes.
    """
    root = Path(skeletons)
    if not root.is_dir():
        raise PrepError(f"{root}: not a directory (expected the folder of NTU .skeleton files)")
    files = sorted(root.rglob("*.skeleton"))
    if not files:
        raise PrepError(f"{root}: no .skeleton files found")
    table = load_labels(labels)
    splits = load_split_file(split_file) if split_file is not None else None
    skipped: Counter[str] = Counter()
    stats: Counter[str] = Counter()
    builder = SequenceBuilder()
    seen: dict[str, Path] = {}
    for path in files:
        clip = ClipId.parse(path.stem)
        if clip is None or clip.name != path.stem:
            raise PrepError(f"{path}: file name is not an NTU clip name like S001C001P001R001A001.skeleton")
        if clip.name in seen:
            raise PrepError(f"{path}: clip {clip.name} found twice (also {seen[clip.name]})")
        seen[clip.name] = path
        aset = activity_set(clip.action)
        kcal = table.lookup(clip)
        split = default_split(clip) if splits is None else splits.split(clip)
        if aset is None:
            skipped["activity outside A001-A039"] += 1
            continue
        if kcal is None:
            skipped["no label"] += 1
            continue
        if split is None:
            skipped["not in the split file"] += 1
            continue
        if aset == "unknown" and split != "test":
            if splits is not None and clip.name in splits.clips:  # named on its own line: as written
                stats["unknown_kept"] += 1
            else:  # a performer line: the protocol keeps unknown activities for testing
                split = "test"
                stats["unknown_to_test"] += 1
        frames = to_h36m(read_skeleton(path))
        if frames is None:
            skipped["no body in any frame"] += 1
            continue
        stats.update(trimmed=frames.trimmed, interpolated=frames.interpolated, multi_body=frames.multi_body)
        builder.add(
            {"joints_2d": frames.joints_2d, "confidence": frames.confidence, "joints_3d": frames.joints_3d},
            name=clip.name,
            subject=f"P{clip.performer:03d}",
            action=f"A{clip.action:03d}",
            camera=f"C{clip.camera:03d}",
            split=split,
            kcal=kcal,
            activity_set=aset,
        )
    notes = [f"skipped {n} clips: {why}" for why, n in sorted(skipped.items())]
    notes.append(
        f"body-less frames: {stats['trimmed']} dropped at clip ends, {stats['interpolated']} interpolated "
        f"(confidence 0); {stats['multi_body']} frames listed several bodies (first one kept)"
    )
    if stats["unknown_to_test"]:
        notes.append(
            f"{stats['unknown_to_test']} clips of unknown activities (A034-A039) put in test, not in their "
            "performer's split (unknown activities are test only; a clip line of the split file overrides)"
        )
    if stats["unknown_kept"]:
        notes.append(f"{stats['unknown_kept']} clips of unknown activities put in train/val by clip lines")
    frames_out, seqs = builder.build(notes)
    if "test" not in seqs["split"]:
        notes.append("no clip is in the test split")
    cameras = {c: camera_entry(*COLOR_SIZE) for c in sorted(set(seqs["camera"]))}
    return Converted(
        frames=frames_out,
        sequences=seqs,
        cameras=cameras,
        dataset="vid2burn_adl",
        fps=FPS,
        attrs={"source_format": "ntu_skeleton", "joints_3d_space": "camera_mm_kinect_image_axes"},
        notes=notes,
    )


def build_parser() -> argparse.ArgumentParser:
    """Argument parser of the Vid2Burn-ADL converter."""
    parser = argparse.ArgumentParser(
        prog="data_prep/vid2burn_adl.py",
        description="Convert Vid2Burn-ADL (NTU RGB+D .skeleton files + Vid2Burn kcal/h labels) into the "
        "Pose2Met HDF5 format: activities A001-A033 known, A034-A039 unknown; 30 fps; h36m17 joints.",
        epilog=PICKLE_WARNING + " See docs/datasets.md for the label and split file formats.",
    )
    parser.add_argument("--skeletons", required=True, metavar="DIR", help="folder of NTU .skeleton files")
    parser.add_argument(
        "--labels",
        required=True,
        metavar="F",
        help="Vid2Burn labels: .csv or .txt (CSV), any other name a pickled dict",
    )
    parser.add_argument(
        "--split-file",
        metavar="F",
        help="explicit split: lines '<P### or clip name> <train|val|test>' (default: cross-subject split)",
    )
    add_output_arguments(parser)
    return parser


def _convert_args(args: argparse.Namespace) -> Converted:
    return convert_vid2burn_adl(args.skeletons, args.labels, args.split_file)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the converter; returns the exit code (0 ok, 2 bad input)."""
    return run_converter(build_parser(), _convert_args, argv)
