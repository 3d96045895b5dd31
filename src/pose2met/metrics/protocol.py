"""How pose results are reported: the Human3.6M and MPI-INF-3DHP protocols.

Both aggregators score frames of evaluation clips ``(B, T, J, 3)`` and count each frame once:
records are keyed by the global ``frame_index``; a frame seen in several clips (overlapping
clips, or clips split over DDP ranks) gets the mean of its errors, as in MotionBERT's evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torchmetrics.utilities import rank_zero_warn

from pose2met.metrics._checks import check_finite_result, check_labels, check_mask, check_pose_pair, label_ids
from pose2met.metrics._records import RecordMetric
from pose2met.metrics.functional.pose import (
    auc_3dhp_per_frame,
    mpjpe_per_frame,
    p_mpjpe_per_frame,
    pck_3dhp_per_frame,
)

#: The 15 Human3.6M actions (MotionBERT / VideoPose3D names).
H36M_ACTIONS: tuple[str, ...] = (
    "Directions", "Discussion", "Eating", "Greeting", "Phoning", "Photo", "Posing", "Purchases",
    "Sitting", "SittingDown", "Smoking", "Waiting", "WalkDog", "Walking", "WalkTogether",
)  # fmt: skip
#: Sequences the MotionBERT protocol skips, as (subject, sequence name) pairs.
MOTIONBERT_H36M_EXCLUDE: tuple[tuple[str, str], ...] = (
    ("S9", "act_05_subact_02"),
    ("S9", "act_10_subact_02"),
    ("S9", "act_13_subact_01"),
)


class _FrameProtocol(RecordMetric):
    """Shared part: input checks, per-frame records ``(frame_index, group, values...)``, de-duplication."""

    _group_kind = "group"

    def __init__(
        self, groups: Sequence[str], values: tuple[str, ...], root_align: bool, **kwargs: Any
    ) -> None:
        if isinstance(groups, str) or len(groups) == 0 or len(set(groups)) != len(groups):
            raise ValueError(
                f"{type(self).__name__}: expected a non-empty list of distinct names, got {groups!r}"
            )
        super().__init__(("frame_index", "group", *values), **kwargs)
        self.group_names = tuple(str(g) for g in groups)
        self._group_ids = {g: i for i, g in enumerate(self.group_names)}
        self.root_align = root_align

    def _frame_mask(self, pred: Tensor, target: Tensor, frame_index: Tensor, valid: Tensor) -> Tensor:
        """Check the batch shapes; return the ``(B, T)`` mask of scored frames on ``pred``'s device."""
        where = f"{type(self).__name__}.update"
        check_pose_pair(pred, target, where, min_ndim=4, max_ndim=4)
        bt = tuple(pred.shape[:2])
        if not isinstance(frame_index, Tensor) or frame_index.dtype not in (torch.int32, torch.int64):
            raise TypeError(f"{where}: `frame_index` must be an int64 tensor of shape {bt}")
        if tuple(frame_index.shape) != bt:
            raise ValueError(f"{where}: `frame_index` must have shape {bt}, got {tuple(frame_index.shape)}")
        mask = check_mask(valid, bt, "valid", where).to(pred.device)
        if bool((mask & (frame_index.to(pred.device) < 0)).any()):
            raise ValueError(f"{where}: a frame marked valid has frame_index -1 (padding)")
        return mask

    def _append_frames(
        self, mask: Tensor, frame_index: Tensor, clip_group: list[int], **values: Tensor
    ) -> None:
        """Record the masked frames: their frame index, the group of their clip and their values."""
        group = torch.tensor(clip_group, dtype=torch.float64, device=mask.device)[:, None].expand(mask.shape)
        self._append(frame_index=frame_index.to(mask.device)[mask], group=group[mask], **values)

    def _dedup(self) -> tuple[Tensor, dict[str, Tensor]]:
        """Unique frames: their group id ``(F,)`` int64 and the mean of each value column ``(F,)``."""
        rec = self._records()
        frames = rec.pop("frame_index").long()
        group = rec.pop("group")
        if frames.numel() == 0:
            raise ValueError(f"{type(self).__name__}.compute: no frames were scored (no valid frames seen)")
        uniq, inverse, counts = torch.unique(frames, return_inverse=True, return_counts=True)
        lo = torch.full((len(uniq),), torch.inf, dtype=torch.float64, device=group.device)
        hi = torch.full_like(lo, -torch.inf)
        lo = lo.scatter_reduce(0, inverse, group, reduce="amin")
        hi = hi.scatter_reduce(0, inverse, group, reduce="amax")
        if bool((lo != hi).any()):
            bad = int(uniq[(lo != hi).nonzero()[0, 0]])
            raise ValueError(
                f"{type(self).__name__}.compute: frame_index {bad} was given with two different "
                f"{self._group_kind}s; frame indices must be global and unique per frame"
            )
        means = {
            name: torch.zeros(len(uniq), dtype=torch.float64, device=v.device).index_add_(0, inverse, v)
            / counts
            for name, v in rec.items()
        }
        return lo.long(), means

    def _group_means(self, group: Tensor, values: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Per-group frame counts ``(G,)`` and per-group means of each value ``(G,)``."""
        num = len(self.group_names)
        counts = torch.bincount(group, minlength=num).to(torch.float64)
        means = {
            name: torch.zeros(num, dtype=torch.float64, device=v.device).index_add_(0, group, v) / counts
            for name, v in values.items()
        }
        return counts, means


class H36MProtocol(_FrameProtocol):
    """Human3.6M P1/P2: per-action means, then the mean over actions; each frame counted once.

    ``update(pred_mm (B, T, J, 3), target_mm (B, T, J, 3), frame_index int64 (B, T), valid bool
    (B, T), action: list[str] (B), sequence: list[str] (B) | None, subject: list[str] (B) | None)``
    scores the valid frames (``frame_index`` is the global frame id, ``-1`` on padding).

    ``compute()`` returns ``mpjpe`` and ``p_mpjpe`` (mean over the actions seen of the per-action
    frame means, the Human3.6M protocol), ``mpjpe/<action>`` and ``p_mpjpe/<action>``, and the
    frame-pooled means ``mpjpe_pooled`` and ``p_mpjpe_pooled``. A frame seen several times (in
    overlapping clips or on several ranks) counts once, with the mean of its errors.

    Args:
        actions: the action names (e.g. :data:`H36M_ACTIONS`); an ``action`` not listed is an error.
        exclude: sequences not scored. Each entry is a sequence name (matched against ``sequence``)
            or a ``(subject, sequence name)`` pair (matched against ``subject`` and ``sequence``);
            :data:`MOTIONBERT_H36M_EXCLUDE` is the list of three S9 sequences that MotionBERT's
            evaluation skips. With ``exclude``, ``update`` needs ``sequence`` (and ``subject`` for
            pairs); the names must be spelled as the data give them (exact match).
        root_align: subtract the root joint before P1 (P2 is alignment-invariant).

    Example:
        >>> import torch
        >>> metric = H36MProtocol(actions=["Walking", "Eating"])
        >>> target = torch.zeros(2, 2, 17, 3); pred = target.clone(); pred[..., 1:, 0] = 17.0
        >>> pred[1, :, 1:, 0] = 34.0  # the Eating clip has twice the error
        >>> frames = torch.tensor([[0, 1], [2, -1]]); valid = frames >= 0
        >>> out = metric(pred, target, frames, valid, ["Walking", "Eating"])
        >>> float(out["mpjpe"]), float(out["mpjpe_pooled"])  # (16 + 32) / 2 and (16 + 16 + 32) / 3
        (24.0, 21.333333333333332)
    """

    _group_kind = "action"

    def __init__(
        self,
        actions: Sequence[str],
        exclude: Sequence[str | tuple[str, str]] | None = None,
        root_align: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(actions, ("p1", "p2"), root_align, **kwargs)
        self.exclude_sequences: frozenset[str] = frozenset()
        self.exclude_pairs: frozenset[tuple[str, str]] = frozenset()
        names, pairs = set(), set()
        for entry in exclude or ():
            if isinstance(entry, str):
                names.add(entry)
            elif isinstance(entry, Sequence) and len(entry) == 2 and all(isinstance(e, str) for e in entry):
                pairs.add((entry[0], entry[1]))
            else:
                raise ValueError(
                    f"H36MProtocol: each `exclude` entry must be a sequence name or a (subject, sequence) "
                    f"pair of strings, got {entry!r}"
                )
        self.exclude_sequences, self.exclude_pairs = frozenset(names), frozenset(pairs)

    @property
    def actions(self) -> tuple[str, ...]:
        return self.group_names

    def _keep_clips(
        self, batch: int, sequence: Sequence[str] | None, subject: Sequence[str] | None
    ) -> Tensor | None:
        where = "H36MProtocol.update"
        if not (self.exclude_sequences or self.exclude_pairs):
            return None
        sequence = check_labels(sequence, batch, "sequence", where)
        subject = check_labels(subject, batch, "subject", where)
        if sequence is None:
            raise ValueError(f"{where}: `exclude` was given, so `sequence` (names, one per clip) is needed")
        if self.exclude_pairs and subject is None:
            raise ValueError(f"{where}: `exclude` has (subject, sequence) pairs, so `subject` is needed")
        keep = [
            seq not in self.exclude_sequences
            and (subject is None or (subject[b], seq) not in self.exclude_pairs)
            for b, seq in enumerate(sequence)
        ]
        return torch.tensor(keep, dtype=torch.bool)

    def update(
        self,
        pred_mm: Tensor,
        target_mm: Tensor,
        frame_index: Tensor,
        valid: Tensor,
        action: Sequence[str],
        sequence: Sequence[str] | None = None,
        subject: Sequence[str] | None = None,
    ) -> None:
        """Score the valid, non-excluded frames of a batch of clips (shapes in the class docstring)."""
        where = "H36MProtocol.update"
        mask = self._frame_mask(pred_mm, target_mm, frame_index, valid)
        ids = label_ids(
            check_labels(action, mask.shape[0], "action", where, True), self._group_ids, "action", where
        )
        keep = self._keep_clips(mask.shape[0], sequence, subject)
        if keep is not None:
            mask = mask & keep.to(mask.device)[:, None]
        pred, target = pred_mm[mask], target_mm[mask]
        p1 = mpjpe_per_frame(pred, target, self.root_align)
        check_finite_result(p1, pred, target, where)  # also before the Procrustes SVD
        self._append_frames(mask, frame_index, ids, p1=p1, p2=p_mpjpe_per_frame(pred, target))

    def compute(self) -> dict[str, Tensor]:
        group, values = self._dedup()
        counts, means = self._group_means(group, values)
        seen = counts > 0
        if not bool(seen.all()):
            missing = [a for a, s in zip(self.actions, seen.tolist(), strict=True) if not s]
            rank_zero_warn(f"H36MProtocol: no frames of {missing}; mpjpe/p_mpjpe average the other actions")
        out = {
            "mpjpe": means["p1"][seen].mean(),
            "p_mpjpe": means["p2"][seen].mean(),
            "mpjpe_pooled": values["p1"].mean(),
            "p_mpjpe_pooled": values["p2"].mean(),
        }
        for i in seen.nonzero()[:, 0].tolist():
            out[f"mpjpe/{self.actions[i]}"] = means["p1"][i]
            out[f"p_mpjpe/{self.actions[i]}"] = means["p2"][i]
        return out


class MPI3DHPProtocol(_FrameProtocol):
    """MPI-INF-3DHP rows: PCK@150 mm, AUC (on the 14 scored joints) and MPJPE (all 17), in a row per
    test sequence (TS1..TS6) and the pooled "All" row; each valid frame counted once.

    ``update(pred_mm (B, T, J, 3), target_mm (B, T, J, 3), frame_index int64 (B, T), valid bool
    (B, T), sequence: list[str] (B))`` scores the frames with ``valid=True`` (the centre frame of
    each test window). ``compute()`` returns ``pck``, ``auc``, ``mpjpe`` (All: pooled over every
    scored frame) and ``pck/<seq>``, ``auc/<seq>``, ``mpjpe/<seq>`` for each sequence seen.

    Args:
        sequences: the test sequence names, e.g. ``["TS1", ..., "TS6"]``.
        root_align: subtract the root joint (pelvis) before scoring.

    Example:
        >>> import torch
        >>> metric = MPI3DHPProtocol(["TS1", "TS2"])
        >>> target = torch.zeros(2, 1, 17, 3); pred = target.clone(); pred[1, :, 1:, 0] = 160.0
        >>> frames, valid = torch.tensor([[0], [5]]), torch.ones(2, 1, dtype=torch.bool)
        >>> out = metric(pred, target, frames, valid, ["TS1", "TS2"])
        >>> float(out["pck"]), float(out["pck/TS1"]), float(out["pck/TS2"])
        (50.0, 100.0, 0.0)
    """

    _group_kind = "sequence"

    def __init__(self, sequences: Sequence[str], root_align: bool = True, **kwargs: Any) -> None:
        super().__init__(sequences, ("pck", "auc", "mpjpe"), root_align, **kwargs)

    @property
    def sequences(self) -> tuple[str, ...]:
        return self.group_names

    def update(
        self, pred_mm: Tensor, target_mm: Tensor, frame_index: Tensor, valid: Tensor, sequence: Sequence[str]
    ) -> None:
        """Score the valid frames of a batch of windows (shapes in the class docstring)."""
        where = "MPI3DHPProtocol.update"
        mask = self._frame_mask(pred_mm, target_mm, frame_index, valid)
        labels = check_labels(sequence, mask.shape[0], "sequence", where, True)
        ids = label_ids(labels, self._group_ids, "sequence", where)
        pred, target = pred_mm[mask], target_mm[mask]
        p1 = mpjpe_per_frame(pred, target, self.root_align)
        check_finite_result(p1, pred, target, where)  # PCK and AUC would count NaN as a miss
        self._append_frames(
            mask,
            frame_index,
            ids,
            pck=pck_3dhp_per_frame(pred, target, root_align=self.root_align),
            auc=auc_3dhp_per_frame(pred, target, root_align=self.root_align),
            mpjpe=p1,
        )

    def compute(self) -> dict[str, Tensor]:
        group, values = self._dedup()
        counts, means = self._group_means(group, values)
        out = {name: v.mean() for name, v in values.items()}
        for i in (counts > 0).nonzero()[:, 0].tolist():
            for name in values:
                out[f"{name}/{self.sequences[i]}"] = means[name][i]
        return out
