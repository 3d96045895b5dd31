"""Shared test settings: CPU only, small thread count, deterministic seeds."""

from __future__ import annotations

import os
import signal

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
# Test tensors are tiny: one thread per process avoids OpenMP barrier stalls and oversubscription
# when DDP tests run two processes on a 2-core machine.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

REFERENCE_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "reference")


@pytest.fixture(autouse=True)
def _python_sigint_handler():
    """Each test starts with Python's KeyboardInterrupt handler for SIGINT, as in a terminal: also when
    pytest was started with SIGINT ignored (``nohup``, a background job of a non-interactive shell),
    which the interrupt tests and the converters they start would inherit, and whatever handler an
    earlier test's Lightning shutdown left (Lightning ignores SIGINT while it tears down)."""
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
    np.random.seed(0)  # noqa: NPY002  (legacy global state some libraries still read)


@pytest.fixture
def reference_dir() -> str:
    """Folder of the shared test vectors (``../shared/reference`` beside the checkout)."""
    path = os.path.abspath(REFERENCE_DIR)
    if not os.path.isdir(path):
        pytest.fail(f"shared reference folder not found at {path}")
    return path


@pytest.fixture(scope="session")
def synthmet_tiny(tmp_path_factory: pytest.TempPathFactory):
    """A SynthMet file of the ``tiny`` preset (seed 0), generated once per test session."""
    from pose2met.data.synthmet import generate_to_file

    return generate_to_file(tmp_path_factory.mktemp("synthmet") / "synthmet-tiny.h5", preset="tiny", seed=0)
