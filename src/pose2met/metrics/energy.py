"""Energy-expenditure ``Metric`` classes: the Vid2Burn protocol and point-estimate metrics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.functional import (
    mean_absolute_error,
    mean_squared_error,
    pearson_corrcoef,
    spearman_corrcoef,
)

from pose2met.metrics._checks import check_labels, label_ids
from pose2met.metrics._records import RecordMetric
from pose2met.metrics.functional.energy import (
    _vid2burn_compute,
    _vid2burn_update,
    check_distribution_inputs,
    distribution_moments,
    gaussian_nll,
    vid2burn_per_sample,
)


def _centers(bin_centers: Tensor | Sequence[float], where: str) -> Tensor:
    """Bin centres as a CPU float64 tensor ``(K,)`` (kept out of the state dict and of dtype casts)."""
    centers = torch.as_tensor(bin_centers).detach().to(device="cpu", dtype=torch.float64)
    if centers.ndim != 1 or centers.numel() < 2 or not bool(torch.isfinite(centers).all()):
        raise ValueError(f"{where}: `bin_centers` must be a finite 1-D tensor of K >= 2 centres (kcal/h)")
    return centers


class Vid2BurnMetric(Metric):
    """Vid2Burn protocol (MAE of argmaxes, SPC, NLL) over K-bin distributions; see ``vid2burn_metrics``.

    ``update(probs (B, K), target_kcal (B,))``; ``compute()`` returns ``{"mae", "spc", "nll"}``
    (float64). States are sums, reduced by ``sum`` over ranks.

    Example:
        >>> import torch
        >>> metric = Vid2BurnMetric(torch.arange(0.5, 500.0))
        >>> probs = torch.zeros(2, 500); probs[0, 200] = 1.0; probs[1, 300] = 1.0
        >>> metric.update(probs, torch.tensor([210.5, 300.5]))
        >>> float(metric.compute()["mae"])
        5.0
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better = None
    sums: Tensor
    count: Tensor

    def __init__(self, bin_centers: Tensor | Sequence[float], sigma: float = 10.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bin_centers = _centers(bin_centers, "Vid2BurnMetric")
        self.sigma = float(sigma)
        self.add_state("sums", torch.zeros(3, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.int64), dist_reduce_fx="sum")

    def update(self, probs: Tensor, target_kcal: Tensor) -> None:
        sums, count = _vid2burn_update(probs, target_kcal, self.bin_centers.to(probs.device), self.sigma)
        self.sums += sums.to(self.sums.device)
        self.count += count.to(self.count.device)

    def compute(self) -> dict[str, Tensor]:
        return _vid2burn_compute(self.sums, self.count)


class GaussianNLL(Metric):
    """Mean Gaussian negative log-likelihood of targets under ``N(mean, std^2)`` (torchmetrics has none).

    ``update(mean (B,), std (B,), target (B,))``; ``compute()`` -> float64 scalar (nats).
    """

    full_state_update = False
    is_differentiable = True
    higher_is_better = False
    total: Tensor
    count: Tensor

    def __init__(self, eps: float = 1e-6, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.eps = float(eps)
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.int64), dist_reduce_fx="sum")

    def update(self, mean: Tensor, std: Tensor, target: Tensor) -> None:
        nll = gaussian_nll(mean, std, target, self.eps)
        self.total += nll.sum().to(self.total.device)
        self.count += nll.numel()

    def compute(self) -> Tensor:
        if int(self.count) == 0:
            raise ValueError("GaussianNLL.compute: no samples were scored")
        return self.total / self.count


#: Columns of every record: the label and the groups it belongs to.
_SAMPLE_COLUMNS = ("label", "known", "activity")
#: Columns scored per record (per clip), or per sequence after aggregation.
_SCORE_COLUMNS = ("abs_error", "spc", "nll", "expectation", "std")
#: Extra columns of ``per_sequence`` records: the sequence id, the clip's weight, its flattened probs.
_SEQUENCE_COLUMNS = ("sequence", "weight", "probs")


class EnergyMetrics(RecordMetric):
    """All energy metrics of a test set, overall and per activity set, in one flat dict.

    ``update(probs (B, K), target_kcal (B,), known: bool (B,) | None, activity: list[str] (B) | None)``
    keeps one record per sample. ``compute()`` returns, for all samples and (when present) for
    ``known/`` and ``unknown/`` samples:

    * Vid2Burn protocol: ``mae`` (argmax vs argmax), ``spc``, ``nll`` (see ``vid2burn_metrics``);
    * point estimate = expectation of ``probs``: ``mae_expectation``, ``rmse_expectation``,
      ``spearman`` and ``pearson`` (across samples; only for groups of >= 2 samples), and
      ``gaussian_nll`` of the label under ``N(expectation, std^2)`` of the distribution;

    and ``mae/<activity>`` (Vid2Burn MAE) for each activity seen when ``activities`` were given
    (``activity`` is then required in ``update``; without ``activities`` it is ignored).
    Correlations and errors are computed by torchmetrics' functional forms on the gathered records.

    With ``per_sequence=True`` a sample is a whole sequence (video) instead of a clip: ``update``
    also takes ``sequence`` ids ``(B,)`` and clip ``weight`` s ``(B,)`` (e.g. real frames), and
    ``compute()`` scores, once per sequence, the mixture of its clips' distributions weighted by
    ``weight`` (the distribution ``pose2met infer`` reports for a video). The clips of a sequence may
    arrive in any order and on any rank; they must share the label.

    Example:
        >>> import torch
        >>> metric = EnergyMetrics(torch.arange(0.5, 500.0), activities=["A001", "A034"])
        >>> probs = torch.zeros(2, 500); probs[0, 200] = 1.0; probs[1, 300] = 1.0
        >>> metric.update(probs, torch.tensor([210.5, 330.5]), torch.tensor([True, False]), ["A001", "A034"])
        >>> out = metric.compute()
        >>> float(out["mae"]), float(out["known/mae"]), float(out["unknown/mae"]), float(out["mae/A034"])
        (20.0, 10.0, 30.0, 30.0)
    """

    def __init__(
        self,
        bin_centers: Tensor | Sequence[float],
        sigma: float = 10.0,
        activities: Sequence[str] | None = None,
        per_sequence: bool = False,
        **kwargs: Any,
    ) -> None:
        extra = _SEQUENCE_COLUMNS if per_sequence else _SCORE_COLUMNS
        super().__init__(_SAMPLE_COLUMNS + extra, **kwargs)
        self.bin_centers = _centers(bin_centers, "EnergyMetrics")
        self.sigma = float(sigma)
        self.per_sequence = per_sequence
        if activities is not None and (
            isinstance(activities, str) or len(set(activities)) != len(activities)
        ):
            raise ValueError(
                f"EnergyMetrics: `activities` must be a list of distinct names, got {activities!r}"
            )
        self.activities = tuple(activities) if activities is not None else None
        self._activity_ids = {a: i for i, a in enumerate(self.activities or ())}

    def update(
        self,
        probs: Tensor,
        target_kcal: Tensor,
        known: Tensor | None = None,
        activity: Sequence[str] | None = None,
        sequence: Tensor | None = None,
        weight: Tensor | None = None,
    ) -> None:
        where = "EnergyMetrics.update"
        batch = probs.shape[0]
        if known is None:
            known_col = torch.full((batch,), -1.0, dtype=torch.float64, device=probs.device)
        else:
            if not isinstance(known, Tensor) or known.dtype != torch.bool or known.shape != (batch,):
                got = tuple(known.shape) if isinstance(known, Tensor) else type(known).__name__
                raise ValueError(f"{where}: `known` must be a bool tensor of shape ({batch},), got {got}")
            known_col = known.to(device=probs.device, dtype=torch.float64)
        if self.activities is not None:
            labels = check_labels(activity, batch, "activity", where, required=True)
            ids = label_ids(labels, self._activity_ids, "activity", where)
            activity_col = torch.tensor(ids, dtype=torch.float64, device=probs.device)
        else:
            activity_col = torch.full((batch,), -1.0, dtype=torch.float64, device=probs.device)
        columns = {"label": target_kcal.to(probs.device), "known": known_col, "activity": activity_col}
        if not self.per_sequence:
            self._append(**columns, **self._scores(probs, columns["label"]))
            return
        if sequence is None or sequence.shape != (batch,) or sequence.is_floating_point():
            got = "None" if sequence is None else f"{tuple(sequence.shape)} {sequence.dtype}"
            raise ValueError(
                f"{where}: per_sequence needs integer `sequence` ids of shape ({batch},), got {got}"
            )
        weight = torch.ones(batch, device=probs.device) if weight is None else torch.as_tensor(weight)
        if weight.shape != (batch,) or not bool((weight > 0).all()):
            raise ValueError(f"{where}: `weight` must be positive, of shape ({batch},)")
        check_distribution_inputs(probs, target_kcal, self.bin_centers, where)
        device = probs.device
        self._append(**columns, sequence=sequence.to(device), weight=weight.to(device), probs=probs)

    def _scores(self, probs: Tensor, label: Tensor) -> dict[str, Tensor]:
        """Per-sample protocol terms and distribution moments of ``probs (N, K)``."""
        centers = self.bin_centers.to(probs.device)
        terms = vid2burn_per_sample(probs, label, centers, self.sigma)
        mean, std = distribution_moments(probs, centers)
        return {**terms, "expectation": mean, "std": std}

    def _sequence_records(self, rec: dict[str, Tensor]) -> dict[str, Tensor]:
        """One record per sequence: the ``weight``-ed mixture of its clips' distributions, scored."""
        probs = rec["probs"].reshape(-1, self.bin_centers.numel())
        ids, inverse = torch.unique(rec["sequence"], return_inverse=True)
        w = rec["weight"]
        mixture = torch.zeros(len(ids), probs.shape[1], dtype=torch.float64, device=probs.device)
        mixture.index_add_(0, inverse, probs * w[:, None])
        total = torch.zeros(len(ids), dtype=torch.float64, device=w.device).index_add_(0, inverse, w)
        mixture /= total[:, None]
        out = {}
        for name in _SAMPLE_COLUMNS:
            value = rec[name]
            first = torch.full((len(ids),), float("nan"), dtype=torch.float64, device=value.device)
            first[inverse] = value  # any clip's value; they must all agree:
            if not torch.equal(first[inverse], value):
                bad = int(ids[inverse[first[inverse] != value][0]])
                raise ValueError(
                    f"EnergyMetrics.compute: the clips of sequence {bad} disagree in their {name}"
                )
            out[name] = first
        return {**out, **self._scores(mixture, out["label"])}

    @staticmethod
    def _group(rec: dict[str, Tensor], mask: Tensor, prefix: str) -> dict[str, Tensor]:
        exp, label = rec["expectation"][mask], rec["label"][mask]
        out = {f"{prefix}{name}": rec[name][mask].mean() for name in ("abs_error", "spc", "nll")}
        out[f"{prefix}mae"] = out.pop(f"{prefix}abs_error")
        out[f"{prefix}mae_expectation"] = mean_absolute_error(exp, label)
        out[f"{prefix}rmse_expectation"] = mean_squared_error(exp, label, squared=False)
        out[f"{prefix}gaussian_nll"] = gaussian_nll(exp, rec["std"][mask], label).mean()
        if exp.numel() >= 2:
            # torchmetrics ranks/correlates in float32 internally; float64 records keep labels exact
            out[f"{prefix}spearman"] = spearman_corrcoef(exp, label).to(torch.float64)
            out[f"{prefix}pearson"] = pearson_corrcoef(exp, label).to(torch.float64)
        return out

    def compute(self) -> dict[str, Tensor]:
        rec = self._records()
        if rec["label"].numel() == 0:
            raise ValueError("EnergyMetrics.compute: no samples were scored")
        if self.per_sequence:
            rec = self._sequence_records(rec)
        out = self._group(rec, torch.ones_like(rec["label"], dtype=torch.bool), "")
        for prefix, flag in (("known/", 1.0), ("unknown/", 0.0)):
            mask = rec["known"] == flag
            if bool(mask.any()):
                out.update(self._group(rec, mask, prefix))
        for i, name in enumerate(self.activities or ()):
            mask = rec["activity"] == i
            if bool(mask.any()):
                out[f"mae/{name}"] = rec["abs_error"][mask].mean()
        return out
