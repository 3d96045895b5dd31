"""Convert MPI-INF-3DHP into the Pose2Met HDF5 format; run with --help (details: docs/datasets.md)."""

from __future__ import annotations

import sys

from pose2met.data.prep.mpi_inf_3dhp import main

if __name__ == "__main__":
    sys.exit(main())
