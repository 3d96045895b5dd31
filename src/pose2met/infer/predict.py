"""Running a trained model on cleaned 2D keypoints: loading, normalization, flip, windows, decoding."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from pose2met.checks import is_positive_number
from pose2met.compat import OfficialWeightsError, load_official_stapformer
from pose2met.data.transforms import flip_pose, normalize_2d
from pose2met.infer.keypoints import Keypoints2D
from pose2met.infer.units import DEFAULT_BODY_HEIGHT_MM, Intrinsics, to_output_units
from pose2met.infer.windows import run_windows
from pose2met.lit.checkpoint import CheckpointError, load_model
from pose2met.models import PoseLifter
from pose2met.models.energy_bins import distribution_argmax, distribution_expectation, distribution_std
from pose2met.skeleton import JOINT_NAMES


class InferenceError(ValueError):
    """A model or setting that inference cannot use (one-line message for the command line)."""


class _OfficialAdapter(nn.Module):
    """Official :class:`PoseLifter` with the ``Pose2MetModel`` output dict."""

    def __init__(self, lifter: PoseLifter) -> None:
        super().__init__()
        self.lifter = lifter

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return {"pose_3d": self.lifter(x)}


@dataclass
class LoadedModel:
    """A model ready for inference.

    Attributes:
        model: ``x (B, T, 17, 3) -> {"pose_3d": (B, T, 17, 3), "kcal_logits": (B, K)}`` (heads present).
        window: frames per model call (the encoder's ``num_frames``).
        target_space: ``"camera"`` or ``"image25d"`` (space of ``pose_3d``).
        bin_centers: ``(K,)`` kcal/h bin centres, ``None`` without a calorie head.
        description: what was loaded, for messages.
    """

    model: nn.Module
    window: int
    target_space: str
    bin_centers: Tensor | None
    description: str

    @property
    def has_pose(self) -> bool:
        return isinstance(self.model, _OfficialAdapter) or getattr(self.model, "pose_head", None) is not None

    @property
    def has_kcal(self) -> bool:
        return self.bin_centers is not None

    @property
    def encoder(self) -> nn.Module:
        return _encoder(self.model)


def _encoder(model: nn.Module) -> nn.Module:
    return model.lifter.encoder if isinstance(model, _OfficialAdapter) else model.encoder


def load_inference_model(
    checkpoint: str | os.PathLike,
    official_config: str | os.PathLike | None = None,
    device: str = "cpu",
    fuse: bool = True,
) -> LoadedModel:
    """Load a Pose2Met checkpoint (or official STAPFormer weights with their YAML config) for 2D input.

    ``fuse`` folds the encoder's batch norms into neighbouring layers (same outputs up to ~1e-6,
    about 2x faster on CPU; see ``bench/inference.py``).

    Raises:
        InferenceError: unreadable file, or a model that cannot take 2D keypoints (3D-input task).
    """
    if official_config is not None:
        try:
            lifter = load_official_stapformer(checkpoint, official_config)
        except (OfficialWeightsError, RuntimeError, OSError) as err:
            raise InferenceError(f"{checkpoint}: cannot load official STAPFormer weights: {err}") from err
        model: nn.Module = _OfficialAdapter(lifter)
        space, centers, what = "image25d", None, "official STAPFormer weights"
    else:
        try:
            model, meta = load_model(checkpoint)
        except (CheckpointError, KeyError, TypeError) as err:
            raise InferenceError(f"cannot load checkpoint: {err}") from err
        if meta.get("input_kind") != "2d":
            raise InferenceError(
                f"{checkpoint}: this {meta.get('task')} checkpoint takes {meta.get('input_kind')} input "
                "(e.g. the 3d_input energy setting); `infer`, `export` and `viz` take 2D keypoints (x, y, "
                "confidence), use a 2D-input checkpoint"
            )
        space = str(meta.get("target_space", "camera"))
        head = model.calorie_head
        centers = None if head is None else head.bin_centers.detach().clone()
        what = f"{meta.get('task')} checkpoint (heads: {', '.join(model.heads)})"
    encoder = _encoder(model)
    if encoder.num_joints != 17 or encoder.dim_in != 3:
        raise InferenceError(
            f"{checkpoint}: model takes {encoder.num_joints} joints x {encoder.dim_in} channels; "
            "infer needs h36m17 joints with (x, y, confidence)"
        )
    model = model.eval()
    if fuse:  # folded in float64 on the CPU, before the move (some accelerators have no float64)
        encoder.fuse_for_inference()
    try:
        model = model.to(device)
    except (RuntimeError, AssertionError, TypeError) as err:
        raise InferenceError(f"--device {device}: cannot move the model there ({err})") from err
    if centers is not None:
        centers = centers.to(device)
    return LoadedModel(model, int(encoder.num_frames), space, centers, what)


def model_input(keypoints: Keypoints2D, width: float, height: float) -> np.ndarray:
    """Cleaned keypoints -> normalized model input ``(T, 17, 3)``: MotionBERT x, y and the score."""
    xy = normalize_2d(keypoints.xy.astype(np.float64), width, height)
    return np.concatenate([xy, keypoints.score[..., None]], axis=-1).astype(np.float32)


def make_predict_fn(loaded: LoadedModel, flip: bool = True):
    """``batch (B, W, 17, 3) -> {"pose_3d", "kcal_probs"}``, averaging the left/right flip if asked."""

    @torch.no_grad()
    def predict(batch: Tensor) -> dict[str, Tensor]:
        out = loaded.model(batch)
        result: dict[str, Tensor] = {}
        probs = out["kcal_logits"].float().softmax(-1) if "kcal_logits" in out else None
        pose = out.get("pose_3d")
        if flip:
            mirrored = loaded.model(flip_pose(batch))
            if pose is not None:
                pose = 0.5 * (pose + flip_pose(mirrored["pose_3d"]))
            if probs is not None:
                probs = 0.5 * (probs + mirrored["kcal_logits"].float().softmax(-1))
        if pose is not None:
            result["pose_3d"] = pose
        if probs is not None:
            result["kcal_probs"] = probs
        return result

    return predict


@dataclass
class InferenceSettings:
    """Settings of :func:`run_inference` (see ``pose2met infer --help``)."""

    image_size: tuple[float, float]
    intrinsics: Intrinsics | None = None
    fps: float | None = None
    stride: int | None = None
    batch_size: int = 8
    flip: bool = True
    root_depth_mm: float | None = None
    body_height_mm: float = DEFAULT_BODY_HEIGHT_MM


def _kcal_summary(probs: Tensor, weights: np.ndarray, centers: Tensor) -> dict[str, Any]:
    """Per-window and whole-sequence kcal/h from window distributions ``(N, K)``.

    The sequence distribution is the mixture of the window distributions weighted by their real
    (non-padded) frames; its expectation is ``kcal_per_hour``, its std ``kcal_per_hour_std``.
    """
    w = torch.as_tensor(weights, dtype=probs.dtype, device=probs.device)
    whole = (probs * w[:, None]).sum(0, keepdim=True) / w.sum()
    return {
        "window_kcal_per_hour": distribution_expectation(probs, centers).cpu().numpy(),
        "window_kcal_per_hour_std": distribution_std(probs, centers).cpu().numpy(),
        "kcal_per_hour": float(distribution_expectation(whole, centers)[0]),
        "kcal_per_hour_std": float(distribution_std(whole, centers)[0]),
        "kcal_per_hour_argmax": float(distribution_argmax(whole, centers)[0]),
    }


def run_inference(loaded: LoadedModel, keypoints: Keypoints2D, settings: InferenceSettings) -> dict[str, Any]:
    """Predict 3D joints and kcal/h for a whole keypoint sequence; returns the output record.

    Keys: ``joints_3d_mm`` or ``joints_3d_normalized`` ``(T, 17, 3)``, ``units``, ``joint_names``,
    ``fps``, ``keypoints_2d`` ``(T, 17, 3)`` (cleaned pixels + score), ``missing_frames`` ``(T,)``,
    ``window_start`` ``(N,)``; with a calorie head ``kcal_per_hour``, ``kcal_per_hour_std``,
    ``kcal_per_hour_argmax``, ``window_kcal_per_hour(_std)`` ``(N,)`` and, with ``fps``,
    ``total_kcal`` over ``T / fps`` seconds.
    """
    width, height = settings.image_size
    if not (is_positive_number(width) and is_positive_number(height)):
        raise InferenceError(
            f"--image-size: width and height must be positive finite numbers, got {width} x {height}"
        )
    if settings.fps is not None and not is_positive_number(settings.fps):
        raise InferenceError(f"--fps must be a positive finite number, got {settings.fps}")
    first = next(iter(loaded.model.parameters()))
    with np.errstate(over="ignore"):
        normalized = model_input(keypoints, width, height).astype(np.float32)
    if not np.isfinite(normalized).all():
        raise InferenceError(
            f"keypoints divided by --image-size {width:g} x {height:g} exceed float32: coordinates far "
            "outside the image, or a wrong --image-size"
        )
    x = torch.from_numpy(normalized).to(device=first.device, dtype=first.dtype)
    try:
        out = run_windows(
            make_predict_fn(loaded, settings.flip), x, loaded.window, settings.stride, settings.batch_size
        )
    except ValueError as err:
        raise InferenceError(str(err)) from err
    t = keypoints.num_frames
    record: dict[str, Any] = {
        "joint_names": list(JOINT_NAMES),
        "fps": float(settings.fps) if settings.fps is not None else float("nan"),
        "num_frames": t,
        "image_size": np.asarray([width, height], dtype=np.float32),
        "keypoints_2d": np.concatenate([keypoints.xy, keypoints.score[..., None]], -1).astype(np.float32),
        "missing_frames": keypoints.missing_frames.astype(bool),
        "window_start": out.starts.astype(np.int64),
        "window_frames": out.real_frames.astype(np.int64),
    }
    units: list[str] = []
    if out.pose is not None:
        metric = to_output_units(
            out.pose.float().cpu().numpy(),
            loaded.target_space,
            width,
            settings.intrinsics,
            settings.root_depth_mm,
            settings.body_height_mm,
        )
        key = "joints_3d_mm" if metric.in_mm else "joints_3d_normalized"
        record[key] = metric.joints.astype(np.float32)
        units.append(f"{key}: {metric.units}")
        if metric.root_depth_mm is not None:
            record["root_depth_mm"] = metric.root_depth_mm
    if out.kcal_probs is not None and loaded.bin_centers is not None:
        record.update(_kcal_summary(out.kcal_probs, out.real_frames, loaded.bin_centers))
        units.append(
            "kcal_per_hour: kcal/h (expectation of the predicted distribution; *_std its standard "
            "deviation; *_argmax the most probable bin)"
        )
        if settings.fps is not None:
            record["total_kcal"] = record["kcal_per_hour"] * t / settings.fps / 3600.0
            units.append(f"total_kcal: kcal over the clip ({t} frames at {settings.fps:g} fps)")
    units.append("keypoints_2d: pixels (x, y) and confidence, h36m17 order, after filling gaps")
    record["units"] = "; ".join(units)
    check_finite_outputs(record)
    return record


def check_finite_outputs(record: dict[str, Any]) -> None:
    """Refuse to write inf/NaN results (an extreme --fps, --root-depth or --body-height overflows)."""
    for key in ("joints_3d_mm", "joints_3d_normalized", "root_depth_mm", "kcal_per_hour", "total_kcal"):
        if key in record and not np.isfinite(np.asarray(record[key], dtype=np.float64)).all():
            raise InferenceError(
                f"{key} is not finite: check --image-size, --fps, --intrinsics, --root-depth and "
                "--body-height for extreme values"
            )
