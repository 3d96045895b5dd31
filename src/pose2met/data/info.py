"""``pose2met data info FILE``: a summary of a Pose2Met HDF5 file (validated on open)."""

from __future__ import annotations

import argparse
import sys
from collections import Counter

import numpy as np

from pose2met.data.h5format import FRAME_ARRAYS, SEQUENCE_ARRAYS, SPLITS, SchemaError
from pose2met.data.reader import Pose2MetFile


def _names(values: np.ndarray, limit: int = 20) -> str:
    counts = Counter(str(v) for v in values)
    names = sorted(counts)
    shown = ", ".join(names[:limit]) + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")
    return f"{len(names)} ({shown})"


def summary(f: Pose2MetFile) -> list[str]:
    """Lines describing ``f``: name, version, counts, splits, labels and optional arrays."""
    seq = f.sequences
    lengths = seq["length"]
    lines = [
        f"file:       {f.path}",
        f"dataset:    {f.dataset}",
        f"format:     {f.attrs['format']} version {f.attrs['version']}, skeleton {f.attrs['skeleton']}, "
        f"{f.fps:g} fps, units {f.attrs.get('units', '?')}",
        f"sequences:  {f.num_sequences}",
        f"frames:     {f.num_frames} (in sequences: {int(lengths.sum())}; "
        f"length min/mean/max {int(lengths.min())}/{lengths.mean():.1f}/{int(lengths.max())})"
        if f.num_sequences
        else f"frames:     {f.num_frames}",
        f"subjects:   {_names(seq['subject'])}",
        f"actions:    {_names(seq['action'])}",
        "cameras:    "
        + ", ".join(f"{c} ({cam.width:g}x{cam.height:g}, f={cam.fx:g})" for c, cam in f.cameras.items()),
        "splits:",
    ]
    for split in SPLITS:
        idx = f.split_indices(split)
        lines.append(
            f"  {split:<6} {len(idx):>7} sequences {int(lengths[idx].sum()):>10} frames"
            f"  subjects {_names(seq['subject'][idx], limit=8)}"
        )
    if f.has_kcal:
        kcal = seq["kcal"]
        lines.append(f"kcal/h:     min {kcal.min():.1f}  mean {kcal.mean():.1f}  max {kcal.max():.1f}")
        if "activity_set" in seq:
            for name in ("known", "unknown"):
                sel = seq["activity_set"] == name
                if sel.any():
                    acts = _names(seq["action"][sel], 12)
                    lines.append(
                        f"  {name:<8} {int(sel.sum())} sequences, activities {acts}, "
                        f"kcal/h {kcal[sel].min():.1f}..{kcal[sel].max():.1f}"
                    )
    else:
        lines.append("kcal/h:     no labels")
    optional_frames = [k for k, s in FRAME_ARRAYS.items() if not s.required]
    optional_seq = [k for k, s in SEQUENCE_ARRAYS.items() if not s.required]
    present = [f"/frames/{k}" for k in optional_frames if f.has(k)]
    present += [f"/sequences/{k}" for k in optional_seq if k in seq]
    absent = [f"/frames/{k}" for k in optional_frames if not f.has(k)]
    absent += [f"/sequences/{k}" for k in optional_seq if k not in seq]
    lines.append(f"optional:   present: {', '.join(present) or 'none'}")
    lines.append(f"            absent:  {', '.join(absent) or 'none'}")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Print the summary of one file; exit code 2 (and a one-line error) for a missing or invalid file."""
    parser = argparse.ArgumentParser(prog="pose2met data info", description=__doc__)
    parser.add_argument("file", help="Pose2Met HDF5 file")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, or a usage error (argparse already printed it)
        return int(exit_.code or 0)
    try:
        f = Pose2MetFile(args.file)
    except (FileNotFoundError, SchemaError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print("\n".join(summary(f)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
