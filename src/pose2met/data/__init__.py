"""Data: the Pose2Met HDF5 format, clip datasets, DataModules and the SynthMet generator.

Exports are resolved lazily (``from pose2met.data import Pose2MetDataModule`` imports Lightning only
then), so ``pose2met.data.h5format`` and the converters stay light to import.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Pose2MetFile": "pose2met.data.reader",
    "Camera": "pose2met.data.reader",
    "ClipTable": "pose2met.data.clips",
    "train_clips": "pose2met.data.clips",
    "cover_clips": "pose2met.data.clips",
    "centered_clips": "pose2met.data.clips",
    "ClipDataset": "pose2met.data.datasets",
    "Pose2MetDataModule": "pose2met.data.datamodule",
    "synthmet_path": "pose2met.data.datamodule",
    "normalize_2d": "pose2met.data.transforms",
    "denormalize_2d": "pose2met.data.transforms",
    "camera_target": "pose2met.data.transforms",
    "image25d_target": "pose2met.data.transforms",
    "target_to_mm": "pose2met.data.transforms",
    "flip_pose": "pose2met.data.transforms",
    "TARGET_SPACES": "pose2met.data.transforms",
    "SchemaError": "pose2met.data.h5format",
    "write_dataset": "pose2met.data.h5format",
}
__all__ = [
    "Camera",
    "ClipDataset",
    "ClipTable",
    "Pose2MetDataModule",
    "Pose2MetFile",
    "SchemaError",
    "TARGET_SPACES",
    "camera_target",
    "centered_clips",
    "cover_clips",
    "denormalize_2d",
    "flip_pose",
    "image25d_target",
    "normalize_2d",
    "synthmet_path",
    "target_to_mm",
    "train_clips",
    "write_dataset",
]

if TYPE_CHECKING:
    from pose2met.data.clips import ClipTable, centered_clips, cover_clips, train_clips
    from pose2met.data.datamodule import Pose2MetDataModule, synthmet_path
    from pose2met.data.datasets import ClipDataset
    from pose2met.data.h5format import SchemaError, write_dataset
    from pose2met.data.reader import Camera, Pose2MetFile
    from pose2met.data.transforms import (
        TARGET_SPACES,
        camera_target,
        denormalize_2d,
        flip_pose,
        image25d_target,
        normalize_2d,
        target_to_mm,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pose2met.data' has no attribute '{name}'")
    return getattr(import_module(module), name)
