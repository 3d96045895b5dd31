"""One real ``pose2met fit`` run through the ablation runner on SynthMet tiny, then its table row."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from pose2met.ablations.profile import measure
from pose2met.ablations.report import write_reports
from pose2met.ablations.runner import Paths, finished, run_all
from pose2met.ablations.tables import Budget, RunSettings, expand
from pose2met.models import STAPFormer

REPO = Path(__file__).resolve().parents[2]
TINY = {"depth": 1, "dim_feat": 16, "dim_rep": 32, "num_heads": 2}


def test_runner_end_to_end_on_synthmet_tiny(synthmet_tiny: Path, tmp_path: Path) -> None:
    tiny = {"max_train_clips": 8, "max_val_clips": 8, "max_test_clips": 8}
    budget = Budget("test", seeds=(0,), max_epochs=1, frames=(9,), kernels=(3,), strides=(3,), **tiny)
    enc = "--model.init_args.encoder.init_args."
    extra = [
        "--data.path",
        str(synthmet_tiny),
        "--data.batch_size",
        "4",
        "--data.num_workers",
        "0",
        "--data.persistent_workers",
        "false",
        "--trainer.limit_train_batches",
        "2",
        "--trainer.accelerator",
        "cpu",
    ]
    for key, value in TINY.items():
        extra += [enc + key, str(value)]
    paths = Paths(tmp_path / "results", tmp_path / "work")
    specs = expand(["t4"], budget)
    assert [s.run_id for s in specs] == ["hpe-T9-k3x3-s3x3-stc-stap-seed0"]
    outcomes = run_all(specs, budget, paths, cwd=REPO, logger="csv", extra=extra, echo=lambda _: None)
    log = paths.log(specs[0].run_id)
    assert [o.status for o in outcomes] == ["done"], log.read_text()[-3000:]
    record = json.loads(paths.json(specs[0].run_id).read_text())
    assert math.isfinite(record["metrics"]["test/mpjpe"]) and record["metrics"]["test/mpjpe"] > 0
    # the parameter count is the tiny model's (the overrides reached the encoder)
    expected = sum(p.numel() for p in STAPFormer(num_frames=9, **TINY).parameters()) + 32 * 3 + 3
    assert record["params"] == expected
    # a second pass resumes: nothing runs
    again = run_all(specs, budget, paths, cwd=REPO, logger="csv", extra=extra, echo=lambda _: None)
    assert [o.status for o in again] == ["skipped"]

    (md,) = write_reports(["t4"], budget, paths, REPO, extra)
    with (paths.out / "t4.csv").open() as handle:
        (row,) = list(csv.DictReader(handle))
    assert float(row["test/mpjpe_mean"]) == pytest.approx(record["metrics"]["test/mpjpe"])
    assert row["test/mpjpe_n"] == "1" and row["T"] == "9"
    assert f"| 9 | {record['metrics']['test/mpjpe']:.1f} ± - |" in md.read_text()

    # the run belongs to its arguments: without them it is not finished, and the report made without
    # them finds nothing and keeps the table it wrote before
    target = paths.json(specs[0].run_id)
    assert finished(target, extra) and not finished(target)
    before = md.read_text()
    assert write_reports(["t4"], budget, paths, REPO, echo=lambda _: None) == []
    assert md.read_text() == before
    target.write_text("{")  # a broken results file is not a finished run
    assert not finished(target, extra)


def test_report_only_keeps_the_timing_table(tmp_path: Path) -> None:
    """``--report-only`` reports runs; Table 5 has none (it is timed): neither re-timed nor rewritten."""
    paths = Paths(tmp_path / "results", tmp_path / "work")
    paths.out.mkdir(parents=True)
    (paths.out / "t5.md").write_text("committed timings")
    clips = {"max_train_clips": 8, "max_val_clips": 8, "max_test_clips": 8}
    budget = Budget("test", seeds=(0,), max_epochs=1, frames=(9,), kernels=(3,), strides=(3,), **clips)

    def no_timing(*args: object, **kwargs: object) -> None:
        raise AssertionError("Table 5 was re-timed")

    notes: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("pose2met.ablations.report.measure", no_timing)
        assert write_reports(["t5"], budget, paths, REPO, echo=notes.append, retime=False) == []
    assert (paths.out / "t5.md").read_text() == "committed timings"
    assert not (paths.out / "t5.csv").exists() and "left as it was" in notes[0]


def test_profile_counts_match_the_model() -> None:
    settings = RunSettings(frames=9, kernel=(5, 5), stride=(2, 2))
    cost = measure(settings, REPO, repeats=2, device="cpu")
    kwargs = {"depth": 4, "dim_feat": 64, "dim_rep": 256, "num_heads": 4, "mlp_ratio": 4.0, "joint_gcn": True}
    encoder = STAPFormer(num_frames=9, stap_kernel=(5, 5), stap_stride=(2, 2), **kwargs)
    assert cost.params == sum(p.numel() for p in encoder.parameters()) + 256 * 3 + 3
    # the pose head alone is 9 * 17 * 256 * 3 multiply-adds = 2 flops each; the encoder adds far more
    assert cost.gflops > 2 * 9 * 17 * 256 * 3 / 1e9
    assert cost.ms is not None and cost.ms > 0 and cost.fps == pytest.approx(9 / (cost.ms / 1e3))
