"""Fixtures of the data tests (the tiny files themselves are built by ``data_tiny_files.py``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from data_tiny_files import write_tiny


@pytest.fixture
def tiny_file(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``tiny_file(name="x.h5", **write_tiny_kwargs) -> path`` inside ``tmp_path``."""

    def make(name: str = "tiny.h5", **kwargs: object) -> Path:
        return write_tiny(tmp_path / name, **kwargs)  # type: ignore[arg-type]

    return make
