"""Dataset clips for figures: evenly spaced samples of a split, predicted vs ground truth in mm."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch.utils.data import default_collate

from pose2met.data.datamodule import Pose2MetDataModule
from pose2met.data.h5format import SchemaError
from pose2met.data.transforms import target_to_mm
from pose2met.infer.predict import InferenceError, LoadedModel, make_predict_fn


def dataset_batch(
    path: str | os.PathLike, split: str, num: int, window: int, target_space: str
) -> dict[str, Any]:
    """``num`` clips of ``window`` frames spread evenly over ``split`` of a Pose2Met file, collated.

    Raises:
        InferenceError: unreadable file, unknown/empty split.
    """
    if num < 1:
        raise InferenceError(f"--num must be >= 1, got {num}")
    try:
        dm = Pose2MetDataModule(
            path=str(path), num_frames=window, test_split=split, target_space=target_space,  # type: ignore[arg-type]
            eval_windows="cover", batch_size=num,
        )  # fmt: skip
        dm.setup("test")
        dataset = dm.datasets["test"]
        picks = np.unique(np.linspace(0, len(dataset) - 1, min(num, len(dataset))).round().astype(int))
        return default_collate([dataset[int(i)] for i in picks])
    except (SchemaError, OSError, ValueError, KeyError) as err:
        raise InferenceError(f"--data {path}: {err}") from err


@torch.no_grad()
def predict_vs_truth(
    loaded: LoadedModel, batch: dict[str, Any], flip: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Predicted and ground-truth root-relative joints in mm, both ``(B, T, 17, 3)``."""
    if not loaded.has_pose:
        raise InferenceError("viz compare needs a model with a pose head")
    if "target_3d" not in batch:
        raise InferenceError("viz compare needs a data file with 3D ground truth (/frames/joints_3d)")
    param = next(loaded.model.parameters())
    x = batch["input_2d"].to(device=param.device, dtype=param.dtype)
    pred = make_predict_fn(loaded, flip)(x)["pose_3d"].float().cpu()
    pred = pred - pred[..., :1, :]
    pred_mm = target_to_mm(pred, batch, loaded.target_space)
    gt_mm = target_to_mm(batch["target_3d"].float(), batch, loaded.target_space)
    return pred_mm.numpy(), gt_mm.numpy()
