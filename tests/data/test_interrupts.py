"""Loader workers outlive the first stop signal sent to the whole process group."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

from pose2met.data.datamodule import Pose2MetDataModule
from pose2met.data.interrupts import leave_stop_signals_to_the_main_process

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pose2met.data.interrupts import leave_stop_signals_to_the_main_process
    leave_stop_signals_to_the_main_process(0)
    os.kill(os.getpid(), signal.SIGINT)   # Ctrl-C in the terminal: ignored
    os.kill(os.getpid(), signal.SIGTERM)  # the scheduler's stop to the group: survived
    print("alive", flush=True)
    os.kill(os.getpid(), signal.SIGTERM)  # the main process's terminate(): ends the worker
    print("still alive", flush=True)
    """
)


def test_worker_survives_the_first_stop_signal_only() -> None:
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["alive"]
    assert done.returncode == -signal.SIGTERM


def test_loaders_with_workers_use_it(tiny_file: Callable[..., Path]) -> None:
    path = tiny_file()
    with_workers = Pose2MetDataModule(path, num_frames=9, num_workers=2)._loader_kwargs()
    assert with_workers["worker_init_fn"] is leave_stop_signals_to_the_main_process
    assert Pose2MetDataModule(path, num_frames=9)._loader_kwargs()["worker_init_fn"] is None
