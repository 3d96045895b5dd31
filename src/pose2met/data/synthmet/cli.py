"""``python data_prep/synthmet.py --preset NAME --seed N --output FILE.h5 [--overwrite]``."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from pose2met.data.argflags import describe_os_error
from pose2met.data.interrupts import Terminated, interrupted_message, sigterm_raises
from pose2met.data.synthmet.generate import PRESETS, generate_to_file


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="synthmet",
        description="Generate SynthMet: 2D/3D pose sequences with kcal/h labels in the Pose2Met format.",
    )
    parser.add_argument("--preset", default="default", choices=sorted(PRESETS), help="dataset size")
    parser.add_argument("--seed", type=int, default=0, help="generator seed (same seed -> same file)")
    parser.add_argument("--output", required=True, help="output .h5 file")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the generator CLI; returns the exit status (2 when the output exists, like ``data_prep/``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        with sigterm_raises():
            path = generate_to_file(args.output, preset=args.preset, seed=args.seed, overwrite=args.overwrite)
    except OSError as err:  # FileExistsError included
        print(f"synthmet: error: {describe_os_error(err, parser, args)}", file=sys.stderr)
        return 2
    except (Terminated, KeyboardInterrupt) as err:
        text, code = interrupted_message(err, args.output)
        print(f"synthmet: {text}", file=sys.stderr)
        return code
    seconds = time.perf_counter() - start
    print(f"synthmet: wrote {path} (preset {args.preset}, seed {args.seed}) in {seconds:.1f} s")
    return 0
