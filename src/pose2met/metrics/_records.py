"""Base class for metrics that keep one float64 record per frame or sample (``cat`` states)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat


class RecordMetric(Metric):
    """A ``Metric`` whose states are 1-D float64 columns, concatenated over updates and ranks.

    Per-record columns are needed where the result is not a sum (de-duplication of frames,
    per-group means, rank correlations). Integer ids are stored as float64 (exact below 2**53).
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better: bool | None = None

    def __init__(self, columns: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._columns = columns
        for name in columns:
            self.add_state(name, default=[], dist_reduce_fx="cat")

    @property
    def dtype(self) -> torch.dtype:
        """float64: torchmetrics gives a rank that saw no data an empty state of this dtype, which
        must match the float64 columns of the other ranks when they are gathered."""
        return torch.float64

    def _append(self, **columns: Tensor) -> None:
        """Append one batch of records: every column a 1-D tensor of the same length."""
        for name in self._columns:
            getattr(self, name).append(columns[name].detach().to(torch.float64).reshape(-1))

    def _records(self) -> dict[str, Tensor]:
        """Every column concatenated ``(N,)`` (empty float64 tensors when nothing was recorded)."""
        out = {}
        for name in self._columns:
            value = getattr(self, name)
            if isinstance(value, list):
                value = (
                    dim_zero_cat(value) if value else torch.zeros(0, dtype=torch.float64, device=self.device)
                )
            out[name] = value.to(torch.float64)
        return out
