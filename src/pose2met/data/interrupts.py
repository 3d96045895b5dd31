"""Turn SIGTERM into an exception while a file is written, so ``finally`` blocks remove temp files.

Python's default SIGTERM action ends the process at once, skipping the cleanup that the atomic
writer (:func:`pose2met.data.h5format.write_dataset`) does on failure; SIGINT already raises
``KeyboardInterrupt``.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Terminated(Exception):
    """The process received SIGTERM."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signal.Signals(signum).name)


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block SIGTERM raises :class:`Terminated` (main thread only; a no-op elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def interrupted_message(error: BaseException, output: object) -> tuple[str, int]:
    """One ``error:`` line and the shell exit code (128 + signal) for SIGINT / SIGTERM."""
    signum = signal.SIGTERM if isinstance(error, Terminated) else signal.SIGINT
    text = f"error: interrupted ({signal.Signals(signum).name}); {output} was not written or changed"
    return text, 128 + int(signum)


def leave_stop_signals_to_the_main_process(worker_id: int = 0) -> None:
    """DataLoader ``worker_init_fn``: a worker ignores Ctrl-C and outlives its first SIGTERM, so that
    a stop signal sent to the whole process group (a terminal, a scheduler) lets the training process
    finish its step and save ``last.ckpt``; the next SIGTERM (the loader's own shutdown after that)
    ends it, and torch ends a worker whose parent died. Lightning's worker seeding
    (``seed_everything(workers=True)``), which it adds only when no ``worker_init_fn`` is set, is kept."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_on_second_sigterm)
    if int(os.environ.get("PL_SEED_WORKERS", "0")):
        from lightning.fabric.utilities.seed import pl_worker_init_function

        pl_worker_init_function(worker_id)


def _exit_on_second_sigterm(signum: int, frame: FrameType | None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the next one ends the worker
