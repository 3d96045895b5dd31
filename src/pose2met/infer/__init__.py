"""Using a trained model on users' own 2D keypoints: reading, windowed prediction, units, export.

Command-line entry points (:mod:`pose2met.infer.cli`): ``infer_main``, ``export_main``, ``viz_main``.
"""

from pose2met.infer.keypoints import KeypointError, Keypoints2D, clean_keypoints, coco_to_h36m, load_keypoints
from pose2met.infer.predict import (
    InferenceError,
    InferenceSettings,
    LoadedModel,
    load_inference_model,
    run_inference,
)
from pose2met.infer.units import Intrinsics, to_output_units
from pose2met.infer.windows import run_windows, stitch, window_starts

__all__ = [
    "InferenceError",
    "InferenceSettings",
    "Intrinsics",
    "KeypointError",
    "Keypoints2D",
    "LoadedModel",
    "clean_keypoints",
    "coco_to_h36m",
    "load_inference_model",
    "load_keypoints",
    "run_inference",
    "run_windows",
    "stitch",
    "to_output_units",
    "window_starts",
]
