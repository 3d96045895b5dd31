"""Loggers: W&B offline by default (sync later with ``wandb sync``), CSV when W&B is turned off."""

from __future__ import annotations

import os
from typing import Any

from lightning.pytorch.loggers import WandbLogger


class Pose2MetWandbLogger(WandbLogger):
    """WandbLogger that stays offline unless asked: ``online=True`` or ``WANDB_MODE=online``.

    Args:
        name: run name (the recipe, e.g. ``stapformer-s_synthmet-27f``).
        project: W&B project.
        save_dir: where the offline run folder goes (``<save_dir>/wandb/offline-run-*``).
        group: run group (ablation tables use one group per table).
        online: force online/offline; None reads ``WANDB_MODE`` (default offline).
        log_model: upload checkpoints as artifacts (online runs).
        tags: run tags.
    """

    def __init__(
        self,
        name: str | None = None,
        project: str = "pose2met",
        save_dir: str = "runs",
        group: str | None = None,
        online: bool | None = None,
        log_model: bool = False,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        if online is None:
            online = os.environ.get("WANDB_MODE", "offline").lower() == "online"
        os.makedirs(save_dir, exist_ok=True)
        super().__init__(
            name=name,
            project=project,
            save_dir=save_dir,
            group=group,
            offline=not online,
            log_model=log_model and online,
            tags=tags,
            **kwargs,
        )
