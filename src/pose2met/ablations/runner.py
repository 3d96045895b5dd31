"""Run the training runs of the ablation harness as ``pose2met fit`` subprocesses, with resume.

A run is finished iff its results JSON (``--results_json``, written atomically after the post-fit
test) is readable and records the same extra ``pose2met`` arguments (``-- ...``) as this call;
finished runs are skipped, so a killed harness continues where it stopped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pose2met.ablations.tables import Budget, RunSpec
from pose2met.atomic import write_atomic

#: Runs the ``pose2met`` entry point with the interpreter of this process (as a module, so that
#: Lightning's DDP launcher can start the other ranks the same way).
POSE2MET = [sys.executable, "-m", "pose2met.cli"]
#: Key of the results JSON where the harness records the extra arguments a run was started with.
EXTRA_KEY = "ablation_extra_args"
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


def finished(path: Path, extra: Sequence[str] = ()) -> bool:
    """Whether ``path`` holds a readable result of a run started with the extra arguments ``extra``."""
    if not path.exists():
        return False
    try:
        record = load_result(path)
    except ValueError:
        return False  # broken: rerun
    return list(record.get(EXTRA_KEY, [])) == list(extra)


def record_extra(path: Path, extra: Sequence[str]) -> None:
    """Store ``extra`` in the results JSON ``path`` (atomically)."""
    record = load_result(path)
    record[EXTRA_KEY] = list(extra)
    write_atomic(path, lambda tmp: tmp.write_text(json.dumps(record, indent=2, sort_keys=True)))


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
        "--data.seed", str(spec.seed),  # the data order, subsets and flips too, not only the weights
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
        # its own process group, so that stopping the harness stops the run and its DDP ranks too
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            return proc.wait()
        except BaseException:  # Ctrl-C, SIGTERM (see pose2met.data.interrupts), any error
            stop_process_group(proc)
            raise


def stop_process_group(proc: subprocess.Popen, grace_s: float = 30.0) -> None:
    """SIGTERM the process group of ``proc`` (SIGKILL after ``grace_s``) and reap it."""
    kill = getattr(os, "killpg", None)
    try:
        if kill is not None:
            kill(proc.pid, signal.SIGTERM)
        else:  # no process groups (Windows)
            proc.terminate()
        proc.wait(timeout=grace_s)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        if kill is not None:
            kill(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
        proc.wait()


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
        if finished(target, extra):
            outcomes[spec.run_id] = Outcome(spec.run_id, "skipped", detail="finished earlier")
            echo(f"{prefix}: finished earlier, skipped")
            continue
        init_from = None
        if spec.depends_on is not None:
            dep = paths.json(spec.depends_on)
            if not finished(dep, extra):
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
        if target.exists():  # a result of other arguments (or a broken one): kept aside, never reused
            stale = target.with_name(f"{target.stem}.replaced-{time.strftime('%Y%m%d-%H%M%S')}.json")
            os.replace(target, stale)
            echo(f"{prefix}: earlier result made with other arguments moved to {stale.name}")
        cmd = build_command(spec, budget, paths, logger=logger, init_from=init_from, extra=extra)
        echo(f"{prefix}: running (log: {paths.log(spec.run_id)})")
        start = time.perf_counter()
        code = launcher(cmd, paths.log(spec.run_id), cwd)
        wall = time.perf_counter() - start
        if code == 0 and target.exists():
            record_extra(target, extra)
            outcomes[spec.run_id] = Outcome(spec.run_id, "done", wall)
            echo(f"{prefix}: done in {wall:.0f} s")
        else:
            why = f"exit code {code}" if code else f"exit code 0 but no {target}"
            outcomes[spec.run_id] = Outcome(
                spec.run_id, "failed", wall, f"{why}; see {paths.log(spec.run_id)}"
            )
            echo(f"{prefix}: FAILED ({why}); see {paths.log(spec.run_id)}")
    return list(outcomes.values())
