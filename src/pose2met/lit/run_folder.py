"""Removing the run folder of a run that stopped before it wrote anything worth keeping."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lightning.pytorch import Trainer
from lightning.pytorch.loggers import Logger, WandbLogger

#: Files a run writes into its folder before its first step: the resolved config and the task's
#: hyperparameters.
RUN_CONFIG_FILES = ("config.yaml", "hparams.yaml")
#: Columns of a ``metrics.csv`` that measured nothing yet (the learning-rate monitor logs at the
#: start of the first epoch).
UNMEASURED_COLUMNS = ("epoch", "step")


@dataclass(frozen=True)
class RunFolders:
    """The folders of a logger's experiment (``save_dir/name``) before a run: a folder the run
    makes is one not listed here."""

    root: Path | None
    before: frozenset[str] | None  # None: the experiment folder did not exist

    @classmethod
    def snapshot(cls, logger: Logger | None) -> RunFolders:
        root = getattr(logger, "root_dir", None) if logger is not None else None
        if not root:
            return cls(None, None)
        root = Path(root)
        return cls(root, frozenset(os.listdir(root)) if root.is_dir() else None)

    def made_by_the_run(self, folder: Path) -> bool:
        if self.root is None:
            return False
        if self.before is None:  # the whole experiment folder is new
            return folder == self.root or self.root in folder.parents
        return folder.parent == self.root and folder.name not in self.before


def measured_nothing(metrics_csv: Path) -> bool:
    """Whether a CSV logger's ``metrics.csv`` holds no measurement (only step, epoch, ``lr-*``)."""
    with open(metrics_csv, encoding="utf-8", errors="replace") as f:
        header = f.readline().strip()
    columns = [c for c in header.split(",") if c]
    return all(c in UNMEASURED_COLUMNS or c.startswith("lr-") for c in columns)


def remove_unused_run_folder(trainer: Trainer, folders: RunFolders) -> bool:
    """Remove the logger's run folder (``version_N``) when this run made it and it holds nothing but
    the config files (and a ``metrics.csv`` without measurements): a run that stopped that early left
    no checkpoint or metric to keep, and ``--ckpt_path last`` would have to skip it. A folder that
    existed before the run (``--trainer.logger.init_args.version X``), anything else in it, or a W&B
    run (it keeps its own folder) leaves it as it is. Global rank 0 only; returns whether it was
    removed."""
    logger = trainer.logger
    if not trainer.is_global_zero or logger is None or isinstance(logger, WandbLogger):
        return False
    log_dir = getattr(logger, "log_dir", None)
    if not log_dir or not os.path.isdir(log_dir) or os.path.islink(log_dir):
        return False
    folder = Path(log_dir)
    if not folders.made_by_the_run(folder):
        return False
    files: list[Path] = []
    subfolders: list[Path] = []
    for here, dirs, names in os.walk(folder):
        subfolders += [Path(here, name) for name in dirs]
        for name in names:
            path = Path(here, name)
            unused = name in RUN_CONFIG_FILES or (name == "metrics.csv" and measured_nothing(path))
            if Path(here) != folder or path.is_symlink() or not unused:
                return False
            files.append(path)
    if any(path.is_symlink() for path in subfolders):
        return False
    for path in files:
        path.unlink()
    for path in sorted(subfolders, key=lambda p: len(p.parts), reverse=True):
        path.rmdir()
    folder.rmdir()
    return True
