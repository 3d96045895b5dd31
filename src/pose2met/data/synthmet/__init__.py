"""SynthMet: a generated dataset with 2D / 3D poses and energy labels for the same motions.

``generate_to_file(path, preset="default", seed=0, overwrite=False)`` writes a Pose2Met HDF5 file;
``generate(preset, seed)`` returns the arrays in memory; ``PRESETS`` lists the sizes; ``main``
is the command line (``python data_prep/synthmet.py``). See ``docs/synthmet.md``.
"""

from pose2met.data.synthmet.activities import ACTIVITIES, KNOWN, UNKNOWN, ActivitySpec
from pose2met.data.synthmet.cli import main
from pose2met.data.synthmet.energy import energy_rate, mechanical_power
from pose2met.data.synthmet.generate import PRESETS, Preset, SynthMetBundle, generate, generate_to_file

__all__ = [
    "ACTIVITIES",
    "KNOWN",
    "PRESETS",
    "UNKNOWN",
    "ActivitySpec",
    "Preset",
    "SynthMetBundle",
    "energy_rate",
    "generate",
    "generate_to_file",
    "main",
    "mechanical_power",
]
