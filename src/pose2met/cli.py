"""The ``pose2met`` command.

* ``pose2met fit|validate|test|predict --config conf/... [--model.x ...]`` — LightningCLI.
* ``pose2met data info FILE`` — summary of a Pose2Met HDF5 file.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import json
import os
import re
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import Logger, WandbLogger
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from lightning.pytorch.utilities.exceptions import MisconfigurationException, SIGTERMException

from pose2met.atomic import unwritable_reason, write_atomic
from pose2met.data.datamodule import Pose2MetDataModule
from pose2met.lit.callbacks import StageAwareCheckpoint, is_interrupt, run_dir
from pose2met.lit.checkpoint import CHECKPOINT_META_KEY, CheckpointError, describe_mismatch, model_meta
from pose2met.lit.predictions import PredictionFile
from pose2met.lit.run_folder import RunFolders, remove_unused_run_folder
from pose2met.lit.task import Pose2MetTask, TrainingDiverged
from pose2met.safe_load import check_checkpoint_path

USAGE = """usage: pose2met {fit,validate,test,predict} [--config FILE ...] [--key value ...]
       pose2met data info FILE
       pose2met infer --checkpoint CKPT --input KEYPOINTS --image-size W H --output OUT.npz ...
       pose2met export --checkpoint CKPT --format onnx|torchscript --output FILE
       pose2met viz compare|attention --checkpoint CKPT ...

Train and evaluate (LightningCLI): `pose2met fit --help` lists every option.
"""
EXIT_INPUT_ERROR = 2
INPUT_ERRORS = (ValueError, FileNotFoundError)
LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")
COMMANDS = (*LIGHTNING_COMMANDS, "infer", "export", "viz", "data")
PACKAGE_DIR = Path(__file__).resolve().parent


def input_error(err: BaseException) -> ValueError | FileNotFoundError | None:
    """The bad-input error behind ``err``, if any: a ``ValueError`` or ``FileNotFoundError`` raised by
    our own code (a missing data file, a data or checkpoint file that fails its checks, a constructor
    rejecting a config value). jsonargparse wraps the errors of the classes it instantiates, so the
    ``__cause__`` chain is searched."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, INPUT_ERRORS) and current.__traceback__ is not None:
            origin = traceback.extract_tb(current.__traceback__)[-1].filename
            if Path(origin).resolve().is_relative_to(PACKAGE_DIR):
                return current
        current = current.__cause__ or current.__context__
    return None


def check_results_json(path: str | None) -> None:
    """Fail before any work, not after hours of training, if ``--results_json`` cannot be written."""
    if not path:
        return
    if Path(path).is_dir():
        raise ValueError(f"--results_json {path}: is a folder; expected a file name such as run.json")
    reason = unwritable_reason(path)
    if reason:
        raise ValueError(f"--results_json {path}: cannot create it ({reason})")


LOGGER_WITHOUT_CLASS = re.compile(r'Parser key "trainer\.logger".*Given value: (\{.*\})\s*$', re.DOTALL)
UNKNOWN_FLAG = re.compile(r"unrecognized arguments: (--[\w.]+)")
UNKNOWN_CONFIG_KEY = re.compile(r"does not accept option '([\w.]+)'")
UNKNOWN_CLASS_OPTION = re.compile(
    r"class_path '([\w.]+)'(?:(?!class_path).)*?Option '(\w+)' is not accepted", re.DOTALL
)


def explain_parser_error(message: str, flags: list[str]) -> str:
    """jsonargparse's message made plainer: a recipe given without a logger config is named as such,
    and a mistyped key gets the closest accepted one (``flags``: the parser's ``--`` options)."""
    logger = LOGGER_WITHOUT_CLASS.search(message)
    if logger and "class_path" not in logger.group(1) and "init_args" in logger.group(1):
        return (
            f"trainer.logger: the config sets logger settings {logger.group(1)} but no logger class "
            "comes before them; give a logger config before the recipe, e.g. --config "
            "conf/logger/csv.yaml (or conf/logger/wandb.yaml), as the make targets do"
        )
    close: list[str] = []
    if flag := UNKNOWN_FLAG.search(message):
        close = difflib.get_close_matches(flag.group(1), flags, n=1)
    elif key := UNKNOWN_CONFIG_KEY.search(message):
        close = [f[2:] for f in difflib.get_close_matches(f"--{key.group(1)}", flags, n=1)]
    elif option := UNKNOWN_CLASS_OPTION.search(message):
        close = difflib.get_close_matches(option.group(2), constructor_arguments(option.group(1)), n=1)
    return f"{message.rstrip()}\nhint: did you mean {close[0]}?" if close else message


def constructor_arguments(class_path: str) -> list[str]:
    """Names of the ``__init__`` arguments of the class at ``class_path`` (empty if it cannot be read)."""
    module_name, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), name)
        return [p for p in inspect.signature(cls).parameters if p not in ("args", "kwargs")]
    except (ImportError, AttributeError, TypeError, ValueError):
        return []


class Pose2MetArgumentParser(LightningArgumentParser):
    """LightningCLI's parser with short errors: one usage line instead of all ~90 options (``--help``
    still lists them), and plainer messages for common mistakes (:func:`explain_parser_error`)."""

    def print_usage(self, file: Any = None) -> None:
        prog = self.prog.replace(" [options]", "")
        (file or sys.stdout).write(f"usage: {prog} [--config FILE ...] [--key value ...]\n")

    def error(self, message: str, ex: Exception | None = None) -> Any:
        parser = getattr(ex, "subcommand_parser", None) or self
        flags = [flag for flag in parser._option_string_actions if flag.startswith("--")]
        return super().error(explain_parser_error(message, flags), ex)


class Pose2MetSaveConfig(SaveConfigCallback):
    """Writes the resolved config next to the run and, with W&B, into the run's config."""

    def save_config(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if not trainer.is_global_zero:
            return
        folder = run_dir(trainer)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / self.config_filename
        if trainer.logger is None:  # no run folder: runs share default_root_dir, keep each one's config
            stem, suffix = target.stem, target.suffix
            version = 0
            while target.exists():
                version += 1
                target = folder / f"{stem}-v{version}{suffix}"
        target.write_text(self.parser.dump(self.config, skip_none=False))
        if isinstance(trainer.logger, WandbLogger):
            config = json.loads(self.parser.dump(self.config, skip_none=False, format="json"))
            trainer.logger.experiment.config.update(config, allow_val_change=True)


class Pose2MetCLI(LightningCLI):
    """LightningCLI with a default checkpoint callback, argument links and test-after-fit."""

    def add_arguments_to_parser(self, parser: Any) -> None:
        parser.add_lightning_class_args(StageAwareCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/loss",
                "checkpoint.mode": "min",
                "checkpoint.save_last": True,
                "checkpoint.filename": "best-{epoch:03d}",
                "checkpoint.auto_insert_metric_name": False,
            }
        )
        parser.add_argument(
            "--test_after_fit",
            type=bool,
            default=True,
            help="after `fit`, run `test` on the best checkpoint and print the metrics",
        )
        parser.add_argument(
            "--results_json",
            type=str | None,
            default=None,
            help="after testing, write the test metrics, parameter count and run folders to this JSON file",
        )
        parser.link_arguments("data.num_frames", "model.init_args.encoder.init_args.num_frames")

    def parse_arguments(self, parser: Any, args: Any) -> None:
        super().parse_arguments(parser, args)
        # checked before LightningCLI reads the checkpoint's hyperparameters (a raw torch.load)
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        # kept until the model exists, for check_checkpoint_fits (no second read of the file)
        self._checked_checkpoint = read_lightning_checkpoint(ckpt_path)
        check_results_json(self.config[subcommand].get("results_json") if subcommand else None)

    def _parse_ckpt_path(self) -> None:
        """Keep the config's model settings: Lightning would replace them with those saved in
        ``--ckpt_path``, silently dropping e.g. ``--model.init_args.energy_eval sequence`` or turning an
        HPE config into the checkpoint's energy task. The config always names the model (it is
        required), and :meth:`check_checkpoint_fits` rejects a checkpoint that does not fit it."""

    def resolve_ckpt_alias(self) -> None:
        """Turn ``--ckpt_path last|best`` into the file of the latest run of this experiment.

        Every run writes into a new folder (``version_N`` or a W&B run id), so Lightning, which looks
        only in the new run's folder, would find nothing and silently start from scratch.
        """
        alias = self.config_init[self.subcommand].get("ckpt_path")
        if alias not in ("last", "best"):
            return
        # --checkpoint.dirpath names one folder for every run; without a logger Lightning uses one too
        fixed = getattr(self.trainer.checkpoint_callback, "dirpath", None)
        logger = self._configured_logger()
        if not fixed and logger is None:
            fixed = Path(self.trainer.default_root_dir) / "checkpoints"
        if fixed:
            where = str(fixed)
            found = alias_in_folder(Path(fixed), alias)
        else:
            root = Path(getattr(logger, "save_dir", None) or self.trainer.default_root_dir)
            name = getattr(logger, "name", None)
            experiment = root / str(name) if name else root
            where = f"{experiment}/*/checkpoints"
            found = latest_run_checkpoint(experiment, alias, model_meta(self.model))
        if found is None:
            if self.subcommand == "fit" and alias == "last":
                rank_zero_warn(
                    f"--ckpt_path last: no last.ckpt of this model in {where}; training from scratch"
                )
                self.config_init[self.subcommand]["ckpt_path"] = None
                return
            raise CheckpointError(
                f"--ckpt_path {alias}: no {alias} checkpoint of this config's model in {where}; "
                "pass a file path"
            )
        rank_zero_info(f"--ckpt_path {alias}: {found}")
        self.config_init[self.subcommand]["ckpt_path"] = str(found)
        self._checked_checkpoint = read_lightning_checkpoint(found)

    def _configured_logger(self) -> Logger | None:
        """The logger of the config (fast_dev_run swaps the trainer's for a dummy without folders)."""
        logger = self.config_init[self.subcommand].get("trainer", {}).get("logger")
        if isinstance(logger, Logger):
            return logger
        return (
            self.trainer.logger if isinstance(self.trainer.logger, Logger) and logger is not False else None
        )

    def check_checkpoint_fits(self) -> object:
        """Fail in one line when ``--ckpt_path`` holds weights of another architecture than the config's
        (Lightning's strict load would dump every key); the usual cause is a missing ``--config``.
        Returns the checkpoint read (``None`` without one)."""
        self.resolve_ckpt_alias()
        ckpt, self._checked_checkpoint = getattr(self, "_checked_checkpoint", None), None
        state = ckpt.get("state_dict") if isinstance(ckpt, dict) else None
        problem = describe_mismatch(self.model.state_dict(), state) if isinstance(state, dict) else None
        if problem:
            path = self.config_init[self.subcommand].get("ckpt_path")
            raise CheckpointError(
                f"{path}: its weights do not fit the model of this config: {problem}; pass the config "
                "the run saved (config.yaml in its run folder) with --config"
            )
        return ckpt

    def _run_subcommand(self, subcommand: str) -> None:
        """Run it; a run that fails or is interrupted before writing anything of its own (a
        settings error found at the sanity check, a crash in the first step) leaves no run folder."""
        folders = RunFolders.snapshot(self.trainer.logger)
        try:
            super()._run_subcommand(subcommand)
        except BaseException:
            remove_unused_run_folder(self.trainer, folders)
            raise
        if self.trainer.interrupted:
            remove_unused_run_folder(self.trainer, folders)

    def _before_run(self) -> None:
        """Check that the trainer settings, the checkpoint and the data fit the config, before the
        logger makes the run's folder, and start the clock of ``--results_json``."""
        if isinstance(self.model, Pose2MetTask):
            self.model.check_trainer_settings(self.subcommand, self.trainer)
        self.check_checkpoint_settings(self.check_checkpoint_fits())
        self.check_data()
        self._started = time.perf_counter()

    def check_data(self) -> None:
        """Build the datasets and check them against the task now, before the logger makes the run's
        folder (Lightning's setup does that first, so a missing array would leave an empty
        ``version_N``). A SynthMet file still to be generated is complete by construction."""
        dm = self.datamodule
        if not isinstance(dm, Pose2MetDataModule) or (dm.synthmet and not dm.file_path.exists()):
            return
        stage = self.subcommand if self.subcommand != "fit" or not self.config_get("test_after_fit") else None
        dm.setup(stage)  # fit + test: all three splits (None)
        self.model.check_data(dm)

    def check_checkpoint_settings(self, ckpt: object) -> None:
        """Refuse evaluating random weights, and a checkpoint trained for another target space or input:
        its weights fit, but its outputs mean something else, so the metrics would be silently wrong."""
        path = self.config_init[self.subcommand].get("ckpt_path")
        if self.subcommand != "fit" and path is None and not getattr(self.model, "init_from", None):
            raise CheckpointError(
                f"pose2met {self.subcommand} without --ckpt_path would score the untrained model's random "
                "weights; pass --ckpt_path FILE (or best / last for the latest run of this config)"
            )
        meta = ckpt.get(CHECKPOINT_META_KEY) if isinstance(ckpt, dict) else None
        if path is None or not isinstance(meta, dict):
            return
        here = {
            "target_space": getattr(self.datamodule, "target_space", None),
            "input_kind": getattr(self.model, "input_kind", None),
        }
        flags = {"target_space": "--data.target_space", "input_kind": "the task's setting"}
        for key, value in here.items():
            stored = meta.get(key)
            if stored is not None and value is not None and stored != value:
                raise CheckpointError(
                    f"{path}: the checkpoint was trained with {key} {stored!r}, this config uses {value!r}; "
                    f"set {flags[key]} to match (its outputs would be read in the wrong space)"
                )

    def before_fit(self) -> None:
        self._before_run()

    def before_validate(self) -> None:
        self._before_run()

    def before_test(self) -> None:
        self._before_run()

    def before_predict(self) -> None:
        self._before_run()
        if not any(isinstance(c, BasePredictionWriter) for c in self.trainer.callbacks):
            self.trainer.callbacks.append(PredictionFile())  # Lightning would discard the outputs

    def after_fit(self) -> None:
        if not self.config_get("test_after_fit") or self.trainer.fast_dev_run or self.trainer.interrupted:
            return
        ckpt = self.trainer.checkpoint_callback
        best = ckpt.best_model_path if isinstance(ckpt, ModelCheckpoint) and ckpt.best_model_path else None
        dm = self.datamodule
        results = self.trainer.test(self.model, datamodule=dm, ckpt_path=best, weights_only=False)
        self.write_results(results, best)

    def after_test(self) -> None:
        if self.subcommand == "test":
            metrics = {k: v for k, v in self.trainer.callback_metrics.items() if k.startswith("test/")}
            self.write_results([metrics], self.config_init[self.subcommand].get("ckpt_path"))

    def write_results(self, results: list[dict[str, float]], checkpoint: str | None) -> None:
        """Write ``--results_json`` (rank zero, atomically): test metrics, parameters, folders, wall time."""
        path = self.config_get("results_json")
        if not path or not self.trainer.is_global_zero:
            return
        metrics = {k: float(v) for r in results for k, v in r.items()}
        record = {
            "metrics": metrics,
            "params": sum(p.numel() for p in self.model.parameters()),
            "checkpoint": checkpoint,
            "run_dir": str(run_dir(self.trainer)),
            "wall_s": time.perf_counter() - getattr(self, "_started", time.perf_counter()),
        }
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, lambda tmp: tmp.write_text(json.dumps(record, indent=2, sort_keys=True)))

    def config_get(self, key: str) -> Any:
        config = self.config.get(self.subcommand, self.config) if self.subcommand else self.config
        return config.get(key)


def read_lightning_checkpoint(path: str | os.PathLike | None) -> Any:
    """The content of a ``--ckpt_path`` file or URL (None for aliases and None), checked to be readable
    and a Lightning checkpoint (a dict with a ``state_dict``); one-line errors otherwise."""
    ckpt = check_checkpoint_path(path, CheckpointError)
    if ckpt is not None and not (isinstance(ckpt, dict) and isinstance(ckpt.get("state_dict"), dict)):
        raise CheckpointError(
            f"{path}: not a Lightning checkpoint (expected a dict with a 'state_dict', got "
            f"{type(ckpt).__name__}{' without one' if isinstance(ckpt, dict) else ''}); plain weights "
            "are loaded with --model.init_args.init_from"
        )
    return ckpt


#: Runs looked at (newest first) when resolving ``--ckpt_path last|best``.
ALIAS_SEARCH_RUNS = 200


def same_model(meta: object, expected: dict[str, Any]) -> bool:
    """Whether a checkpoint's model description is that of ``expected`` (task, encoder, heads, input)."""
    if not isinstance(meta, dict):
        return False
    keys = ("task", "pose_head", "calorie_head", "input_kind")
    runtime = ("attention_impl", "check_finite")  # settings that may change between runs
    encoder = {k: v for k, v in (meta.get("encoder") or {}).items() if k not in runtime}
    wanted = {k: v for k, v in expected["encoder"].items() if k not in runtime}
    return encoder == wanted and all(meta.get(k) == expected[k] for k in keys)


def alias_in_folder(folder: Path, alias: str) -> Path | None:
    """The newest ``last.ckpt`` (or ``last-vN.ckpt`` of a later run into the same folder), or the newest
    ``best-*.ckpt``, in one checkpoint folder."""
    pattern = "last*.ckpt" if alias == "last" else "best-*.ckpt"
    found = sorted(folder.glob(pattern), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def recorded_best(ckpt: object) -> Path | None:
    """The best checkpoint a run's checkpoint callback recorded (after a resume it may lie in an
    earlier run's folder), if that file still exists."""
    states = ckpt.get("callbacks") if isinstance(ckpt, dict) else None
    for key, state in (states or {}).items():
        if key.startswith(("StageAwareCheckpoint", "ModelCheckpoint")) and isinstance(state, dict):
            path = state.get("best_model_path")
            if path and Path(path).is_file():
                return Path(path)
    return None


def latest_run_checkpoint(
    experiment: Path, alias: str, expected: dict[str, Any] | None = None
) -> Path | None:
    """``last.ckpt`` (or the best checkpoint) of the newest run under ``experiment`` of this model.

    Runs are ordered by the time of their ``last.ckpt``; with ``expected`` (a :func:`model_meta`),
    runs of another recipe in the same folder (W&B puts all runs of a project side by side) are
    skipped. ``best`` is the best checkpoint the run recorded, else its newest ``best-*.ckpt``. An
    unreadable ``last.ckpt`` newer than the match is an error, not silently passed over.
    """
    runs = sorted(experiment.glob("*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime, reverse=True)
    for last in runs[:ALIAS_SEARCH_RUNS]:
        try:
            ckpt = torch.load(last, map_location="cpu", weights_only=True, mmap=True)
        except Exception as err:  # noqa: BLE001 - any failure to read means the same to the user
            raise CheckpointError(
                f"{last}: the newest last.ckpt under {experiment} is unreadable ({type(err).__name__}); "
                "delete it or pass --ckpt_path FILE"
            ) from None
        if expected is not None and not same_model(
            ckpt.get(CHECKPOINT_META_KEY) if isinstance(ckpt, dict) else None, expected
        ):
            continue
        return (recorded_best(ckpt) if alias == "best" else None) or alias_in_folder(last.parent, alias)
    return None


def cli_main(args: list[str] | None = None) -> Pose2MetCLI:
    """Run the LightningCLI on ``args`` (default: ``sys.argv[1:]``)."""
    return Pose2MetCLI(
        Pose2MetTask,
        Pose2MetDataModule,
        subclass_mode_model=True,
        parser_class=Pose2MetArgumentParser,
        parser_kwargs={"prog": "pose2met"},  # not __main__.py under python -m
        save_config_callback=Pose2MetSaveConfig,
        # only into the run's folder (Lightning would also write trainer.log_dir/config.yaml, which
        # with W&B is the shared save_dir, overwritten by every run)
        save_config_kwargs={"overwrite": True, "save_to_log_dir": False},
        args=args,
        auto_configure_optimizers=False,
    )


EXIT_SIGTERM = 128 + signal.SIGTERM
EXIT_SIGINT = 128 + signal.SIGINT


def describe_failure(err: BaseException) -> tuple[int, str] | None:
    """``(exit code, one line)`` for a failure the user caused or asked for; ``None`` for a bug."""
    if isinstance(err, SIGTERMException):  # Lightning stops at a step boundary after SIGTERM
        return EXIT_SIGTERM, "stopped by SIGTERM; resume with --ckpt_path last"
    if isinstance(err, RuntimeError) and is_interrupt(err):  # a loader worker killed with the group
        code = EXIT_SIGINT if "Interrupt" in str(err) else EXIT_SIGTERM
        return code, f"stopped by a signal ({str(err).strip()}); resume with --ckpt_path last if saved"
    if isinstance(err, (MisconfigurationException, TrainingDiverged)):
        return (1 if isinstance(err, TrainingDiverged) else EXIT_INPUT_ERROR), str(err)
    if isinstance(err, INPUT_ERRORS) and (cause := input_error(err)) is not None:
        return EXIT_INPUT_ERROR, str(cause)
    if isinstance(err, OSError) and err.filename is not None and not isinstance(err, FileNotFoundError):
        return 1, f"{err.filename}: {err.strerror}"  # a folder that is read-only, a full disk, ...
    if type(err).__module__.startswith("wandb") and type(err).__name__ == "UsageError":
        return EXIT_INPUT_ERROR, f"W&B: {err} (or log offline: --trainer.logger.init_args.online false)"
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``pose2met`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print(USAGE)
        return 0 if argv else 2
    if argv[0] == "data":
        from pose2met.data.info import main as info_main

        if argv[1:2] != ["info"]:
            print("usage: pose2met data info FILE", file=sys.stderr)
            return 2
        return info_main(argv[2:])
    if argv[0] in {"infer", "export", "viz"}:
        from pose2met.infer import cli as infer_cli

        entry = {"infer": infer_cli.infer_main, "export": infer_cli.export_main, "viz": infer_cli.viz_main}
        return entry[argv[0]](argv[1:])
    if not argv[0].startswith("-") and argv[0] not in LIGHTNING_COMMANDS:
        close = difflib.get_close_matches(argv[0], COMMANDS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        print(f"error: unknown command {argv[0]!r} (commands: {', '.join(COMMANDS)}){hint}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    # the command line itself is read by LightningCLI (it warns when given both it and an equal list)
    try:
        cli_main(None if argv == sys.argv[1:] else argv)
    except BaseException as err:  # noqa: BLE001 - re-raised unless it is one of the failures below
        failure = describe_failure(err)
        if failure is None or os.environ.get("POSE2MET_TRACEBACK"):
            raise
        code, message = failure
        print(f"error: {message}", file=sys.stderr)
        return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
