"""Generate SynthMet (see docs/synthmet.md).

``python data_prep/synthmet.py --preset default --seed 0 --output data/synthmet-default-seed0.h5``
"""

from __future__ import annotations

import sys

from pose2met.data.synthmet import main

if __name__ == "__main__":
    sys.exit(main())
