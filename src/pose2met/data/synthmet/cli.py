"""``python data_prep/synthmet.py --preset NAME --seed N --output FILE.h5 [--overwrite]``."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from pose2met.data.argflags import describe_os_error, output_file, output_problem
from pose2met.data.interrupts import Terminated, interrupted_message, sigterm_raises
from pose2met.data.synthmet.generate import PRESETS, generate_to_file

#: Largest ``--seed``: NumPy takes any non-negative integer, the seed attribute of the file an int64.
MAX_SEED = 2**63 - 1


def seed_value(text: str) -> int:
    """argparse ``type`` of ``--seed``: an integer in ``0..MAX_SEED``."""
    try:
        seed = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not 0 <= seed <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected an integer in 0..{MAX_SEED} (2**63 - 1), got {seed}")
    return seed


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="synthmet",
        description="Generate SynthMet: 2D/3D pose sequences with kcal/h labels in the Pose2Met format.",
    )
    parser.add_argument("--preset", default="default", choices=sorted(PRESETS), help="dataset size")
    parser.add_argument(
        "--seed", type=seed_value, default=0, help=f"generator seed 0..{MAX_SEED} (same seed -> same file)"
    )
    parser.add_argument("--output", required=True, type=output_file, help="output .h5 file")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the generator CLI; returns the exit status (2 when the output exists, like ``data_prep/``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    problem = output_problem(args.output, parser, args)
    if problem:
        print(f"synthmet: error: {problem}", file=sys.stderr)
        return 2
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
