"""Shared test settings: CPU only, small thread count, deterministic seeds."""

from __future__ import annotations

import os

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

REFERENCE_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "reference")


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture
def reference_dir() -> str:
    """Folder of the shared test vectors (``../shared/reference`` beside the checkout)."""
    path = os.path.abspath(REFERENCE_DIR)
    if not os.path.isdir(path):
        pytest.fail(f"shared reference folder not found at {path}")
    return path
