"""Functional energy-expenditure metrics on K-bin distributions over kcal/h.

The Vid2Burn protocol compares a predicted distribution ``probs (B, K)`` with the target
distribution of each label: a Gaussian over the bin centres, centred at the label (sigma 10 kcal/h),
normalized, built in float64 (in float32 its far tails underflow to ties, which changes SPC).
Everything is computed in float64 whatever the input dtype (bf16 included), on the input's device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from pose2met.metrics._checks import check_finite, check_float_tensor

#: Clipping of p and t in the Vid2Burn NLL.
NLL_CLIP = 1e-6


def check_distribution_inputs(probs: Tensor, target_kcal: Tensor, bin_centers: Tensor, where: str) -> None:
    """Shapes ``probs (B, K)``, ``target_kcal (B,)``, ``bin_centers (K,)``; probabilities in [0, 1]."""
    for name, x in (("probs", probs), ("target_kcal", target_kcal), ("bin_centers", bin_centers)):
        check_float_tensor(x, name, where)
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise ValueError(f"{where}: `probs` must have shape (B, K) with K >= 2, got {tuple(probs.shape)}")
    if target_kcal.ndim != 1 or target_kcal.shape[0] != probs.shape[0]:
        raise ValueError(
            f"{where}: `target_kcal` must have shape ({probs.shape[0]},) to match `probs` "
            f"{tuple(probs.shape)}, got {tuple(target_kcal.shape)}"
        )
    if bin_centers.shape != (probs.shape[1],):
        raise ValueError(
            f"{where}: `bin_centers` must have shape ({probs.shape[1]},) (one per bin of `probs`), "
            f"got {tuple(bin_centers.shape)}"
        )
    if probs.numel() and not bool(((probs >= 0) & (probs <= 1)).all()):
        raise ValueError(
            f"{where}: `probs` must be probabilities in [0, 1] (softmax the logits), got NaN or other values"
        )
    check_finite(target_kcal, where, "`target_kcal`")


def gaussian_target(target_kcal: Tensor, bin_centers: Tensor, sigma: float = 10.0) -> Tensor:
    """Target distributions ``(B, K)`` in float64: ``exp(-(c_k - y)^2 / 2 sigma^2)``, normalized.

    Example:
        >>> import torch
        >>> t = gaussian_target(torch.tensor([2.0]), torch.arange(5.0), sigma=1.0)
        >>> t.argmax(-1), round(float(t.sum()), 6)
        (tensor([2]), 1.0)
    """
    if sigma <= 0:
        raise ValueError(f"gaussian_target: `sigma` must be > 0, got {sigma}")
    z = (bin_centers.to(torch.float64)[None, :] - target_kcal.to(torch.float64)[:, None]) / sigma
    log_w = -0.5 * z.square()
    # shifting by the row maximum keeps the nearest bin at weight 1 (no 0/0 far from the bins)
    w = torch.exp(log_w - log_w.amax(-1, keepdim=True))
    return w / w.sum(-1, keepdim=True)


def average_ranks(x: Tensor) -> Tensor:
    """Ranks 1..K of each row of ``x (B, K)``, ties given their average rank (float64).

    The batched equivalent of ``scipy.stats.rankdata(row, method="average")`` for every row.
    """
    values, order = x.to(torch.float64).sort(dim=-1)
    k = x.shape[-1]
    pos = torch.arange(1, k + 1, dtype=torch.float64, device=x.device).expand_as(values)
    starts = torch.ones_like(values, dtype=torch.bool)
    starts[..., 1:] = values[..., 1:] != values[..., :-1]
    ends = torch.ones_like(starts)
    ends[..., :-1] = starts[..., 1:]
    first = torch.where(starts, pos, torch.zeros_like(pos)).cummax(-1).values
    last = torch.where(ends, pos, torch.full_like(pos, k + 1)).flip(-1).cummin(-1).values.flip(-1)
    return torch.empty_like(pos).scatter_(-1, order, 0.5 * (first + last))


def rowwise_spearman(a: Tensor, b: Tensor) -> Tensor:
    """Spearman correlation of each row pair of ``a, b (B, K)`` -> ``(B,)`` float64.

    The Pearson correlation of average ranks (as ``scipy.stats.spearmanr``). A row that is
    constant in ``a`` or ``b`` has no rank order; its correlation is defined as 0 (SciPy: NaN).
    """
    ra, rb = average_ranks(a), average_ranks(b)
    ra = ra - ra.mean(-1, keepdim=True)
    rb = rb - rb.mean(-1, keepdim=True)
    cov = (ra * rb).sum(-1)
    den = torch.sqrt(ra.square().sum(-1) * rb.square().sum(-1))
    return torch.where(den > 0, cov / den.clamp_min(torch.finfo(torch.float64).tiny), torch.zeros_like(cov))


def distribution_moments(probs: Tensor, bin_centers: Tensor) -> tuple[Tensor, Tensor]:
    """Expectation and standard deviation ``(B,)``, float64, of each distribution over the bin centres."""
    p = probs.to(torch.float64)
    p = p / p.sum(-1, keepdim=True).clamp_min(torch.finfo(torch.float64).tiny)
    c = bin_centers.to(device=p.device, dtype=torch.float64)
    mean = p @ c
    var = (p * (c[None, :] - mean[:, None]).square()).sum(-1)
    return mean, var.sqrt()


def vid2burn_per_sample(
    probs: Tensor, target_kcal: Tensor, bin_centers: Tensor, sigma: float = 10.0
) -> dict[str, Tensor]:
    """Per-sample Vid2Burn terms ``(B,)`` float64: ``abs_error`` (argmax vs argmax, kcal/h), ``spc``
    and ``nll`` (see :func:`vid2burn_metrics`)."""
    check_distribution_inputs(probs, target_kcal, bin_centers, "vid2burn_metrics")
    centers = bin_centers.to(device=probs.device, dtype=torch.float64)
    target = gaussian_target(target_kcal.to(probs.device), centers, sigma)
    p = probs.to(torch.float64)
    abs_error = (centers[p.argmax(-1)] - centers[target.argmax(-1)]).abs()
    pc = p.clamp(NLL_CLIP, 1.0 - NLL_CLIP)
    tc = target.clamp(NLL_CLIP, 1.0 - NLL_CLIP)
    nll = -(tc * pc.log() + (1.0 - tc) * torch.log1p(-pc)).sum(-1)
    return {"abs_error": abs_error, "spc": rowwise_spearman(p, target), "nll": nll}


def _vid2burn_update(
    probs: Tensor, target_kcal: Tensor, bin_centers: Tensor, sigma: float = 10.0
) -> tuple[Tensor, Tensor]:
    """Sums ``(3,)`` float64 of (abs_error, spc, nll) and the sample count (int64)."""
    terms = vid2burn_per_sample(probs, target_kcal, bin_centers, sigma)
    sums = torch.stack([terms["abs_error"].sum(), terms["spc"].sum(), terms["nll"].sum()])
    return sums, torch.tensor(probs.shape[0], dtype=torch.int64, device=sums.device)


def _vid2burn_compute(sums: Tensor, count: Tensor) -> dict[str, Tensor]:
    if int(count) == 0:
        raise ValueError("vid2burn_metrics: no samples were scored")
    mean = sums / count
    return {"mae": mean[0], "spc": mean[1], "nll": mean[2]}


def vid2burn_metrics(
    probs: Tensor, target_kcal: Tensor, bin_centers: Tensor, sigma: float = 10.0
) -> dict[str, Tensor]:
    """Vid2Burn protocol metrics of predicted distributions, float64 scalars.

    * ``mae``: mean over samples of ``|c[argmax p] - c[argmax t]|`` (kcal/h), ``t`` the target distribution;
    * ``spc``: mean over samples of the Spearman correlation of ``p`` and ``t`` over the K bins;
    * ``nll``: mean over samples of ``sum_k -(t_k log p_k + (1 - t_k) log(1 - p_k))``, with ``p`` and
      ``t`` clipped to ``[1e-6, 1 - 1e-6]``.

    Args:
        probs: ``(B, K)`` predicted probabilities (softmax of the logits).
        target_kcal: ``(B,)`` labels in kcal/h.
        bin_centers: ``(K,)`` bin centres in kcal/h.
        sigma: width of the target Gaussian, kcal/h.

    Example:
        >>> import torch
        >>> centers = torch.arange(0.5, 500.0)
        >>> labels = torch.tensor([180.2, 320.0])
        >>> probs = gaussian_target(labels, centers)  # a perfect prediction
        >>> out = vid2burn_metrics(probs, labels, centers)
        >>> float(out["mae"]), round(float(out["spc"]), 4)
        (0.0, 1.0)
        >>> round(float(vid2burn_metrics(probs.float(), labels, centers)["spc"]), 4)  # float32 tails tie
        0.9588
    """
    return _vid2burn_compute(*_vid2burn_update(probs, target_kcal, bin_centers, sigma))


def gaussian_nll(mean: Tensor, std: Tensor, target: Tensor, eps: float = 1e-6) -> Tensor:
    """Per-sample Gaussian negative log-likelihood ``(B,)`` float64 of ``target`` under ``N(mean, std^2)``.

    ``0.5 * (log(2 pi) + log(var) + (target - mean)^2 / var)`` with ``var`` clamped to ``eps``
    (``torch.nn.functional.gaussian_nll_loss`` with ``full=True``).
    """
    for name, x in (("mean", mean), ("std", std), ("target", target)):
        check_float_tensor(x, name, "gaussian_nll")
    if not (mean.shape == std.shape == target.shape) or mean.ndim != 1:
        raise ValueError(
            f"gaussian_nll: `mean`, `std` and `target` must all have shape (B,), got "
            f"{tuple(mean.shape)}, {tuple(std.shape)}, {tuple(target.shape)}"
        )
    var = std.to(torch.float64).square()
    return F.gaussian_nll_loss(
        mean.to(torch.float64), target.to(device=mean.device, dtype=torch.float64), var,
        full=True, eps=eps, reduction="none",
    )  # fmt: skip
