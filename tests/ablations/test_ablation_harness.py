"""Ablation harness: spec expansion, commands, resume, aggregation, writers and claim checks."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from pose2met.ablations import claims
from pose2met.ablations.__main__ import main
from pose2met.ablations.claims import Stat
from pose2met.ablations.report import TableRow, aggregate, format_stat, markdown, verdicts, write_csv
from pose2met.ablations.runner import Paths, build_command, finished, run_all
from pose2met.ablations.tables import FULL, QUICK, RunSettings, RunSpec, expand, parse_tables, table_cells

REPO = Path(__file__).resolve().parents[2]


def flag(cmd: list[str], name: str) -> str:
    """Value of the last ``name`` flag in ``cmd`` (later flags win in LightningCLI)."""
    idx = [i for i, a in enumerate(cmd) if a == name]
    assert idx, f"{name} missing from {cmd}"
    return cmd[idx[-1] + 1]


def test_expansion_unique_runs_shared_cells_and_seeds() -> None:
    specs = expand(["t4", "t5", "t6", "t7", "t3_t8"], FULL)
    ids = [s.run_id for s in specs]
    assert len(ids) == len(set(ids))
    # 3 (T) + 6 (k x s) + 6 (mixer x STAP) + 8 (energy x STAP) cells; the default HPE model is the
    # same cell in t4, t6 and t7 (2 duplicates), the STAP-off stc cell of t7 is also the pretraining
    # of 3D fine-tuning without STAP; no extra HPE run is needed for fine-tuning with STAP.
    assert len(specs) == (3 + 6 + 6 + 8 - 2) * 3
    shared = {s.run_id: s for s in specs}["hpe-T27-k3x3-s3x3-stc-stap-seed1"]
    assert shared.tables == ["t4", "t6", "t7", "t3_t8"] and shared.group == "t4+t6+t7+t3_t8"
    assert {s.seed for s in specs} == {0, 1, 2}
    # a fine-tuning run comes after the HPE run it starts from
    for i, spec in enumerate(specs):
        if spec.depends_on:
            assert spec.depends_on in ids[:i]
    assert [c.settings.frames for c in table_cells("t5", QUICK)] == [9, 27, 81] and not expand(["t5"], QUICK)


def test_parse_tables_rejects_unknown() -> None:
    assert parse_tables("t4, t7") == ["t4", "t7"]
    assert parse_tables(None) == ["t4", "t5", "t6", "t7", "t3_t8"]
    with pytest.raises(ValueError, match="t9"):
        parse_tables("t4,t9")


def test_command_overrides(tmp_path: Path) -> None:
    paths = Paths(tmp_path / "tables", tmp_path / "work")
    spec = RunSpec(RunSettings(kernel=(5, 5), stride=(2, 2), mixer="mixste", stap=False, frames=9), 2, ["t6"])
    cmd = build_command(spec, QUICK, paths, extra=["--data.path", "x.h5"])
    enc = "--model.init_args.encoder.init_args."
    assert json.loads(flag(cmd, enc + "stap_kernel")) == [5, 5]
    assert json.loads(flag(cmd, enc + "stap_stride")) == [2, 2]
    assert flag(cmd, enc + "joint_mixer") == "mixste" and flag(cmd, enc + "stap") == "false"
    assert (
        flag(cmd, "--data.num_frames") == "9"
        and flag(cmd, "--seed_everything") == "2"
        and flag(cmd, "--data.seed") == "2"
    )
    assert flag(cmd, "--trainer.max_epochs") == str(QUICK.max_epochs)
    assert flag(cmd, "--trainer.logger.init_args.group") == "t6"
    assert flag(cmd, "--trainer.logger.init_args.name") == spec.run_id
    assert flag(cmd, "--results_json") == str(tmp_path / "work" / "results" / f"{spec.run_id}.json")
    assert flag(cmd, "--data.path") == "x.h5"
    assert "conf/experiment/stapformer-s_synthmet-27f_cpu-hpe.yaml" in cmd

    unified = build_command(RunSpec(RunSettings(task="unified"), 0, ["t3_t8"]), FULL, paths, logger="csv")
    stages = json.loads(flag(unified, "--model.init_args.stages"))
    assert sum(s["epochs"] for s in stages) == FULL.max_epochs and stages[0]["kcal_weight"] == 0.0
    assert "--trainer.max_epochs" not in unified and "--trainer.logger.init_args.group" not in unified

    finetune = RunSpec(RunSettings(task="eee-3d-finetune"), 0, ["t3_t8"])
    with pytest.raises(ValueError, match="init_from"):
        build_command(finetune, QUICK, paths)
    assert (
        flag(build_command(finetune, QUICK, paths, init_from="a.ckpt"), "--model.init_args.init_from")
        == "a.ckpt"
    )


def fake_result(path: Path, **metrics: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"metrics": metrics, "params": 10, "checkpoint": f"{path.stem}.ckpt"}))


def test_resume_skips_finished_runs_and_passes_checkpoints(tmp_path: Path) -> None:
    paths = Paths(tmp_path / "tables", tmp_path / "work")
    specs = expand(["t3_t8"], QUICK)
    hpe = next(s for s in specs if s.settings.task == "hpe" and s.settings.stap)
    fake_result(paths.json(hpe.run_id), **{"test/mpjpe": 1.0})
    launched: list[list[str]] = []

    def launcher(cmd: list[str], log: Path, cwd: Path) -> int:
        launched.append(cmd)
        if "eee-3d" in flag(cmd, "--config") and "--model.init_args.init_from" not in cmd:
            return 1  # the 3D-input runs fail: no JSON
        fake_result(Path(flag(cmd, "--results_json")), **{"test/known/mae": 1.0})
        return 0

    outcomes = {
        o.run_id: o.status
        for o in run_all(specs, QUICK, paths, cwd=tmp_path, launcher=launcher, echo=lambda _: None)
    }
    assert outcomes[hpe.run_id] == "skipped"
    assert len(launched) == len(specs) - 1
    assert [o for r, o in outcomes.items() if "eee-3d-T" in r] == ["failed", "failed"]
    finetune = [c for c in launched if "--model.init_args.init_from" in c]
    assert sorted(flag(c, "--model.init_args.init_from") for c in finetune) == sorted(
        f"{s.run_id}.ckpt" for s in specs if s.settings.task == "hpe"
    )
    # second pass: only the failed runs run again
    launched.clear()
    run_all(specs, QUICK, paths, cwd=tmp_path, launcher=launcher, echo=lambda _: None)
    assert sorted(flag(c, "--trainer.logger.init_args.name") for c in launched) == sorted(
        r for r, o in outcomes.items() if o == "failed"
    )


def test_results_of_other_arguments_are_rerun_and_never_relabelled(tmp_path: Path) -> None:
    paths = Paths(tmp_path / "tables", tmp_path / "work")
    (spec,) = [s for s in expand(["t4"], QUICK)][:1]
    target = paths.json(spec.run_id)
    fake_result(target, **{"test/mpjpe": 1.0})  # made without extra arguments
    assert finished(target) and not finished(target, ["--trainer.max_steps", "2"])

    def silent(cmd: list[str], log: Path, cwd: Path) -> int:
        return 0  # exits 0 but writes no results (e.g. --test_after_fit false)

    (outcome,) = run_all([spec], QUICK, paths, cwd=tmp_path, extra=["--trainer.max_steps", "2"],
                         launcher=silent, echo=lambda _: None)  # fmt: skip
    assert outcome.status == "failed" and not target.exists()
    (kept,) = target.parent.glob(f"{spec.run_id}.replaced-*.json")  # the old result is kept aside
    assert json.loads(kept.read_text())["metrics"]["test/mpjpe"] == 1.0


def test_failed_pretraining_blocks_finetune(tmp_path: Path) -> None:
    paths = Paths(tmp_path / "tables", tmp_path / "work")
    specs = [s for s in expand(["t3_t8"], QUICK) if s.settings.task in ("hpe", "eee-3d-finetune")]
    outcomes = run_all(specs, QUICK, paths, cwd=tmp_path, launcher=lambda c, log, cwd: 1, echo=lambda _: None)
    status = {o.run_id: o.status for o in outcomes}
    assert sorted(status.values()) == ["blocked", "blocked", "failed", "failed"]


def test_aggregate_against_numpy() -> None:
    values = [31.5, 29.25, 33.0]
    stat = aggregate(values)
    mean = sum(values) / 3
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / 2)  # sample std by hand
    assert stat.mean == pytest.approx(mean) and stat.std == pytest.approx(std) and stat.n == 3
    assert stat.std == pytest.approx(np.std(values, ddof=1))
    assert aggregate([4.0]) == Stat(4.0, None, 1)
    assert aggregate([]).n == 0 and math.isnan(aggregate([]).mean)
    assert format_stat(Stat(31.25, 1.875, 3), 1) == "31.2 ± 1.9"
    assert format_stat(Stat(12345.0, None, 1), 0) == "12,345 ± -"
    assert format_stat(Stat(math.nan, None, 0), 1) == "n/a"
    assert format_stat(Stat(0.34145, None, 1), 3, exact=True) == "0.341"


def t7_rows(p1: dict[tuple[str, bool], tuple[float, float | None, int]]) -> list[TableRow]:
    return [
        TableRow({"mixer": m, "STAP": "on" if on else "off"}, f"cfg-{m}-{on}",
                 {"test/mpjpe": Stat(*v), "test/p_mpjpe": Stat(v[0] - 5, None, v[2])}, [f"run-{m}-{on}"])
        for (m, on), v in p1.items()
    ]  # fmt: skip


def test_markdown_and_csv_writer(tmp_path: Path) -> None:
    rows = t7_rows(
        {
            ("stconv", False): (50.0, 2.0, 3),
            ("stconv", True): (45.0, 1.0, 3),
            ("stc", False): (40.0, 0.5, 3),
            ("stc", True): (41.0, 0.25, 3),
        }
    )
    text = markdown("t7", rows, FULL, verdicts("t7", rows))
    assert "| mixer | STAP | P1 (mm) | P2 (mm) | config |" in text
    assert "| stconv | on | 45.0 ± 1.0 | 40.0 ± - | cfg-stconv-True |" in text
    assert "STAP on beats off for 1/2" in text and "does not hold here" in text
    assert "stc: on vs off 41.0 vs 40.0 (within seed std)" not in text  # |diff| = 1 > max std 0.5
    write_csv(tmp_path / "t7.csv", "t7", rows)
    with (tmp_path / "t7.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert [r["mixer"] for r in table] == ["stconv", "stconv", "stc", "stc"]
    assert float(table[1]["test/mpjpe_mean"]) == 45.0 and float(table[1]["test/mpjpe_std"]) == 1.0
    assert table[1]["test/mpjpe_n"] == "3" and table[1]["runs"] == "run-stconv-True"
    assert table[0]["test/p_mpjpe_std"] == ""


def test_claim_stap_and_noise_flag() -> None:
    holds = claims.stap_beats_off({("a", True): Stat(1.0, 0.1, 3), ("a", False): Stat(2.0, 0.1, 3)}, "P1")
    assert holds.holds is True and "1/1" in holds.details[0]
    noisy = claims.stap_beats_off({("a", True): Stat(1.0, 0.5, 3), ("a", False): Stat(1.2, 0.1, 3)}, "P1")
    assert noisy.holds is True and "within seed std" in noisy.details[1]
    missing = claims.stap_beats_off({("a", True): Stat(1.0, None, 1)}, "P1")
    assert missing.holds is None


def test_claims_with_missing_cells_do_not_hold_yet() -> None:
    stat = {("stc", True): Stat(float("nan"), None, 0), ("stc", False): Stat(float("nan"), None, 0),
            ("mixste", True): Stat(1.0, None, 1), ("mixste", False): Stat(2.0, None, 1)}  # fmt: skip
    partial = claims.stap_beats_off(stat, "P1")
    assert partial.holds is None and "1 comparison(s) not measured" in partial.details[-1]
    stat[("mixste", True)] = Stat(3.0, None, 1)  # a measured loss decides, whatever is missing
    assert claims.stap_beats_off(stat, "P1").holds is False
    frames = {9: Stat(60.0, None, 1), 27: Stat(45.0, None, 1), 81: Stat(float("nan"), None, 0)}
    assert claims.longer_t_is_better(frames).holds is None
    p1 = {(k, s): Stat(50.0 - (k == 5) * 2 - (s == 2) * 3, None, 1) for k in (3, 5) for s in (1, 2, 3)}
    del p1[(5, 3)]
    assert claims.kernel_and_stride(p1).holds is None


def test_claim_longer_t() -> None:
    verdict = claims.longer_t_is_better(
        {81: Stat(40.0, None, 1), 9: Stat(60.0, None, 1), 27: Stat(45.0, None, 1)}
    )
    assert verdict.holds is True and "2/2" in verdict.details[0]
    verdict = claims.longer_t_is_better(
        {81: Stat(46.0, None, 1), 9: Stat(60.0, None, 1), 27: Stat(45.0, None, 1)}
    )
    assert verdict.holds is False and "1/2" in verdict.details[0]


def test_claim_kernel_stride() -> None:
    # k=5 better at every stride, s=2 best at both kernels -> holds
    p1 = {(k, s): Stat(50.0 - (k == 5) * 2 - (s == 2) * 3, None, 1) for k in (3, 5) for s in (1, 2, 3)}
    assert claims.kernel_and_stride(p1).holds is True
    p1[(3, 1)] = Stat(40.0, None, 1)  # s=1 beats s=2 at k=3
    verdict = claims.kernel_and_stride(p1)
    assert verdict.holds is False and "s=2 beats s=1 and s=3 for 1/2 kernels" in verdict.details[0]


def test_claim_unified_gap() -> None:
    def mae(std_k: float, uni_k: float, std_u: float, uni_u: float) -> dict[tuple[str, str], Stat]:
        table = {
            ("3D input", "known"): 20.0,
            ("3D input", "unknown"): 40.0,
            ("2D standard", "known"): std_k,
            ("2D unified", "known"): uni_k,
            ("2D standard", "unknown"): std_u,
            ("2D unified", "unknown"): uni_u,
        }
        return {k: Stat(v, None, 1) for k, v in table.items()}

    # paper-like: gaps 6 -> 4 (known), 5 -> -3 (unknown): narrower on both, most on unknown
    assert claims.unified_closes_gap(mae(26.0, 24.0, 45.0, 37.0)).holds is True
    # narrower on both but more on known
    assert claims.unified_closes_gap(mae(30.0, 21.0, 45.0, 44.0)).holds is False
    # wider on known
    assert claims.unified_closes_gap(mae(22.0, 24.0, 45.0, 37.0)).holds is False


def test_cli_dry_run_and_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "--quick",
                "--tables",
                "t7",
                "--dry-run",
                "--out",
                str(tmp_path),
                "--work",
                str(tmp_path),
                "--root",
                str(REPO),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "6 runs, 0 finished, 6 to run; estimate" in out and "hpe-T27-k3x3-s3x3-mixste-nostap-seed0" in out
    assert main(["--quick", "--tables", "t9", "--root", str(REPO)]) == 2
    assert "t9" in capsys.readouterr().err
    assert main(["--quick", "--root", str(tmp_path)]) == 2
    assert "conf/experiment" in capsys.readouterr().err


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads process states from /proc")
def test_stopping_the_launcher_stops_the_run_and_its_children(tmp_path: Path) -> None:
    """Ctrl-C / SIGTERM of the harness must not leave a training run (or its DDP ranks) behind."""
    import signal
    import sys
    import time

    from pose2met.ablations.runner import subprocess_launcher

    pids = tmp_path / "pids"
    script = (
        "import os, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}')\n"
        "time.sleep(60)\n"
    )

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 2.0)
    try:
        with pytest.raises(KeyboardInterrupt):
            subprocess_launcher([sys.executable, "-c", script], tmp_path / "run.log", tmp_path)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    run_pid, child_pid = map(int, pids.read_text().split())
    time.sleep(0.5)
    for pid in (run_pid, child_pid):  # gone, or a zombie waiting for its new parent to reap it
        status = Path(f"/proc/{pid}/status")
        state = status.read_text().split("State:")[1].split()[0] if status.exists() else "gone"
        assert state in ("gone", "Z"), (pid, state)
