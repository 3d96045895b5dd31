"""Training: the CLI on every experiment config, the unified schedule, resume, loss decrease, errors."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from pose2met.cli import cli_main, main
from pose2met.data.datamodule import Pose2MetDataModule
from pose2met.lit import EnergyTask, HPETask, TrainingStage
from pose2met.lit.callbacks import StageAwareCheckpoint
from pose2met.lit.checkpoint_io import AtomicCheckpointIO
from pose2met.models import STAPFormer

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "conf"
TINY_ENCODER = {"depth": 1, "dim_feat": 16, "dim_rep": 32, "num_heads": 2}
T = 9


def tiny_encoder(**overrides) -> STAPFormer:
    kwargs = {"num_frames": T, "stap_kernel": (3, 3), "stap_stride": (3, 3), **TINY_ENCODER, **overrides}
    return STAPFormer(**kwargs)


def datamodule(path: Path, **overrides) -> Pose2MetDataModule:
    kwargs = {"path": str(path), "num_frames": T, "batch_size": 4, "num_workers": 0, **overrides}
    return Pose2MetDataModule(**kwargs)


def tiny_trainer(tmp_path: Path, **overrides) -> L.Trainer:
    kwargs = {
        "accelerator": "cpu",
        "devices": 1,
        "max_epochs": 1,
        "limit_train_batches": 3,
        "limit_val_batches": 2,
        "limit_test_batches": 2,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "default_root_dir": str(tmp_path),
        **overrides,
    }
    return L.Trainer(**kwargs)


def cli_args(config: Path, data_file: Path, root: Path) -> list[str]:
    enc = "--model.init_args.encoder.init_args."
    args = [
        "fit",
        "--config", str(CONF / "trainer/default.yaml"),
        "--config", str(CONF / "logger/csv.yaml"),
        "--config", str(config),
        "--data.path", str(data_file),
        "--data.num_frames", str(T),
        "--data.batch_size", "4",
        "--data.num_workers", "0",
        "--data.persistent_workers", "false",
        "--data.eval_windows", "cover",
        "--trainer.accelerator", "cpu",
        "--trainer.devices", "1",
        "--trainer.strategy", "auto",
        "--trainer.precision", "32-true",
        "--trainer.fast_dev_run", "true",
        "--trainer.default_root_dir", str(root),
        "--trainer.logger.init_args.save_dir", str(root),
    ]  # fmt: skip
    for key, value in TINY_ENCODER.items():
        args += [enc + key, str(value)]
    return args


EXPERIMENTS = sorted((CONF / "experiment").glob("*.yaml"))


@pytest.fixture(scope="module")
def hpe_checkpoint(synthmet_tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint of a tiny HPE run (for 3d_finetune / init_from)."""
    root = tmp_path_factory.mktemp("hpe_ckpt")
    task = HPETask(tiny_encoder())
    trainer = tiny_trainer(root, enable_checkpointing=True)
    trainer.fit(task, datamodule=datamodule(synthmet_tiny))
    path = root / "hpe.ckpt"
    trainer.save_checkpoint(path)
    return path


@pytest.mark.parametrize("config", EXPERIMENTS, ids=lambda p: p.stem)
def test_cli_fast_dev_run_every_experiment(
    config: Path, synthmet_tiny: Path, hpe_checkpoint: Path, tmp_path: Path
) -> None:
    args = cli_args(config, synthmet_tiny, tmp_path)
    if "finetune" in config.stem:
        args += ["--model.init_args.init_from", str(hpe_checkpoint)]
    if "h36m" in config.stem:  # SynthMet has no MotionBERT source names to exclude by
        args += ["--model.init_args.motionbert_exclude", "false"]
    cli = cli_main(args)
    assert cli.trainer.state.finished
    assert torch.isfinite(cli.trainer.callback_metrics["train/loss"])
    # a smoke run leaves nothing behind (no last.ckpt for a later `--ckpt_path last`, no figures)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == []


def test_unified_schedule_freezes_calorie_head_in_hpe_stage(synthmet_tiny: Path, tmp_path: Path) -> None:
    stages = [TrainingStage("hpe", 1, 1.0, 0.0), TrainingStage("joint", 1, 1.0, 1.0)]
    task = EnergyTask(tiny_encoder(), setting="unified", stages=stages, kcal_range=(0.0, 1000.0))
    head_before = [p.detach().clone() for p in task.model.calorie_head.parameters()]
    enc_before = [p.detach().clone() for p in task.model.encoder.parameters()]
    seen: list[tuple[int, list[torch.Tensor]]] = []

    class Snapshot(Callback):
        def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            seen.append(
                (trainer.current_epoch, [p.detach().clone() for p in task.model.calorie_head.parameters()])
            )

    trainer = tiny_trainer(tmp_path, max_epochs=5, callbacks=[Snapshot()])
    trainer.fit(task, datamodule=datamodule(synthmet_tiny))
    assert trainer.current_epoch == 2, "max_epochs must follow the stages' total (2)"
    (e0, head_after_hpe), (e1, head_after_joint) = seen
    assert all(torch.equal(a, b) for a, b in zip(head_before, head_after_hpe, strict=True)), (
        "calorie head moved in HPE stage"
    )
    assert any(not torch.equal(a, b) for a, b in zip(head_after_hpe, head_after_joint, strict=True)), (
        "joint stage idle"
    )
    assert any(
        not torch.equal(a, b) for a, b in zip(enc_before, task.model.encoder.parameters(), strict=True)
    )
    results = trainer.test(task, datamodule=datamodule(synthmet_tiny), verbose=False)[0]
    assert {"test/mpjpe", "test/mae", "test/known/mae"} <= set(results)


def test_best_checkpoint_never_comes_from_a_stage_without_kcal(synthmet_tiny: Path, tmp_path: Path) -> None:
    stages = [TrainingStage("hpe", 2, 1.0, 0.0), TrainingStage("joint", 1, 1.0, 1.0)]
    task = EnergyTask(tiny_encoder(), setting="unified", stages=stages, kcal_range=(0.0, 1000.0))
    # save_top_k=-1 keeps every candidate epoch: a plain ModelCheckpoint would keep all three
    ckpt = StageAwareCheckpoint(
        dirpath=tmp_path / "ckpt", monitor="val/mae", save_top_k=-1, filename="{epoch}"
    )
    trainer = tiny_trainer(tmp_path, max_epochs=3, enable_checkpointing=True, callbacks=[ckpt])
    trainer.fit(task, datamodule=datamodule(synthmet_tiny))
    assert sorted(Path(p).name for p in ckpt.best_k_models) == ["epoch=2.ckpt"]
    assert Path(ckpt.best_model_path).name == "epoch=2.ckpt"


def test_stage_aware_checkpoint_defers_to_the_module() -> None:
    ckpt = StageAwareCheckpoint(monitor="val/mae")
    value = torch.tensor(1.0)
    plain = SimpleNamespace(lightning_module=object())  # no selectable_epoch: ModelCheckpoint's rule
    assert ckpt.check_monitor_top_k(plain, value)  # type: ignore[arg-type]
    for selectable in (True, False):
        trainer = SimpleNamespace(lightning_module=SimpleNamespace(selectable_epoch=lambda s=selectable: s))
        assert ckpt.check_monitor_top_k(trainer, value) is selectable  # type: ignore[arg-type]


@pytest.mark.parametrize("setting", ["hpe", "standard", "3d_input"])
def test_loss_decreases_on_fixed_batch(synthmet_tiny: Path, setting: str) -> None:
    dm = datamodule(synthmet_tiny, flip_augment=False)
    dm.prepare_data()
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    task = (
        HPETask(tiny_encoder())
        if setting == "hpe"
        else EnergyTask(tiny_encoder(), setting=setting, kcal_range=(0.0, 1000.0))
    )
    task.target_space = dm.target_space
    optimizer = torch.optim.AdamW(task.parameters(), lr=2e-3)
    task.train()
    losses = []
    for _ in range(60):
        loss = _loss(task, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0], losses


def _loss(task, batch) -> torch.Tensor:
    """The training loss without Lightning's logging (no trainer attached)."""
    from pose2met.lit.losses import kcal_kl_loss, pose_loss
    from pose2met.models.energy_bins import gaussian_target

    out = task.model(task.model_input(batch))
    total = torch.zeros(())
    if task.has_pose:
        total = total + pose_loss(out["pose_3d"], batch["target_3d"], task.pose_loss_weights)["loss"]
    if task.has_kcal:
        centers = task.model.calorie_head.bin_centers
        total = total + kcal_kl_loss(
            out["kcal_logits"], gaussian_target(batch["kcal"], centers, task.kcal_sigma)
        )
    return total


class Crash(RuntimeError):
    """The simulated failure of a killed run."""


class KillAt(Callback):
    """Simulates a crash after ``step`` optimizer steps (after the step's checkpoint is written)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        if trainer.global_step == self.step:
            raise Crash(f"killed at step {self.step}")


def _resume_run(
    data: Path, root: Path, kill_at: int | None, ckpt_path: str | None, workers: int = 0
) -> dict[str, float]:
    L.seed_everything(7, workers=True)
    task = HPETask(tiny_encoder(dropout=0.1))
    ckpt = ModelCheckpoint(dirpath=root, every_n_train_steps=1, save_top_k=-1, filename="{step}")
    callbacks = [ckpt] + ([KillAt(kill_at)] if kill_at else [])
    trainer = tiny_trainer(
        root,
        max_epochs=2,
        limit_train_batches=4,
        deterministic=True,
        callbacks=callbacks,
        enable_checkpointing=True,
    )
    dm = datamodule(data, max_train_clips=16, flip_augment=True, num_workers=workers)
    trainer.fit(task, datamodule=dm, ckpt_path=ckpt_path)
    return {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}


def test_resume_mid_epoch_gives_same_metrics(synthmet_tiny: Path, tmp_path: Path) -> None:
    full = _resume_run(synthmet_tiny, tmp_path / "full", None, None)
    with pytest.raises(Crash):
        _resume_run(synthmet_tiny, tmp_path / "killed", 7, None)  # crash at step 7, mid second epoch
    killed_ckpt = tmp_path / "killed" / "step=6.ckpt"
    assert killed_ckpt.is_file()
    # resumed with two loader workers: flips are seeded per item, so workers change nothing
    resumed = _resume_run(synthmet_tiny, tmp_path / "resumed", None, str(killed_ckpt), workers=2)
    assert full.keys() == resumed.keys() and "val/mpjpe" in full
    for key in full:
        assert resumed[key] == pytest.approx(full[key], rel=1e-6, abs=1e-6), key


class InterruptAt(Callback):
    """After ``step`` optimizer steps: ``signals`` sent to this process during the next backward, or
    a ``KeyboardInterrupt`` at the next batch's start (Ctrl-C while the loader works)."""

    def __init__(self, step: int, signals: tuple[int, ...] = (), in_validation: bool = False) -> None:
        self.step, self.signals, self.in_validation = step, signals, in_validation

    def on_train_batch_start(self, trainer: L.Trainer, *args) -> None:
        if trainer.global_step == self.step and not self.signals:
            raise KeyboardInterrupt

    def on_before_backward(self, trainer: L.Trainer, *args) -> None:
        if trainer.global_step == self.step and not self.in_validation:
            for sig in self.signals:
                os.kill(os.getpid(), sig)

    def on_validation_batch_start(self, trainer: L.Trainer, *args) -> None:
        if trainer.global_step == self.step and self.in_validation and not trainer.sanity_checking:
            for sig in self.signals:
                os.kill(os.getpid(), sig)


def _interruptible_run(
    data: Path,
    root: Path,
    interrupt: InterruptAt | None = None,
    ckpt_path: str | None = None,
    save_last: bool = True,
) -> dict[str, float]:
    """The recipe's checkpointing (last + best by val/loss), validating only at the end of epoch 2."""
    L.seed_everything(7, workers=True)
    task = HPETask(tiny_encoder(dropout=0.1))
    ckpt = StageAwareCheckpoint(
        dirpath=root, monitor="val/loss", save_last=save_last, filename="best-{epoch:03d}"
    )
    trainer = tiny_trainer(
        root,
        max_epochs=2,
        limit_train_batches=4,
        check_val_every_n_epoch=2,
        deterministic=True,
        callbacks=[ckpt] + ([interrupt] if interrupt else []),
        enable_checkpointing=True,
    )
    sigint = signal.getsignal(signal.SIGINT)  # Lightning ignores Ctrl-C after an interrupt
    try:
        trainer.fit(
            task, datamodule=datamodule(data, max_train_clips=16, flip_augment=True), ckpt_path=ckpt_path
        )
    finally:
        signal.signal(signal.SIGINT, sigint)
    return {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}


@pytest.mark.parametrize(
    ("signals", "saved_step"),
    [((), 6), ((signal.SIGINT,), 7), ((signal.SIGTERM,), 7), ((signal.SIGINT, signal.SIGINT), None)],
    ids=["ctrl-c-in-loader", "ctrl-c-in-step", "sigterm-in-step", "ctrl-c-twice"],
)
def test_interrupt_saves_last_and_resumes_exactly(
    synthmet_tiny: Path, tmp_path: Path, signals: tuple[int, ...], saved_step: int | None
) -> None:
    with pytest.raises(SystemExit):  # Lightning exits after Ctrl-C; SIGTERM's exception is a SystemExit
        _interruptible_run(synthmet_tiny, tmp_path / "killed", InterruptAt(6, signals))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    last = tmp_path / "killed" / "last.ckpt"
    assert not list((tmp_path / "killed").glob("best-*.ckpt"))  # no validation ran
    if saved_step is None:  # a second Ctrl-C stops inside the step, whose state is half updated
        assert not last.exists()
        return
    assert torch.load(last, weights_only=False)["global_step"] == saved_step  # mid second epoch
    full = _interruptible_run(synthmet_tiny, tmp_path / "full")
    resumed = _interruptible_run(synthmet_tiny, tmp_path / "resumed", ckpt_path=str(last))
    assert full.keys() == resumed.keys() and "val/mpjpe" in full
    for key in full:
        assert resumed[key] == pytest.approx(full[key], rel=1e-6, abs=1e-6), key


def test_interrupt_during_validation_and_without_save_last(
    synthmet_tiny: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    # Ctrl-C during the last epoch's validation: the validation finishes, then the run stops with last.ckpt
    with pytest.raises(SystemExit):
        _interruptible_run(
            synthmet_tiny, tmp_path / "val", InterruptAt(8, (signal.SIGINT,), in_validation=True)
        )
    assert torch.load(tmp_path / "val" / "last.ckpt", weights_only=False)["global_step"] == 8
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert "interrupted: saved" in caplog.text  # the message is seen where the test looks
    caplog.clear()
    # --checkpoint.save_last false: nothing is saved, and nothing claims so
    with pytest.raises(SystemExit):
        _interruptible_run(
            synthmet_tiny, tmp_path / "off", InterruptAt(6, (signal.SIGTERM,)), save_last=False
        )
    assert not list((tmp_path / "off").glob("*.ckpt"))
    assert "interrupted: saved" not in caplog.text


def test_checkpoint_writes_never_truncate_the_previous_file(tmp_path: Path) -> None:
    io = AtomicCheckpointIO()
    target = tmp_path / "ckpts" / "last.ckpt"
    io.save_checkpoint({"step": 1}, target)
    assert torch.load(target)["step"] == 1

    class Unpicklable:
        def __reduce__(self) -> tuple:
            raise OSError(28, "No space left on device")  # a write that fails halfway

    with pytest.raises(OSError, match="No space"):
        io.save_checkpoint({"step": 2, "bad": Unpicklable()}, target)
    assert torch.load(target)["step"] == 1  # the previous checkpoint is intact
    assert sorted(p.name for p in target.parent.iterdir()) == ["last.ckpt"]  # no temporary file left


def test_energy_task_on_data_without_kcal_fails_clearly(tmp_path: Path, synthmet_tiny: Path) -> None:
    import h5py

    no_kcal = tmp_path / "no_kcal.h5"
    no_kcal.write_bytes(synthmet_tiny.read_bytes())
    with h5py.File(no_kcal, "a") as f:
        del f["sequences/kcal"]
    task = EnergyTask(tiny_encoder(), setting="standard")
    with pytest.raises(ValueError, match="kcal"):
        tiny_trainer(tmp_path).fit(task, datamodule=datamodule(no_kcal))


def test_energy_eval_per_sequence_scores_each_video_once(synthmet_tiny: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    task = EnergyTask(tiny_encoder(), kcal_range=(0.0, 1000.0), energy_eval="sequence", test_flip=False)
    with torch.no_grad():  # sharper, input-dependent distributions than the initial, nearly flat ones
        for layer in task.model.calorie_head.mlp:
            if isinstance(layer, torch.nn.Linear):
                layer.weight.normal_(0.0, 1.0)
    dm = datamodule(synthmet_tiny, batch_size=3)
    trainer = tiny_trainer(tmp_path, limit_test_batches=1.0)
    (result,) = trainer.test(task, datamodule=dm, verbose=False)
    # reference: every test window through the same model, mixed per sequence in NumPy
    probs, seqs, weights, labels = [], [], [], {}
    task.eval()
    with torch.no_grad():
        for batch in dm.test_dataloader():
            probs.append(task(batch["input_2d"])["kcal_logits"].softmax(-1).double().numpy())
            seqs += batch["sequence_index"].tolist()
            weights += (batch["frame_index"] >= 0).sum(-1).tolist()
            labels.update(zip(batch["sequence_index"].tolist(), batch["kcal"].double().tolist(), strict=True))
    p, seqs, weights = np.concatenate(probs), np.array(seqs), np.array(weights, dtype=float)
    ids = np.unique(seqs)
    assert len(ids) < len(seqs)  # several windows per video: the two evaluations differ
    centers = task.model.calorie_head.bin_centers.double().numpy()
    mixtures = np.stack([weights[seqs == i] @ p[seqs == i] / weights[seqs == i].sum() for i in ids])
    error = mixtures @ centers - np.array([labels[i] for i in ids])
    assert result["test/mae_expectation"] == pytest.approx(np.abs(error).mean(), rel=1e-5)
    assert result["test/rmse_expectation"] == pytest.approx(np.sqrt((error**2).mean()), rel=1e-5)
    per_clip = p @ centers - np.array([labels[i] for i in seqs])
    assert abs(np.abs(per_clip).mean() - np.abs(error).mean()) > 1.0  # kcal/h: clip scoring differs


def test_bad_task_configs_raise() -> None:
    with pytest.raises(ValueError, match="needs init_from: pass --model.init_args.init_from"):
        EnergyTask(tiny_encoder(), setting="3d_finetune")
    with pytest.raises(ValueError, match="epochs"):
        EnergyTask(tiny_encoder(), setting="unified", stages=[TrainingStage("hpe", 0)])


def test_cli_unknown_key_names_it(synthmet_tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = cli_args(CONF / "experiment/stapformer-s_synthmet-27f_cpu-hpe.yaml", synthmet_tiny, tmp_path)
    with pytest.raises(SystemExit) as exc:
        cli_main([*args, "--model.init_args.encoder.init_args.no_such_option", "3"])
    assert exc.value.code != 0
    assert "no_such_option" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "words", "hint"),
    [
        (["--trainer.max_epochz", "1"], "unrecognized arguments: --trainer.max_epochz",
         "--trainer.max_epochs"),
        (["--model.init_args.encoder.init_args.dept", "2"], "Option 'dept' is not accepted", "depth"),
        (["--model.init_args.pose_protocl", "h36m"], "Option 'pose_protocl' is not accepted",
         "pose_protocol"),
        (["--config", "data_typo.yaml"], "does not accept option 'data.batchsize'", "data.batch_size"),
        (["--model.init_args.encoder.init_args.zzzz", "2"], "Option 'zzzz' is not accepted", None),
    ],
)  # fmt: skip
def test_cli_typo_gets_one_usage_line_and_the_closest_key(
    extra: list[str], words: str, hint: str | None, synthmet_tiny: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A mistyped key names itself and the accepted key closest to it, after one usage line (not ~90)."""
    monkeypatch.chdir(tmp_path)
    Path("data_typo.yaml").write_text("data:\n  batchsize: 3\n")
    args = cli_args(CONF / "experiment/stapformer-s_synthmet-27f_cpu-hpe.yaml", synthmet_tiny, tmp_path)
    with pytest.raises(SystemExit) as exc:
        main([*args, *extra])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: pose2met fit [--config FILE ...] [--key value ...]\n"), err
    assert "--trainer.accelerator" not in err and words in err
    hints = [line for line in err.splitlines() if line.startswith("hint: ")]
    assert hints == ([f"hint: did you mean {hint}?"] if hint else []), err


def test_cli_recipe_without_logger_config_says_what_is_missing(capsys: pytest.CaptureFixture) -> None:
    """Recipes name their run (logger init_args) but take the logger class from conf/logger/."""
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--config", str(CONF / "experiment/stapformer-s_synthmet-27f_cpu-hpe.yaml")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and err[-1].startswith("error: trainer.logger: the config sets logger settings"), err
    assert "--config conf/logger/csv.yaml" in err[-1] and "Subtypes" not in err[-1]


def test_cli_results_json_after_fit(synthmet_tiny: Path, tmp_path: Path) -> None:
    """`--results_json` holds the test metrics of the best checkpoint, the parameter count and the folders."""
    import json

    config = CONF / "experiment/stapformer-s_synthmet-27f_cpu-hpe.yaml"
    args = cli_args(config, synthmet_tiny, tmp_path)
    i = args.index("--trainer.fast_dev_run")
    del args[i : i + 2]  # a real (tiny) fit, so that the best checkpoint is tested
    out = tmp_path / "results" / "run.json"
    extra = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
             "--trainer.limit_val_batches", "2", "--trainer.limit_test_batches", "2",
             "--trainer.check_val_every_n_epoch", "1", "--results_json", str(out)]  # fmt: skip
    cli = cli_main(args + extra)
    record = json.loads(out.read_text())
    assert record["metrics"]["test/mpjpe"] > 0 and record["metrics"]["test/p_mpjpe"] > 0
    assert record["metrics"]["test/mpjpe"] == pytest.approx(float(cli.trainer.callback_metrics["test/mpjpe"]))
    assert record["params"] == sum(p.numel() for p in cli.model.parameters())
    assert record["checkpoint"] and Path(record["checkpoint"]).is_file()
    assert record["wall_s"] > 0
    assert not out.with_name(out.name + ".tmp").exists()

    # `pose2met test --ckpt_path FILE` on the same checkpoint gives the same test metrics
    test_out = tmp_path / "results" / "test.json"
    test_args = ["test", *args[1:], *extra[:-1], str(test_out), "--ckpt_path", record["checkpoint"]]
    assert main(test_args) == 0
    tested = json.loads(test_out.read_text())
    for key in ("test/mpjpe", "test/p_mpjpe"):
        assert tested["metrics"][key] == pytest.approx(record["metrics"][key], rel=1e-6), key
    assert tested["checkpoint"] == record["checkpoint"] and tested["wall_s"] > 0
    # an alias is recorded as the file it resolved to
    assert main([*test_args[:-1], "last"]) == 0
    resolved = json.loads(test_out.read_text())["checkpoint"]
    assert Path(resolved).name == "last.ckpt" and Path(resolved).parent == Path(record["checkpoint"]).parent


def test_cli_bad_checkpoint_or_data_gives_one_line(
    synthmet_tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """`pose2met fit|test` with an unreadable --ckpt_path, data file or a rejected config value: exit 2,
    one `error:` line."""
    args = cli_args(CONF / "experiment/stapformer-s_synthmet-27f_cpu-hpe.yaml", synthmet_tiny, tmp_path)
    text = tmp_path / "notes.txt"
    text.write_text("hello world\n")
    truncated = tmp_path / "cut.ckpt"
    torch.save({"w": torch.ones(100)}, tmp_path / "whole.ckpt")
    truncated.write_bytes((tmp_path / "whole.ckpt").read_bytes()[:200])
    other = tmp_path / "other_model.ckpt"  # a checkpoint of another architecture (e.g. no --config)
    torch.save({"state_dict": {"model.encoder.blocks.9.weight": torch.ones(3)}}, other)
    cases = [
        (["test", *args[1:], "--ckpt_path", str(text)], str(text), "not a readable PyTorch checkpoint"),
        (["fit", *args[1:], "--ckpt_path", str(truncated)], str(truncated), "truncated or corrupted zip"),
        (["test", *args[1:], "--ckpt_path", str(tmp_path / "none.ckpt")], "none.ckpt", "not found"),
        (["test", *args[1:], "--ckpt_path", str(other)], str(other), "do not fit the model of this config"),
        (["validate", *args[1:], "--ckpt_path", str(other)], "1 unexpected key(s)", "pass the config"),
        ([*args, "--data.path", str(text)], str(text), "cannot be opened as an HDF5 file"),
        ([*args, "--data.path", str(tmp_path / "h36m.h5")], "h36m.h5", "no such Pose2Met file (convert"),
        # errors of our constructors, which jsonargparse wraps in its own ValueError
        ([*args, "--model.init_args.init_from", str(text)], str(text), "not a readable PyTorch checkpoint"),
        ([*args, "--data.batch_size", "0"], "batch_size", "must be >= 1, got 0"),
        ([*args, "--model.init_args.encoder.init_args.num_heads", "3"], "num_heads", "divisible"),
    ]
    for argv, name, words in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("error: ") and name in err[-1] and words in err[-1], err
        assert not any("Traceback" in line for line in err), err


@pytest.mark.parametrize(
    ("command", "hint"), [("infre", "did you mean 'infer'?"), ("tset", "did you mean 'test'?"), ("foo", "")]
)
def test_unknown_command_lists_every_command(command: str, hint: str, capsys: pytest.CaptureFixture) -> None:
    assert main([command]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: unknown command {command!r}") and err.count("\n") == 1
    assert all(name in err for name in ("fit", "test", "infer", "export", "viz", "data")) and hint in err


def test_unified_only_settings_are_ignored_with_a_warning_elsewhere() -> None:
    """stages and calorie_pose_features are documented as unified-only: a standard task runs no schedule."""
    hpe_stage = TrainingStage("hpe", 1, pose_weight=1.0, kcal_weight=0.0)
    with pytest.warns(UserWarning, match="stages and calorie_pose_features apply to setting 'unified' only"):
        task = EnergyTask(tiny_encoder(), setting="standard", stages=[hpe_stage], calorie_pose_features=True)
    assert task.stages == [] and task.current_stage() is None and task.selectable_epoch()
    assert not task.model.calorie_head.use_pose_features


def test_labels_outside_the_energy_bins_are_reported(synthmet_tiny: Path, tmp_path: Path) -> None:
    import h5py

    with h5py.File(synthmet_tiny, "r") as f:
        kcal = f["sequences/kcal"][()]
    high = float(np.quantile(kcal, 0.5))
    expected = int((kcal > high).sum())
    task = EnergyTask(tiny_encoder(), num_bins=50, kcal_range=(0.0, high))
    trainer = tiny_trainer(tmp_path, limit_train_batches=1, limit_val_batches=1)
    with pytest.warns(
        UserWarning, match=rf": {expected} of {len(kcal)} sequences have kcal/h labels outside"
    ):
        trainer.fit(task, datamodule=datamodule(synthmet_tiny))


@pytest.mark.parametrize(
    ("flag", "value", "words"),
    [
        ("--trainer.accumulate_grad_batches", "0", "trainer.accumulate_grad_batches must be >= 1, got 0"),
        ("--trainer.gradient_clip_val", "-1.0", "trainer.gradient_clip_val must be >= 0 and finite"),
    ],
)
def test_trainer_settings_lightning_would_crash_on_or_ignore(
    flag: str, value: str, words: str, synthmet_tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    args = cli_args(CONF / "experiment/stapformer-s_synthmet-27f_cpu-hpe.yaml", synthmet_tiny, tmp_path)
    assert main([*args, flag, value]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"error: {words}"), err
    assert not any("Traceback" in line for line in err)


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (
            lambda opt: torch.optim.lr_scheduler.ExponentialLR(opt, gamma=-1.0),
            "learning rate -0.0005 after 1",
        ),
        (lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=0), "StepLR fails when stepped"),
        (lambda opt: torch.optim.lr_scheduler.ReduceLROnPlateau(opt), "ReduceLROnPlateau is not supported"),
    ],
)
def test_scheduler_settings_are_checked_when_the_task_is_built(make, words: str) -> None:
    with pytest.raises(ValueError, match=f"model.init_args.lr_scheduler: .*{words}"):
        HPETask(tiny_encoder(), lr_scheduler=make)
    HPETask(tiny_encoder(), lr_scheduler=lambda opt: torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9))


@pytest.mark.parametrize(("interval", "halvings"), [("epoch", 2), ("step", 6)])
def test_lr_interval_steps_the_schedule_per_epoch_or_per_optimizer_step(
    interval: str, halvings: int, synthmet_tiny: Path, tmp_path: Path
) -> None:
    lr = 1e-3
    task = HPETask(
        tiny_encoder(),
        optimizer=lambda params: torch.optim.AdamW(params, lr=lr),
        lr_scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5),
        lr_interval=interval,  # type: ignore[arg-type]
    )
    trainer = tiny_trainer(tmp_path, max_epochs=2, limit_train_batches=3, limit_val_batches=1)
    trainer.fit(task, datamodule=datamodule(synthmet_tiny))
    assert trainer.global_step == 6  # two epochs of three steps
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(lr * 0.5**halvings, rel=1e-12)
    with pytest.raises(ValueError, match="lr_interval must be 'epoch' or 'step', got 'batch'"):
        HPETask(tiny_encoder(), lr_interval="batch")  # type: ignore[arg-type]


def test_a_schedule_shorter_than_the_run_names_the_config_key(synthmet_tiny: Path, tmp_path: Path) -> None:
    task = HPETask(
        tiny_encoder(),
        lr_scheduler=lambda opt: torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=2),
        lr_interval="step",
    )
    trainer = tiny_trainer(tmp_path, max_epochs=1, limit_train_batches=3, num_sanity_val_steps=0)
    expected = (
        r"model.init_args.lr_scheduler: OneCycleLR failed at step 3 \(Tried to step 3 times.*\); this run"
    )
    with pytest.raises(ValueError, match=expected + " takes 3 optimizer steps"):
        trainer.fit(task, datamodule=datamodule(synthmet_tiny))


@pytest.mark.parametrize("every", [1, 2])
def test_a_run_without_validation_says_so(every: int, synthmet_tiny: Path, tmp_path: Path) -> None:
    import warnings

    trainer = tiny_trainer(tmp_path, max_epochs=1, limit_train_batches=1, check_val_every_n_epoch=every)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(HPETask(tiny_encoder()), datamodule=datamodule(synthmet_tiny))
    said = [str(w.message) for w in caught if "no validation in this run" in str(w.message)]
    expected = "trainer.max_epochs 1 < trainer.check_val_every_n_epoch 2, so no best checkpoint is saved"
    if every == 1:
        assert said == []
    else:
        assert len(said) == 1 and expected in said[0], said


def test_last_checkpoint_follows_every_epoch_after_the_best(synthmet_tiny: Path, tmp_path: Path) -> None:
    from pose2met.lit.callbacks import StageAwareCheckpoint

    # monitoring the step in "min" mode: the first epoch stays the best, later ones never improve
    ckpt = StageAwareCheckpoint(dirpath=tmp_path / "ckpt", monitor="step", mode="min", save_last=True)
    trainer = tiny_trainer(
        tmp_path, max_epochs=3, limit_train_batches=2, limit_val_batches=1, enable_checkpointing=True,
        callbacks=[ckpt],
    )  # fmt: skip
    trainer.fit(HPETask(tiny_encoder()), datamodule=datamodule(synthmet_tiny))
    best = torch.load(ckpt.best_model_path, weights_only=False)
    last = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=False)
    assert (best["epoch"], best["global_step"]) == (0, 2)
    assert (last["epoch"], last["global_step"]) == (2, 6)  # Lightning 2.6 alone left it at (0, 2)


def test_a_file_without_test_sequences_can_be_fitted_and_validated(
    synthmet_tiny: Path, tmp_path: Path
) -> None:
    import h5py

    data = tmp_path / "no_test.h5"
    data.write_bytes(synthmet_tiny.read_bytes())
    with h5py.File(data, "a") as f:
        split = f["sequences/split"][:]
        split[split == b"test"] = b"val"
        f["sequences/split"][:] = split
    task = HPETask(tiny_encoder())
    trainer = tiny_trainer(tmp_path, limit_train_batches=1, limit_val_batches=1)
    trainer.fit(task, datamodule=datamodule(data))
    assert "val/mpjpe" in trainer.callback_metrics and "test" not in task.metrics
    trainer.validate(task, datamodule=datamodule(data))
    with pytest.raises(ValueError, match=r"no sequences in split 'test'"):
        trainer.test(task, datamodule=datamodule(data))
