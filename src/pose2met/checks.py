"""Small value checks shared across the package (config values, sizes, rates, weights)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch


def is_integer(value: object) -> bool:
    """An integer (Python or NumPy), not a bool or a float."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def integer_pair(value: object) -> tuple[int, int] | None:
    """``k`` or ``(k_a, k_b)`` of positive integers as ``(k_a, k_b)``; ``None`` if it is not that."""
    pair = (value, value) if is_integer(value) else tuple(value) if isinstance(value, (list, tuple)) else ()
    if len(pair) != 2 or not all(is_integer(v) and v >= 1 for v in pair):
        return None
    return int(pair[0]), int(pair[1])


def finite_float(value: object) -> float | None:
    """``value`` as a finite float, or ``None`` (not a number, NaN or infinite)."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def is_positive_number(value: object) -> bool:
    """A finite number ``> 0`` (a frame rate, an image size, a length, a std)."""
    number = finite_float(value)
    return number is not None and number > 0


def nonfinite_tensors(tensors: Mapping[str, object]) -> list[str]:
    """Keys of the floating-point tensors in ``tensors`` that hold NaN or inf."""
    return [
        key
        for key, value in tensors.items()
        if isinstance(value, torch.Tensor)
        and value.is_floating_point()
        and not bool(torch.isfinite(value).all())
    ]
