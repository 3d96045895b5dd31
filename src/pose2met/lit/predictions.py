"""``pose2met predict`` output: the model's outputs for every predicted clip, saved as one ``.npz``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.utilities import rank_zero_info

from pose2met.infer.outputs import write_result
from pose2met.lit.callbacks import run_dir
from pose2met.models.energy_bins import distribution_argmax, distribution_expectation

#: Clip fields copied from each batch next to the outputs, to tell which clip and frames a row is.
CLIP_FIELDS = ("sequence", "subject", "action", "camera", "sequence_index", "frame_index", "valid", "kcal")


class PredictionFile(BasePredictionWriter):
    """Collects ``predict_step`` outputs and writes ``predictions.npz`` into the run folder.

    The file holds one row per clip: every output of the model (``pose_3d (N, T, 17, 3)`` in the
    model's target space, ``kcal_logits (N, K)``, ...), with a calorie head the kcal/h read from the
    distribution (``kcal_argmax``, ``kcal_expectation``, ``(N,)``), and the clip fields of
    :data:`CLIP_FIELDS` the data provide (``kcal``: the label). Under DDP each process writes
    ``predictions-rank{R}.npz`` with its share.
    """

    def __init__(self) -> None:
        super().__init__(write_interval="batch")
        self._rows: dict[str, list[np.ndarray]] = defaultdict(list)

    def write_on_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, prediction: Any,
        batch_indices: Sequence[int] | None, batch: Any, batch_idx: int, dataloader_idx: int,
    ) -> None:  # fmt: skip
        if not isinstance(prediction, Mapping):
            return
        for name, value in prediction.items():
            if isinstance(value, torch.Tensor):
                self._rows[name].append(value.detach().float().cpu().numpy())
        head = getattr(getattr(pl_module, "model", None), "calorie_head", None)
        logits = prediction.get("kcal_logits")
        if head is not None and isinstance(logits, torch.Tensor):
            probs, centers = logits.detach().float().softmax(-1), head.bin_centers.float()
            for name, read in (
                ("kcal_argmax", distribution_argmax),
                ("kcal_expectation", distribution_expectation),
            ):
                self._rows[name].append(read(probs, centers).cpu().numpy())
        for name in CLIP_FIELDS:
            value = batch.get(name) if isinstance(batch, Mapping) else None
            if isinstance(value, torch.Tensor):
                self._rows[name].append(value.detach().cpu().numpy())
            elif isinstance(value, (list, tuple)):
                self._rows[name].append(np.asarray(value, dtype=str))

    def on_predict_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        rows, self._rows = self._rows, defaultdict(list)
        if not rows or trainer.sanity_checking:
            return
        name = "predictions.npz" if trainer.world_size == 1 else f"predictions-rank{trainer.global_rank}.npz"
        path = run_dir(trainer) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {key: np.concatenate(parts) for key, parts in rows.items()}
        write_result(path, arrays)
        count = len(next(iter(arrays.values())))
        rank_zero_info(f"[pose2met] predict: {count} clips -> {path} (keys: {', '.join(sorted(arrays))})")
