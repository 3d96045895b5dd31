"""Input checks shared by the metrics: clear errors that name the argument and what was expected."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def check_float_tensor(x: object, name: str, where: str) -> Tensor:
    """Return ``x`` if it is a floating-point tensor, else raise a ``TypeError`` naming it."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{where}: `{name}` must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{where}: `{name}` must be a floating-point tensor, got dtype {x.dtype}")
    return x


def check_pose_pair(pred: Tensor, target: Tensor, where: str, min_ndim: int = 2, max_ndim: int = 64) -> None:
    """Check ``pred`` and ``target`` are float tensors of one shape ``(..., J, 3)`` on one device."""
    dims = {2: "(..., J, 3)", 3: "(..., T, J, 3)"}.get(min_ndim, "(B, T, J, 3)")
    for name, x in (("pred", pred), ("target", target)):
        check_float_tensor(x, name, where)
        if not min_ndim <= x.ndim <= max_ndim or x.shape[-1] != 3 or x.shape[-2] < 1:
            raise ValueError(f"{where}: `{name}` must have shape {dims}, got {tuple(x.shape)}")
    if pred.shape != target.shape:
        raise ValueError(
            f"{where}: `pred` and `target` must have the same shape, got {tuple(pred.shape)} "
            f"and {tuple(target.shape)}"
        )
    if pred.device != target.device:
        raise ValueError(f"{where}: `pred` is on {pred.device} but `target` on {target.device}")


def check_mask(mask: Tensor, shape: Sequence[int], name: str, where: str) -> Tensor:
    """Check a boolean mask has ``shape`` and return it."""
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
        got = mask.dtype if isinstance(mask, Tensor) else type(mask).__name__
        raise TypeError(f"{where}: `{name}` must be a bool tensor, got {got}")
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(f"{where}: `{name}` must have shape {tuple(shape)}, got {tuple(mask.shape)}")
    return mask


def check_labels(
    labels: Sequence[str] | None, length: int, name: str, where: str, required: bool = False
) -> list[str] | None:
    """Check a per-sample list of strings has ``length`` entries (``None`` passes unless ``required``)."""
    if labels is None:
        if required:
            raise ValueError(f"{where}: `{name}` is required (a list of {length} strings)")
        return None
    if isinstance(labels, str) or not isinstance(labels, Sequence):
        raise TypeError(
            f"{where}: `{name}` must be a sequence of {length} strings, got {type(labels).__name__}"
        )
    if len(labels) != length:
        raise ValueError(f"{where}: `{name}` has {len(labels)} entries but the batch has {length} samples")
    return [str(s) for s in labels]


def label_ids(labels: Sequence[str], vocabulary: dict[str, int], name: str, where: str) -> list[int]:
    """Map strings to their ids in ``vocabulary``; an unknown string raises a ``ValueError``."""
    ids = []
    for s in labels:
        if s not in vocabulary:
            known = ", ".join(vocabulary)
            raise ValueError(f"{where}: unknown {name} {s!r}; expected one of: {known}")
        ids.append(vocabulary[s])
    return ids


def check_finite(values: Tensor, where: str, what: str) -> None:
    """Raise if ``values`` holds NaN or inf (a sign of non-finite inputs)."""
    if not bool(torch.isfinite(values).all()):
        raise ValueError(f"{where}: {what} contain NaN or inf values")


def check_finite_result(result: Tensor, pred: Tensor, target: Tensor, where: str) -> None:
    """Raise a clear error if ``result`` (computed from ``pred`` and ``target``) is not finite.

    Names the non-finite input; with finite inputs the computation overflowed its dtype. Only
    the result is reduced in the common (finite) case, so the check costs one small pass.
    """
    if bool(torch.isfinite(result).all()):
        return
    check_finite(pred, where, "`pred`")
    check_finite(target, where, "`target`")
    largest = max(float(pred.detach().abs().max()), float(target.detach().abs().max()))
    raise ValueError(
        f"{where}: the result overflowed {result.dtype} (coordinates up to {largest:.3g}); "
        "pass float64 inputs or check their units"
    )
