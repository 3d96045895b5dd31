"""The ``>>>`` examples in the metric docstrings run and print what they claim."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "pose2met.metrics.functional.pose",
    "pose2met.metrics.functional.energy",
    "pose2met.metrics.pose",
    "pose2met.metrics.protocol",
    "pose2met.metrics.energy",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
