"""Checkpoint helpers: rebuild metadata, safe (``weights_only``) loading, partial initialization."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import nn

from pose2met.checks import nonfinite_tensors
from pose2met.compat.official import (
    OfficialWeightsError,
    convert_official_state_dict,
    official_config_of,
    official_state_dict,
)
from pose2met.models import CalorieHead, Pose2MetModel, PoseHead, STAPFormer
from pose2met.models.energy_bins import centers_mismatch
from pose2met.models.heads import BIN_CENTERS
from pose2met.safe_load import load_torch_file

if TYPE_CHECKING:
    from pose2met.lit.task import Pose2MetTask

#: Key under which a Pose2Met checkpoint stores what is needed to rebuild the bare model.
CHECKPOINT_META_KEY = "pose2met"
MODEL_PREFIX = "model."
#: Where the official pose head (``head.*``) goes in a :class:`Pose2MetModel`.
OFFICIAL_HEAD_AS = "pose_head."


class CheckpointError(ValueError):
    """A checkpoint file cannot be read or does not fit what was asked of it."""


def model_meta(task: Pose2MetTask) -> dict[str, Any]:
    """Plain-data description of ``task.model`` (encoder config, heads, input) for rebuilding it."""
    head = task.model.calorie_head
    return {
        "task": type(task).__name__,
        "encoder": dict(task.model.encoder.config),
        "pose_head": task.model.pose_head is not None,
        "calorie_head": None
        if head is None
        else {
            "num_bins": int(head.num_bins),
            "kcal_min": float(head.kcal_min),
            "kcal_max": float(head.kcal_max),
            "use_pose_features": bool(head.use_pose_features),
        },
        "input_kind": task.input_kind,
        "target_space": getattr(task, "target_space", "camera"),
        "kcal_sigma": float(task.kcal_sigma),
    }


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; clear errors for missing or corrupted files."""
    from pose2met.lit.energy import TrainingStage  # deferred: lit.energy imports this module's users
    from pose2met.lit.losses import PoseLossWeights

    # the hyperparameters of a task hold these dataclasses (the unified schedule, the loss weights)
    ckpt = load_torch_file(path, CheckpointError, allowed_globals=[TrainingStage, PoseLossWeights])
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: expected a dict checkpoint, got {type(ckpt).__name__}")
    return ckpt


def model_state_dict(ckpt: dict[str, Any], path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The bare-model weights of a Lightning checkpoint (``model.`` prefix removed), or of a plain
    state dict of the model (``torch.save(task.model.state_dict())``, or of the task)."""
    state = ckpt.get("state_dict")
    if not isinstance(state, dict) and is_plain_model_state(ckpt):
        state = {k if k.startswith(MODEL_PREFIX) else MODEL_PREFIX + k: v for k, v in ckpt.items()}
    if not isinstance(state, dict):
        raise CheckpointError(
            f"{path}: neither a Pose2Met/Lightning checkpoint (no 'state_dict' entry) nor a state dict of "
            "a Pose2Met model (tensors under 'encoder.*') or official STAPFormer weights"
        )
    return {
        k[len(MODEL_PREFIX) :]: v
        for k, v in state.items()
        if isinstance(k, str) and k.startswith(MODEL_PREFIX)
    }


def is_plain_model_state(content: Mapping[Any, Any]) -> bool:
    """Whether ``content`` is a bare state dict of a :class:`Pose2MetModel` (or of its task)."""
    keys = [k for k in content if isinstance(k, str)]
    return (
        len(keys) == len(content) > 0
        and all(isinstance(v, torch.Tensor) for v in content.values())
        and any(k.startswith(("encoder.", MODEL_PREFIX + "encoder.")) for k in keys)
    )


def describe_mismatch(
    own: Mapping[str, torch.Tensor], given: Mapping[str, Any], limit: int = 3
) -> str | None:
    """Why ``given`` cannot be loaded strictly into a module whose state dict is ``own``; None if it can.

    One line: the counts of missing keys, unexpected keys, shape differences and energy bins of another
    range (the values a strict load into :class:`CalorieHead` refuses), each with examples.
    """
    missing = [k for k in own if k not in given]
    unexpected = [k for k in given if k not in own]
    shapes = [
        f"{k} {tuple(given[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in given and isinstance(given[k], torch.Tensor) and given[k].shape != own[k].shape
    ]
    bins = [
        f"{k} [{float(given[k].min()):g}, {float(given[k].max()):g}] vs [{float(own[k].min()):g}, "
        f"{float(own[k].max()):g}] kcal/h (another kcal_range or num_bins)"
        for k in own
        if k.endswith(BIN_CENTERS) and k in given and isinstance(given[k], torch.Tensor)
        and given[k].shape == own[k].shape and centers_mismatch(given[k], own[k]) is not None
    ]  # fmt: skip
    parts = [
        f"{len(items)} {what} (e.g. {', '.join(items[:limit])})"
        for what, items in (
            ("missing key(s)", missing),
            ("unexpected key(s)", unexpected),
            ("shape difference(s), file vs model", shapes),
            ("energy bin difference(s), file vs model", bins),
        )
        if items
    ]
    return "; ".join(parts) or None


def official_weights_for(
    model: nn.Module, official: Mapping[str, Any], path: str | os.PathLike, input_kind: str = "2d"
) -> dict[str, Any]:
    """Official STAPFormer weights (:func:`~pose2met.compat.official_state_dict`) as ``model``'s
    state-dict entries: the encoder and the official head as the pose head. The architecture is
    read from ``model.encoder``'s config; the two settings the weights cannot show (``num_heads``,
    ``stap_stride``) are taken from it as they are, and named in a log line."""
    if input_kind != "2d":
        raise CheckpointError(
            f"{path}: official STAPFormer weights take 2D keypoints (x, y, confidence), this task's input "
            f"is {input_kind}"
        )
    encoder_config = model.encoder.config  # type: ignore[union-attr]
    try:
        weights = convert_official_state_dict(official, official_config_of(encoder_config))
    except OfficialWeightsError as err:
        raise CheckpointError(
            f"{path}: official STAPFormer weights that do not fit this config's encoder ({err}); set the "
            "encoder's settings (--model.init_args.encoder.init_args.*, data.num_frames) to the official "
            "config's, with joint_gcn false"
        ) from None
    rank_zero_info(
        f"init_from {path}: official STAPFormer weights, converted for num_heads "
        f"{encoder_config['num_heads']} and STAP stride {tuple(encoder_config['stap_stride'])} (the weights "
        "do not record these two: they must be the official config's)"
    )
    head = len("head.")
    ours = {(OFFICIAL_HEAD_AS + k[head:] if k.startswith("head.") else k): v for k, v in weights.items()}
    for key, value in model.state_dict().items():  # older official files lack the batch counters
        if key.startswith("encoder.") and key.endswith("num_batches_tracked"):
            ours.setdefault(key, value)
    return ours


def load_weights_into(model: nn.Module, path: str | os.PathLike, input_kind: str = "2d") -> list[str]:
    """Copy every weight of ``path`` whose name and shape match into ``model``; return the loaded names.

    Used to start the energy stage from an HPE checkpoint: the encoder (and pose head) transfer,
    a calorie head absent from the checkpoint keeps its fresh initialization. Energy bin centres are
    settings of the new task (its ``kcal_range``), never taken from the file. Weights saved by the
    official STAPFormer code are converted (:func:`official_weights_for`; ``input_kind``: the task's).
    """
    content = read_checkpoint(path)
    official = official_state_dict(content)
    source = (
        model_state_dict(content, path)
        if official is None
        else official_weights_for(model, official, path, input_kind)
    )
    target = model.state_dict()
    matched = {
        k: v
        for k, v in source.items()
        if k in target and target[k].shape == v.shape and not k.endswith(BIN_CENTERS)  # the new task's bins
    }
    encoder = {k: v for k, v in target.items() if k.startswith("encoder.")}
    unfit = [k for k in encoder if k not in matched]
    if unfit:  # a partial encoder would train mostly from scratch while looking initialized
        examples = ", ".join(
            f"'{k}' {tuple(encoder[k].shape)} here vs "
            + (f"{tuple(source[k].shape)}" if k in source else "absent")
            + " in the file"
            for k in unfit[:2]
        )
        raise CheckpointError(
            f"{path}: {len(unfit)} of the {len(encoder)} encoder tensors of this model do not fit the "
            f"file ({examples}); init_from needs an encoder of the same architecture and num_frames"
        )
    model.load_state_dict(matched, strict=False)
    return sorted(matched)


def build_model(meta: dict[str, Any]) -> Pose2MetModel:
    """A fresh :class:`Pose2MetModel` from :func:`model_meta` output."""
    encoder = STAPFormer(**meta["encoder"])
    head = meta.get("calorie_head")
    return Pose2MetModel(
        encoder,
        pose_head=PoseHead(encoder.dim_rep) if meta.get("pose_head") else None,
        calorie_head=CalorieHead(encoder.dim_rep, **head) if head else None,
    )


def load_model(path: str | os.PathLike) -> tuple[Pose2MetModel, dict[str, Any]]:
    """Rebuild the trained model of a Pose2Met checkpoint (eval mode) and return it with its metadata."""
    ckpt = read_checkpoint(path)
    meta = ckpt.get(CHECKPOINT_META_KEY)
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: no '{CHECKPOINT_META_KEY}' entry; not written by a Pose2Met task")
    try:
        model = build_model(meta)
    except (ValueError, TypeError, KeyError) as err:  # a hand-edited or foreign entry
        detail = f"missing key {err}" if isinstance(err, KeyError) else str(err)
        raise CheckpointError(
            f"{path}: its stored model settings (the '{CHECKPOINT_META_KEY}' entry) are invalid: {detail}"
        ) from err
    state = model_state_dict(ckpt, path)
    problem = describe_mismatch(model.state_dict(), state)
    if problem:
        raise CheckpointError(f"{path}: weights do not fit the stored architecture: {problem}")
    broken = nonfinite_tensors(state)
    if broken:
        raise CheckpointError(
            f"{path}: {len(broken)} weight tensor(s) hold NaN or inf (e.g. '{broken[0]}'); the run that "
            "wrote it diverged"
        )
    model.load_state_dict(state)
    return model.eval(), meta
