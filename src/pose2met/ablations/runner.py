"""Run the training runs of the ablation harness as ``pose2met fit`` subprocesses, with resume.

A run is finished iff its results JSON (``--results_json``, written atomically after the post-fit
test) exists; finished runs are skipped, so a killed harness continues where it stopped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pose2met.ablations.tables import Budget, RunSpec

#: Runs the ``pose2met`` entry point with the interpreter of this process.
POSE2MET = [sys.executable, "-c", "import sys; from pose2met.cli import main; sys.exit(main())"]
TRAINER = "conf/trainer/default.yaml"


@dataclass(frozen=True)
class Paths:
    """Tables go under ``out``; results JSONs, logs, checkpoints and W&B runs under ``work``."""

    out: Path
    work: Path

    def json(self, run_id: str) -> Path:
        return self.work / "results" / f"{run_id}.json"

    def log(self, run_id: str) -> Path:
        return self.work / "logs" / f"{run_id}.log"

    def checkpoints(self, run_id: str) -> Path:
        return self.work / "checkpoints" / run_id


def load_result(path: Path) -> dict:
    """Read one results JSON; a broken file raises naming it."""
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not a readable results JSON ({err})") from err
    if not isinstance(record, dict) or not isinstance(record.get("metrics"), dict):
        raise ValueError(
            f"{path}: expected an object with a 'metrics' object (a pose2met --results_json file)"
        )
    return record


def build_command(
    spec: RunSpec,
    budget: Budget,
    paths: Paths,
    *,
    logger: str = "wandb",
    init_from: str | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """The ``pose2met fit`` command of ``spec`` (``init_from``: checkpoint for 3D fine-tuning)."""
    if logger not in ("wandb", "csv"):
        raise ValueError(f"logger must be 'wandb' or 'csv', got {logger!r}")
    s = spec.settings
    if s.pretrain is not None and not init_from:
        raise ValueError(f"run {spec.run_id} needs init_from (the checkpoint of {spec.depends_on})")
    cmd = [
        *POSE2MET,
        "fit",
        "--config",
        TRAINER,
        "--config",
        f"conf/logger/{logger}.yaml",
        "--config",
        s.config,
    ]
    cmd += s.overrides()
    cmd += [
        "--seed_everything", str(spec.seed),
        "--data.max_train_clips", str(budget.max_train_clips),
        "--trainer.check_val_every_n_epoch", "1",
        "--data.max_val_clips", str(budget.max_val_clips),
        "--model.init_args.test_flip", str(budget.test_flip).lower(),
        "--trainer.logger.init_args.save_dir", str(paths.work / logger),
        "--trainer.logger.init_args.name", spec.run_id,
        "--checkpoint.dirpath", str(paths.checkpoints(spec.run_id)),
        "--checkpoint.save_last", "false",
        "--results_json", str(paths.json(spec.run_id)),
    ]  # fmt: skip
    if s.task == "unified":  # the stages set max_epochs
        cmd += ["--model.init_args.stages", json.dumps(budget.unified_stages())]
    else:
        cmd += ["--trainer.max_epochs", str(budget.max_epochs)]
    if budget.max_test_clips is not None:
        cmd += ["--data.max_test_clips", str(budget.max_test_clips)]
    if logger == "wandb":
        cmd += ["--trainer.logger.init_args.group", spec.group]
    if init_from:
        cmd += ["--model.init_args.init_from", init_from]
    return [*cmd, *extra]


@dataclass
class Outcome:
    """What happened to one run: ``done`` (ran now), ``skipped`` (JSON existed), ``failed``, ``blocked``."""

    run_id: str
    status: str
    wall_s: float = 0.0
    detail: str = ""


Launcher = Callable[[list[str], Path, Path], int]


def subprocess_launcher(cmd: list[str], log: Path, cwd: Path) -> int:
    """Run ``cmd`` in ``cwd`` with output to ``log``; W&B offline unless the user set ``WANDB_MODE``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "WANDB_MODE": os.environ.get("WANDB_MODE", "offline")}
    with log.open("w") as handle:
        handle.write(" ".join(cmd) + "\n\n")
        handle.flush()
        return subprocess.run(cmd, cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT).returncode


def run_all(
    specs: Sequence[RunSpec],
    budget: Budget,
    paths: Paths,
    *,
    cwd: Path,
    logger: str = "wandb",
    extra: Sequence[str] = (),
    launcher: Launcher = subprocess_launcher,
    echo: Callable[[str], None] = print,
) -> list[Outcome]:
    """Run every spec whose JSON is missing, in order; a failed run blocks the runs that need it."""
    outcomes: dict[str, Outcome] = {}
    for i, spec in enumerate(specs, 1):
        target = paths.json(spec.run_id)
        prefix = f"[{i}/{len(specs)}] {spec.run_id}"
        if target.exists():
            outcomes[spec.run_id] = Outcome(spec.run_id, "skipped", detail="finished earlier")
            echo(f"{prefix}: finished earlier, skipped")
            continue
        init_from = None
        if spec.depends_on is not None:
            dep = paths.json(spec.depends_on)
            if not dep.exists():
                outcomes[spec.run_id] = Outcome(
                    spec.run_id, "blocked", detail=f"{spec.depends_on} did not finish"
                )
                echo(f"{prefix}: blocked, {spec.depends_on} has no results")
                continue
            init_from = load_result(dep).get("checkpoint")
            if not init_from:
                outcomes[spec.run_id] = Outcome(spec.run_id, "blocked", detail=f"{dep} names no checkpoint")
                echo(f"{prefix}: blocked, {dep} names no checkpoint")
                continue
        cmd = build_command(spec, budget, paths, logger=logger, init_from=init_from, extra=extra)
        echo(f"{prefix}: running (log: {paths.log(spec.run_id)})")
        start = time.perf_counter()
        code = launcher(cmd, paths.log(spec.run_id), cwd)
        wall = time.perf_counter() - start
        if code == 0 and target.exists():
            outcomes[spec.run_id] = Outcome(spec.run_id, "done", wall)
            echo(f"{prefix}: done in {wall:.0f} s")
        else:
            why = f"exit code {code}" if code else f"exit code 0 but no {target}"
            outcomes[spec.run_id] = Outcome(
                spec.run_id, "failed", wall, f"{why}; see {paths.log(spec.run_id)}"
            )
            echo(f"{prefix}: FAILED ({why}); see {paths.log(spec.run_id)}")
    return list(outcomes.values())
