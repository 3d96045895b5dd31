"""Energy bins: encoding kcal/h labels as distributions over K bins and decoding predictions.

Bins are K equal intervals of ``[kcal_min, kcal_max]``; a bin is represented by its centre. All
functions follow the device of their inputs.

>>> centers = make_bin_centers(5, 0.0, 50.0)
>>> centers.tolist()
[5.0, 15.0, 25.0, 35.0, 45.0]
>>> probs = gaussian_target(torch.tensor([25.0]), centers, sigma=10.0)
>>> round(distribution_expectation(probs, centers).item(), 4)
25.0
"""

from __future__ import annotations

import torch
from torch import Tensor

from pose2met.checks import finite_float, is_integer

#: Most energy bins a head may have (a 0.01 kcal/h grid over 0-1000 kcal/h; each bin costs a weight
#: row of the head and a column of every metric's distribution).
MAX_BINS = 100_000


def make_bin_centers(
    num_bins: int,
    kcal_min: float = 0.0,
    kcal_max: float = 500.0,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """Centres ``kcal_min + (k + 1/2) (kcal_max - kcal_min) / K`` of K equal bins, shape ``(K,)``."""
    if not is_integer(num_bins) or not 2 <= num_bins <= MAX_BINS:
        raise ValueError(f"num_bins must be an integer in 2..{MAX_BINS}, got {num_bins!r}")
    if finite_float(kcal_min) is None or finite_float(kcal_max) is None or not kcal_max > kcal_min:
        raise ValueError(f"energy bin range needs kcal_min < kcal_max, got [{kcal_min}, {kcal_max}]")
    width = (kcal_max - kcal_min) / num_bins
    k = torch.arange(num_bins, dtype=torch.float64, device=device)
    return (kcal_min + (k + 0.5) * width).to(dtype)


def centers_mismatch(stored: Tensor, expected: Tensor) -> float | None:
    """Largest difference (kcal/h) of ``stored`` bin centres from ``expected`` (same shape), or None
    when they agree up to bf16 rounding (a checkpoint of a bf16 model stores rounded centres)."""
    error = float((stored.detach().cpu().double() - expected.detach().cpu().double()).abs().max())
    return error if error > float(expected.detach().abs().max()) * 2.0**-8 else None


#: Alias under the name used in ``docs/architecture.md``.
bin_centers = make_bin_centers


def _check_centers(centers: Tensor, where: str) -> None:
    if centers.dim() != 1 or centers.shape[0] < 2:
        raise ValueError(f"{where}: centers must have shape (K,) with K >= 2, got {tuple(centers.shape)}")


def _check_probs(probs: Tensor, centers: Tensor, where: str) -> None:
    _check_centers(centers, where)
    if probs.dim() != 2 or probs.shape[1] != centers.shape[0]:
        raise ValueError(
            f"{where}: probs must have shape (B, {centers.shape[0]}) to match the bin centers, "
            f"got {tuple(probs.shape)}"
        )
    if not bool((torch.isfinite(probs) & (probs >= 0)).all()) or not bool((probs.sum(-1) > 0).all()):
        raise ValueError(
            f"{where}: probs must be finite and non-negative with a positive sum per row "
            "(a distribution over the bins)"
        )


def gaussian_target(
    kcal: Tensor, centers: Tensor, sigma: float = 10.0, dtype: torch.dtype | None = None
) -> Tensor:
    """Normalized Gaussian over the bins centred at each label, ``(B,) -> (B, K)``.

    ``t_k = exp(-(c_k - y)^2 / (2 sigma^2)) / sum_k exp(...)``, built in float64 (float32 would
    underflow the far tails to ties) and cast to ``dtype`` (default: the dtype of ``centers``).
    """
    _check_centers(centers, "gaussian_target")
    if kcal.dim() != 1:
        raise ValueError(f"gaussian_target: kcal must have shape (B,), got {tuple(kcal.shape)}")
    if not sigma > 0:
        raise ValueError(f"gaussian_target: sigma must be > 0, got {sigma}")
    if not bool(torch.isfinite(kcal).all()):
        raise ValueError("gaussian_target: kcal labels contain NaN or inf")
    c = centers.to(torch.float64)
    z = (c[None, :] - kcal.to(device=c.device, dtype=torch.float64)[:, None]) / sigma
    logits = -0.5 * z.square()
    target = torch.softmax(logits, dim=-1)  # exp(l) / sum exp(l), stable even far outside the range
    return target.to(dtype or centers.dtype)


def distribution_argmax(probs: Tensor, centers: Tensor) -> Tensor:
    """Centre of the most probable bin, ``(B, K) -> (B,)`` (the Vid2Burn point estimate)."""
    _check_probs(probs, centers, "distribution_argmax")
    return centers.to(probs.device)[probs.argmax(dim=-1)]


def distribution_expectation(probs: Tensor, centers: Tensor) -> Tensor:
    """Mean ``sum_k p_k c_k / sum_k p_k`` of the distribution, ``(B, K) -> (B,)``."""
    _check_probs(probs, centers, "distribution_expectation")
    c = centers.to(device=probs.device, dtype=probs.dtype)
    return (probs * c).sum(-1) / probs.sum(-1)


def distribution_std(probs: Tensor, centers: Tensor) -> Tensor:
    """Standard deviation ``sqrt(sum_k p_k (c_k - mean)^2 / sum_k p_k)``, ``(B, K) -> (B,)``."""
    _check_probs(probs, centers, "distribution_std")
    c = centers.to(device=probs.device, dtype=probs.dtype)
    mean = distribution_expectation(probs, centers)
    var = (probs * (c[None, :] - mean[:, None]).square()).sum(-1) / probs.sum(-1)
    return var.clamp_min(0).sqrt()
