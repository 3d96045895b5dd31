"""Convert Vid2Burn-ADL into the Pose2Met HDF5 format; run with --help (details: docs/datasets.md)."""

from __future__ import annotations

import sys

from pose2met.data.prep.vid2burn_adl import main

if __name__ == "__main__":
    sys.exit(main())
