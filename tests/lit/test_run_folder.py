"""A run that stops before writing anything worth keeping leaves no run folder; nothing else is removed."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
from lightning.pytorch.loggers import CSVLogger
from tests.lit.test_cli_checkpoints import HPE, NAME, real_fit_args

from pose2met.cli import main
from pose2met.lit.run_folder import RunFolders, remove_unused_run_folder


def _write(folder: Path, files: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _trainer(logger: CSVLogger, rank_zero: bool = True) -> SimpleNamespace:
    return SimpleNamespace(logger=logger, is_global_zero=rank_zero)


CONFIGS = {"config.yaml": "model: {}\n", "hparams.yaml": "lr: 1\n"}


@pytest.mark.parametrize(
    ("files", "removed"),
    [
        ({}, True),
        (CONFIGS, True),
        # the learning-rate monitor logs at the first epoch's start: nothing measured yet
        (CONFIGS | {"metrics.csv": "epoch,lr-AdamW,step\n0,0.0005,0\n"}, True),
        (CONFIGS | {"metrics.csv": "epoch,step,train/loss_step\n0,0,1.5\n"}, False),
        (CONFIGS | {"checkpoints/last.ckpt": "x"}, False),
        (CONFIGS | {"checkpoints/config.yaml": "x"}, False),  # only the run's own files, at its top
        (CONFIGS | {"notes.txt": "x"}, False),
    ],
)
def test_a_new_version_folder_is_removed_only_when_it_holds_nothing_of_value(
    files: dict[str, str], removed: bool, tmp_path: Path
) -> None:
    _write(tmp_path / "exp" / "version_0", {"metrics.csv": "step\n"})  # an earlier run's folder
    logger = CSVLogger(tmp_path, name="exp")
    folders = RunFolders.snapshot(logger)
    folder = Path(logger.log_dir)  # version_1, made by "the run"
    _write(folder, files)
    assert remove_unused_run_folder(_trainer(logger), folders) is removed  # type: ignore[arg-type]
    assert folder.exists() is not removed
    if not removed:
        assert _files(folder) == sorted({*files, *(str(Path(f).parent) for f in files if "/" in f)})
    assert _files(tmp_path / "exp" / "version_0") == ["metrics.csv"]


def test_folders_that_existed_before_the_run_are_kept(tmp_path: Path) -> None:
    # an explicit --trainer.logger.init_args.version naming an existing folder
    _write(tmp_path / "exp" / "job42", CONFIGS)
    (tmp_path / "exp" / "job42" / "slurm_logs").mkdir()
    logger = CSVLogger(tmp_path, name="exp", version="job42")
    assert not remove_unused_run_folder(_trainer(logger), RunFolders.snapshot(logger))  # type: ignore[arg-type]
    assert _files(tmp_path / "exp" / "job42") == ["config.yaml", "hparams.yaml", "slurm_logs"]
    # no name and no version: the run's folder is the save folder itself
    (tmp_path / "notes").mkdir()
    logger = CSVLogger(tmp_path / "notes", name="", version="")
    assert Path(logger.log_dir) == tmp_path / "notes"
    assert not remove_unused_run_folder(_trainer(logger), RunFolders.snapshot(logger))  # type: ignore[arg-type]
    assert (tmp_path / "notes").is_dir()


def test_a_new_experiment_folder_is_the_runs_own(tmp_path: Path) -> None:
    logger = CSVLogger(tmp_path, name="exp")
    folders = RunFolders.snapshot(logger)  # exp/ does not exist yet
    _write(Path(logger.log_dir), CONFIGS)
    assert remove_unused_run_folder(_trainer(logger), folders)  # type: ignore[arg-type]
    assert not Path(logger.log_dir).exists() and (tmp_path / "exp").is_dir()


def test_kept_off_rank_zero_and_with_links(tmp_path: Path) -> None:
    logger = CSVLogger(tmp_path, name="exp")
    folders = RunFolders.snapshot(logger)
    folder = Path(logger.log_dir)
    _write(folder, CONFIGS)
    assert not remove_unused_run_folder(_trainer(logger, rank_zero=False), folders)  # type: ignore[arg-type]
    (tmp_path / "elsewhere").mkdir()
    (folder / "link").symlink_to(tmp_path / "elsewhere")
    assert not remove_unused_run_folder(_trainer(logger), folders)  # type: ignore[arg-type]
    assert (folder / "config.yaml").is_file() and (tmp_path / "elsewhere").is_dir()


class CrashInFirstStep(L.Callback):
    """Fails the first training step (after the learning-rate monitor has logged)."""

    def on_train_batch_start(self, *args: object) -> None:
        raise RuntimeError("crash in the first step")


def test_a_crash_in_the_first_step_leaves_no_run_folder(synthmet_tiny: Path, tmp_path: Path) -> None:
    args = real_fit_args(HPE, synthmet_tiny, tmp_path)
    args += ["--trainer.callbacks+=tests.lit.test_run_folder.CrashInFirstStep"]
    with pytest.raises(RuntimeError, match="crash in the first step"):
        main(args)
    assert (tmp_path / NAME).is_dir() and not list((tmp_path / NAME).iterdir())
