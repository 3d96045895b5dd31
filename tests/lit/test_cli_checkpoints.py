"""`--ckpt_path` handling of the `pose2met` command, bad config values and diverged training."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import numpy as np
import pytest
import torch
from tests.lit.test_training import CONF, cli_args, datamodule, tiny_encoder, tiny_trainer

from pose2met.cli import cli_main, main
from pose2met.lit import EnergyTask, HPETask, TrainingStage
from pose2met.lit.task import TrainingDiverged

HPE = CONF / "experiment/stapformer-s_synthmet-27f_cpu-hpe.yaml"
EEE = CONF / "experiment/stapformer-s_synthmet-27f_cpu-eee.yaml"
NAME = "stapformer-s_synthmet-27f_cpu-hpe"  # the recipe's logger name: runs land in <save_dir>/<NAME>/


def real_fit_args(config: Path, data: Path, root: Path) -> list[str]:
    args = cli_args(config, data, root)
    i = args.index("--trainer.fast_dev_run")
    del args[i : i + 2]
    return args + ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
                   "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "1",
                   "--trainer.check_val_every_n_epoch", "1", "--test_after_fit", "false"]  # fmt: skip


@pytest.fixture(scope="module")
def finished_run(synthmet_tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The save_dir of one finished tiny HPE run (its checkpoints in <root>/<NAME>/version_0/checkpoints)."""
    root = tmp_path_factory.mktemp("runs")
    cli_main(real_fit_args(HPE, synthmet_tiny, root))
    assert (root / NAME / "version_0" / "checkpoints" / "last.ckpt").is_file()
    # the resolved config goes into the run's own folder only (never a shared one at the root)
    assert (root / NAME / "version_0" / "config.yaml").is_file() and not (root / "config.yaml").exists()
    return root


def _one_error_line(capsys: pytest.CaptureFixture, *words: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: ") and not any("Traceback" in line for line in err), err
    assert all(w in err[-1] for w in words), err[-1]
    return err[-1]


@pytest.mark.parametrize("alias", ["last", "best"])
def test_ckpt_alias_finds_the_latest_run_of_the_experiment(
    alias: str, finished_run: Path, synthmet_tiny: Path
) -> None:
    # an older run (its last.ckpt written earlier) must not be chosen
    older = finished_run / NAME / "version_7"
    if not older.exists():
        shutil.copytree(finished_run / NAME / "version_0", older)
        for ckpt in (older / "checkpoints").glob("*.ckpt"):
            os.utime(ckpt, (1, 1))
    args = ["test", *cli_args(HPE, synthmet_tiny, finished_run)[1:], "--ckpt_path", alias]
    cli = cli_main(args)
    chosen = Path(cli.config_init.test.ckpt_path)
    folder = finished_run / NAME / "version_0" / "checkpoints"
    assert chosen.parent == folder
    assert chosen.name == "last.ckpt" if alias == "last" else chosen.name.startswith("best-")
    assert cli.trainer.state.finished


def test_ckpt_alias_without_runs(synthmet_tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = cli_args(HPE, synthmet_tiny, tmp_path)
    assert main(["test", *args[1:], "--ckpt_path", "best"]) == 2
    _one_error_line(capsys, "--ckpt_path best: no best checkpoint of this config's model in", NAME)
    cli = cli_main([*args, "--ckpt_path", "last"])  # fit: nothing to resume, so it starts from scratch
    assert cli.trainer.state.finished and cli.config_init.fit.ckpt_path is None


def test_config_settings_win_over_the_checkpoint(finished_run: Path, synthmet_tiny: Path) -> None:
    last = finished_run / NAME / "version_0" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["hyper_parameters"]["test_flip"] is True
    args = ["test", *cli_args(HPE, synthmet_tiny, finished_run)[1:], "--ckpt_path", str(last)]
    cli = cli_main([*args, "--model.init_args.test_flip", "false"])
    assert cli.model.test_flip is False


def test_checkpoint_of_another_task_or_not_lightning(
    finished_run: Path, synthmet_tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    last = finished_run / NAME / "version_0" / "checkpoints" / "last.ckpt"
    args = cli_args(EEE, synthmet_tiny, tmp_path)
    assert main(["validate", *args[1:], "--ckpt_path", str(last)]) == 2  # an HPE checkpoint, an EEE config
    _one_error_line(capsys, str(last), "do not fit the model of this config")
    plain = tmp_path / "weights.pt"
    torch.save(torch.load(last, weights_only=True)["state_dict"], plain)
    assert main(["test", *args[1:], "--ckpt_path", str(plain)]) == 2
    _one_error_line(capsys, str(plain), "not a Lightning checkpoint", "init_from")
    listed = tmp_path / "list.ckpt"
    torch.save([1, 2], listed)
    assert main(["test", *args[1:], "--ckpt_path", str(listed)]) == 2
    _one_error_line(capsys, str(listed), "got list")


ENC = "--model.init_args.encoder.init_args."


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ([ENC + "mlp_ratio", "-1"], ("mlp_ratio must be > 0",)),
        ([ENC + "mlp_ratio", "0"], ("mlp_ratio must be > 0",)),
        ([ENC + "dim_compress", "-4"], ("dim_compress must be a positive integer",)),
        ([ENC + "dropout", "2"], ("dropout must be in [0, 1), got 2",)),
        (["--model.init_args.optimizer.init_args.lr", "-1"], ("model.init_args.optimizer", "learning rate")),
        (["--trainer.enable_progress_bar", "false"], ("enable_progress_bar=False", "RichProgressBar")),
        (["--results_json", "."], ("--results_json .: is a folder",)),
        (["--results_json", "/dev/null/run.json"], ("--results_json /dev/null/run.json: cannot create",)),
    ],
)
def test_values_rejected_by_torch_or_lightning_are_one_line(
    extra: list[str],
    words: tuple[str, ...],
    synthmet_tiny: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    assert main([*cli_args(HPE, synthmet_tiny, tmp_path), *extra]) == 2
    _one_error_line(capsys, *words)


def test_optimizer_settings_fail_before_a_run_folder_exists(
    synthmet_tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A bad learning rate of a real (logged) run: one line, and no run folder with a lone config.yaml."""
    args = [*real_fit_args(HPE, synthmet_tiny, tmp_path), "--model.init_args.optimizer.init_args.lr", "-1"]
    assert main(args) == 2
    _one_error_line(capsys, "model.init_args.optimizer", "learning rate")
    assert not list(tmp_path.rglob("config.yaml")) and not list(tmp_path.rglob("version_*"))
    bad_schedule = lambda optimizer: torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=2.0)  # noqa: E731
    with pytest.raises(ValueError, match="model.init_args.lr_scheduler: .*multiplicative factor"):
        HPETask(tiny_encoder(), lr_scheduler=bad_schedule)

    def accelerator_only(params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
        if any(p.device.type == "cpu" for p in params):
            raise RuntimeError("this optimizer needs CUDA parameters")
        return torch.optim.SGD(params, lr=0.1)

    task = HPETask(tiny_encoder(), optimizer=accelerator_only)  # the probe's failure is not a settings error
    with pytest.raises(RuntimeError, match="needs CUDA parameters"):
        task.configure_optimizers()  # ... and is reported where the real optimizer is built


def test_sync_batchnorm_is_refused_in_one_line() -> None:
    """Lightning's SyncBatchNorm conversion would treat the frame axis of token batch norms as channels."""
    task = HPETask(tiny_encoder())
    task.trainer = L.Trainer(accelerator="cpu", devices=1, strategy="ddp", sync_batchnorm=True, logger=False)
    with pytest.raises(ValueError, match="trainer.sync_batchnorm: not supported"):
        task.check_trainer_settings("fit")  # planned by the strategy: refused in setup(), before conversion
    for stage in ("validate", "test", "predict"):  # Lightning converts only when fitting: saved DDP configs
        task.check_trainer_settings(stage)  # of older runs still test
    converted = torch.nn.SyncBatchNorm.convert_sync_batchnorm(HPETask(tiny_encoder()))
    with pytest.raises(ValueError, match="--trainer.sync_batchnorm false"):
        converted.on_fit_start()  # converted some other way: refused before the first step
    HPETask(tiny_encoder()).check_trainer_settings()  # no trainer, no SyncBatchNorm: fine


def test_apple_mps_is_refused_in_one_line() -> None:
    task = HPETask(tiny_encoder())
    task._trainer = SimpleNamespace(strategy=SimpleNamespace(root_device=torch.device("mps")))
    for stage in ("fit", "test"):
        with pytest.raises(
            ValueError, match="Apple MPS is not supported .*float64.*--trainer.accelerator cpu"
        ):
            task.check_trainer_settings(stage)


def test_stage_weights_and_kcal_sigma_are_checked() -> None:
    for weights in ((1.0, -1.0), (0.0, 0.0), (float("nan"), 1.0)):
        with pytest.raises(
            ValueError, match="stage 'joint': pose_weight and kcal_weight must be finite, >= 0"
        ):
            EnergyTask(tiny_encoder(), setting="unified", stages=[TrainingStage("joint", 1, *weights)])
    for sigma in (0.0, -10.0):
        with pytest.raises(ValueError, match="kcal_sigma .* must be > 0"):
            EnergyTask(tiny_encoder(), kcal_sigma=sigma)


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_diverged_training_stops_before_a_checkpoint(
    synthmet_tiny: Path, tmp_path: Path, precision: str
) -> None:
    task = HPETask(tiny_encoder())
    calls = {"n": 0}

    def poison(module: torch.nn.Module, inputs: object, output: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        return output * float("nan") if calls["n"] == 2 else output  # the second training step diverges

    task.model.pose_head.register_forward_hook(poison)
    trainer = tiny_trainer(
        tmp_path,
        enable_checkpointing=True,
        limit_train_batches=3,
        num_sanity_val_steps=0,
        precision=precision,
    )
    with pytest.raises(TrainingDiverged, match=r"training loss became non-finite at step 1 \(epoch 0; this"):
        trainer.fit(task, datamodule=datamodule(synthmet_tiny))
    assert not list(tmp_path.rglob("*.ckpt"))
    assert all(bool(torch.isfinite(p).all()) for p in task.parameters())  # the NaN step never updated


def test_alias_skips_newer_runs_of_another_model_in_the_same_folder(
    finished_run: Path, tmp_path: Path
) -> None:
    """W&B keeps every recipe's runs side by side in <save_dir>/<project>/<run id>/."""
    import os

    from pose2met.cli import latest_run_checkpoint
    from pose2met.lit.checkpoint import CHECKPOINT_META_KEY

    source = finished_run / NAME / "version_0" / "checkpoints"
    ours = tmp_path / "aaaa" / "checkpoints"
    shutil.copytree(source, ours)
    ckpt = torch.load(ours / "last.ckpt", weights_only=True)
    expected = ckpt[CHECKPOINT_META_KEY]
    other = tmp_path / "bbbb" / "checkpoints"
    other.mkdir(parents=True)
    ckpt[CHECKPOINT_META_KEY] = {**expected, "task": "EnergyTask", "calorie_head": {"num_bins": 10}}
    torch.save(ckpt, other / "last.ckpt")
    os.utime(ours / "last.ckpt", (1, 1))  # ours is older
    assert latest_run_checkpoint(tmp_path, "last") == other / "last.ckpt"  # without a model: the newest
    assert latest_run_checkpoint(tmp_path, "last", expected) == ours / "last.ckpt"
    assert latest_run_checkpoint(tmp_path, "best", expected).name.startswith("best-")
    assert latest_run_checkpoint(tmp_path, "last", {**expected, "input_kind": "3d"}) is None


def test_copying_a_run_keeps_aliases_in_its_own_experiment(finished_run: Path, tmp_path: Path) -> None:
    # the alias search is confined to <save_dir>/<logger name>: another recipe's runs are not used
    other = tmp_path / "stapformer-s_synthmet-27f_cpu-eee" / "version_0"
    shutil.copytree(finished_run / NAME / "version_0", other)
    from pose2met.cli import latest_run_checkpoint

    assert latest_run_checkpoint(tmp_path / "stapformer-s_synthmet-27f_cpu-hpe", "last") is None
    assert latest_run_checkpoint(other.parent, "last") == other / "checkpoints" / "last.ckpt"
    assert latest_run_checkpoint(tmp_path, "last") is None  # runs are looked for one level down only


def test_a_checkpoint_with_nan_weights_is_refused_by_load_model(finished_run: Path, tmp_path: Path) -> None:
    from pose2met.lit.checkpoint import CheckpointError, load_model

    last = finished_run / NAME / "version_0" / "checkpoints" / "last.ckpt"
    model, _ = load_model(last)  # the healthy file loads
    ckpt = torch.load(last, weights_only=True)
    key = next(k for k, v in ckpt["state_dict"].items() if v.is_floating_point() and v.numel() > 1)
    ckpt["state_dict"][key][0] = float("nan")
    torch.save(ckpt, tmp_path / "diverged.ckpt")
    with pytest.raises(
        CheckpointError, match=r"diverged\.ckpt: 1 weight tensor\(s\) hold NaN or inf .*diverged"
    ):
        load_model(tmp_path / "diverged.ckpt")


def test_ckpt_alias_uses_a_fixed_checkpoint_folder(
    finished_run: Path, synthmet_tiny: Path, tmp_path: Path
) -> None:
    """With --checkpoint.dirpath every run writes into that one folder: `last` is found there."""
    fixed = tmp_path / "ckpts"
    shutil.copytree(finished_run / NAME / "version_0" / "checkpoints", fixed)
    args = [
        "test",
        *cli_args(HPE, synthmet_tiny, tmp_path / "elsewhere")[1:],
        "--checkpoint.dirpath",
        str(fixed),
    ]
    cli = cli_main([*args, "--ckpt_path", "last"])
    assert Path(cli.config_init.test.ckpt_path) == fixed / "last.ckpt"


def test_interrupts_and_system_errors_are_one_line() -> None:
    import errno

    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from pose2met.cli import describe_failure

    assert describe_failure(SIGTERMException()) == (143, "stopped by SIGTERM; resume with --ckpt_path last")
    killed = RuntimeError("DataLoader worker (pid 4242) is killed by signal: Terminated. ")
    code, message = describe_failure(killed)  # type: ignore[misc]
    assert code == 143 and "pid 4242" in message and "--ckpt_path last" in message
    assert describe_failure(OSError(errno.EROFS, "Read-only file system", "/runs/x")) == (
        1,
        "/runs/x: Read-only file system",
    )
    usage_error = type("UsageError", (Exception,), {"__module__": "wandb.errors.errors"})
    code, message = describe_failure(usage_error("No API key configured."))  # type: ignore[misc]
    assert code == 2 and message.startswith("W&B: No API key configured.") and "online false" in message
    # bugs keep their traceback
    for bug in (RuntimeError("shape mismatch"), OSError("no file name"), KeyError("x"), SystemExit(2)):
        assert describe_failure(bug) is None


def _fake_run(folder: Path, best: Path | None = None, meta: dict | None = None) -> Path:
    """A run folder whose last.ckpt records ``best`` as its checkpoint callback's best model."""
    folder.mkdir(parents=True)
    state = {"StageAwareCheckpoint{'monitor': 'val/loss'}": {"best_model_path": str(best) if best else ""}}
    torch.save({"callbacks": state, "pose2met_meta": meta}, folder / "last.ckpt")
    return folder / "last.ckpt"


def test_alias_resolution_follows_the_newest_run_and_its_recorded_best(tmp_path: Path) -> None:
    from pose2met.cli import alias_in_folder, latest_run_checkpoint

    exp = tmp_path / "exp"
    old_best = exp / "version_0" / "checkpoints" / "best-000.ckpt"
    _fake_run(old_best.parent)
    torch.save({}, old_best)
    os.utime(old_best.parent / "last.ckpt", (1, 1))  # the older run
    # the resumed run's own best is worse; its callback still ranks the earlier folder's best first
    newer = _fake_run(exp / "version_1" / "checkpoints", best=old_best)
    torch.save({}, newer.parent / "best-003.ckpt")
    assert latest_run_checkpoint(exp, "best") == old_best
    assert latest_run_checkpoint(exp, "last") == newer
    old_best.unlink()  # the recorded best is gone: the run's own newest best-*.ckpt
    assert latest_run_checkpoint(exp, "best") == newer.parent / "best-003.ckpt"
    # one folder for every run (--checkpoint.dirpath): the newest last*.ckpt, not the first run's
    fixed = tmp_path / "fixed"
    fixed.mkdir()
    torch.save({}, fixed / "last.ckpt")
    os.utime(fixed / "last.ckpt", (1, 1))
    torch.save({}, fixed / "last-v1.ckpt")
    assert alias_in_folder(fixed, "last") == fixed / "last-v1.ckpt"
    # an unreadable newest last.ckpt (a save that died) is named, not passed over for an older run
    (newer.parent / "last.ckpt").write_bytes(b"PK\x03\x04 cut short")
    with pytest.raises(
        ValueError, match=r"version_1/checkpoints/last.ckpt: the newest last.ckpt .* unreadable"
    ):
        latest_run_checkpoint(exp, "last")


def test_resumed_run_keeps_ranking_the_earlier_folders_best(tmp_path: Path) -> None:
    from pose2met.lit.callbacks import StageAwareCheckpoint

    earlier = tmp_path / "version_0" / "checkpoints"
    earlier.mkdir(parents=True)
    best, second = earlier / "best-000.ckpt", earlier / "best-001.ckpt"
    for path in (best, second):
        torch.save({}, path)
    state = {
        "dirpath": str(earlier),
        "best_model_score": torch.tensor(1.0),
        "best_model_path": str(best),
        "best_k_models": {str(second): torch.tensor(2.0), str(best): torch.tensor(1.0), "/gone.ckpt": 0.5},
        "kth_best_model_path": str(second),
        "kth_value": torch.tensor(2.0),
        "last_model_path": str(earlier / "last.ckpt"),
    }
    callback = StageAwareCheckpoint(
        dirpath=tmp_path / "version_1" / "checkpoints", monitor="val/loss", save_top_k=2
    )
    callback.load_state_dict(state)
    assert (callback.best_model_path, float(callback.best_model_score)) == (str(best), 1.0)
    assert (callback.kth_best_model_path, float(callback.kth_value)) == (str(second), 2.0)
    assert list(callback.best_k_models) == [str(best), str(second)]  # the vanished file is dropped
    trainer = SimpleNamespace(strategy=SimpleNamespace(remove_checkpoint=os.remove))
    callback._remove_checkpoint(trainer, str(second))  # outranked by the resumed run: kept on disk
    assert second.is_file()
    own = Path(callback.dirpath) / "best-002.ckpt"
    own.parent.mkdir(parents=True)
    torch.save({}, own)
    callback._remove_checkpoint(trainer, str(own))  # the run's own outranked file goes as usual
    assert not own.exists()


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        ({"num_heads": 3}, "must be divisible by 2 * num_heads"),
        ({"no_such_option": 1}, "unexpected keyword argument 'no_such_option'"),
        (None, "missing key 'encoder'"),
    ],
)
def test_invalid_stored_model_settings_name_the_file(
    edit: dict | None, words: str, finished_run: Path, tmp_path: Path
) -> None:
    """A hand-edited 'pose2met' entry fails with the file's name, not a bare constructor error."""
    from pose2met.lit.checkpoint import CHECKPOINT_META_KEY, CheckpointError, load_model

    ckpt = torch.load(finished_run / NAME / "version_0" / "checkpoints" / "last.ckpt", weights_only=True)
    if edit is None:
        del ckpt[CHECKPOINT_META_KEY]["encoder"]
    else:
        ckpt[CHECKPOINT_META_KEY]["encoder"].update(edit)
    torch.save(ckpt, tmp_path / "edited.ckpt")
    with pytest.raises(CheckpointError) as err:
        load_model(tmp_path / "edited.ckpt")
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'edited.ckpt'}: its stored model settings (the 'pose2met' entry)")
    assert words in message


@pytest.mark.parametrize("subcommand", ["test", "validate", "predict"])
def test_evaluating_without_a_checkpoint_is_refused_before_any_run_folder(
    subcommand: str, synthmet_tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Without --ckpt_path the model holds random weights: its metrics would look normal but mean nothing."""
    args = cli_args(HPE, synthmet_tiny, tmp_path)
    assert main([subcommand, *args[1:]]) == 2
    _one_error_line(capsys, f"pose2met {subcommand} without --ckpt_path would score", "random weights")
    assert not any(tmp_path.iterdir())


def test_checkpoint_of_another_target_space_is_refused(
    finished_run: Path, synthmet_tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Same weights shape, other meaning: a camera-space model read as image25d gives other MPJPEs."""
    last = finished_run / NAME / "version_0" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["pose2met"]["target_space"] == "camera"
    args = ["test", *cli_args(HPE, synthmet_tiny, tmp_path)[1:], "--ckpt_path", str(last)]
    assert main([*args, "--data.target_space", "image25d"]) == 2
    _one_error_line(capsys, str(last), "trained with target_space 'camera', this config uses 'image25d'")
    assert not any(tmp_path.iterdir())


def test_predict_writes_every_clip_with_the_model_outputs(
    finished_run: Path, synthmet_tiny: Path, tmp_path: Path
) -> None:
    last = finished_run / NAME / "version_0" / "checkpoints" / "last.ckpt"
    args = ["predict", *cli_args(HPE, synthmet_tiny, tmp_path)[1:], "--ckpt_path", str(last)]
    cli = cli_main([*args, "--model.init_args.test_flip", "false", "--trainer.fast_dev_run", "false"])
    (written,) = list(tmp_path.rglob("predictions.npz"))
    with np.load(written) as f:
        saved = {k: f[k] for k in f.files}
    batches = list(cli.datamodule.predict_dataloader())
    clips = sum(len(b["input_2d"]) for b in batches)
    assert saved["pose_3d"].shape == (clips, 9, 17, 3) and len(saved["sequence"]) == clips
    first = batches[0]
    model = cli.model.model.eval()
    with torch.no_grad():  # the model's own forward on the first batch, independent of the writer
        expected = model(first["input_2d"])["pose_3d"].numpy()
    np.testing.assert_allclose(saved["pose_3d"][: len(expected)], expected, atol=1e-6, rtol=0)
    np.testing.assert_array_equal(saved["frame_index"][: len(expected)], first["frame_index"].numpy())
    assert list(saved["sequence"][: len(expected)]) == list(first["sequence"])


def test_init_from_another_architecture_is_refused(hpe_checkpoint_for_init: Path) -> None:
    from pose2met.lit.checkpoint import CheckpointError

    with pytest.raises(
        CheckpointError, match=r"of the \d+ encoder tensors of this model do not fit the file"
    ):
        EnergyTask(
            tiny_encoder(dim_feat=32, dim_rep=64),
            setting="3d_finetune",
            init_from=str(hpe_checkpoint_for_init),
        )
    with pytest.raises(
        CheckpointError, match=r"'encoder\.pos_embed_t' \(1, 5, 1, 16\) here vs \(1, 9, 1, 16\)"
    ):
        EnergyTask(tiny_encoder(num_frames=5), setting="3d_finetune", init_from=str(hpe_checkpoint_for_init))
    EnergyTask(
        tiny_encoder(), setting="3d_finetune", init_from=str(hpe_checkpoint_for_init)
    )  # the same: loads


@pytest.fixture(scope="module")
def hpe_checkpoint_for_init(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("init") / "hpe.ckpt"
    task = HPETask(tiny_encoder())
    torch.save({"state_dict": task.state_dict(), "pose2met": {}}, path)
    return path


@pytest.mark.parametrize(
    "weights", [{"mpjpe": -1.0}, {"mpjpe": float("nan")}, {"mpjpe": 0.0, "n_mpjpe": 0.0, "velocity": 0.0}]
)
def test_pose_loss_weights_must_be_finite_non_negative_and_not_all_zero(weights: dict) -> None:
    from pose2met.lit.losses import PoseLossWeights

    with pytest.raises(ValueError, match="pose_loss_weights: "):
        PoseLossWeights(**weights)


def test_mistyped_monitor_stops_after_the_sanity_check(
    synthmet_tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    args = real_fit_args(HPE, synthmet_tiny, tmp_path) + ["--checkpoint.monitor", "val/mpjpee"]
    assert main(args) == 2
    _one_error_line(
        capsys, "--checkpoint.monitor 'val/mpjpee': this task never logs it; did you mean 'val/mpjpe'?"
    )
    assert not list(tmp_path.rglob("*.ckpt"))  # stopped before the first training step
    # the logger had made version_0 and written config.yaml / hparams.yaml: nothing of it is left
    assert (tmp_path / NAME).is_dir() and not list((tmp_path / NAME).iterdir())


@pytest.mark.parametrize(
    ("flag", "value", "words"),
    [
        ("--trainer.accumulate_grad_batches", "0", "trainer.accumulate_grad_batches must be >= 1"),
        ("--trainer.precision", "16-true", "trainer.precision 16-true cannot train"),
    ],
)
def test_trainer_settings_are_refused_before_the_run_folder_exists(
    flag: str, value: str, words: str, synthmet_tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main([*real_fit_args(HPE, synthmet_tiny, tmp_path), flag, value]) == 2
    _one_error_line(capsys, words)
    assert not (tmp_path / NAME).exists()  # refused before the logger made anything


@pytest.mark.parametrize(
    ("monitor", "problem"),
    [("val/mae", None), ("train/loss_step", None), ("train/pose_mpjpe_epoch", None), ("lr-AdamW", None),
     ("step", None), ("epoch", None), ("train/stage", "did you mean 'train/loss_step'?"),
     ("val/mae/boxing", None), ("val/known/mae/boxing", "did you mean 'val/known/mae'?"),
     ("val/mae/boxx", "this task never logs it; did you mean 'val/mae'?"),
     ("val/mea", "did you mean 'val/mae'?"),
     ("train/kcal_k", "did you mean 'train/kcal_kl'?"),
     ("train/mae", "logged in validation only: did you mean 'val/mae'?"),
     ("zzz", "(it logs epoch, step, train/kcal_kl, ")],
)  # fmt: skip
def test_monitor_problem_names_the_close_metric(monitor: str, problem: str | None) -> None:
    from pose2met.lit.callbacks import monitor_problem

    # a sanity check sees a few batches: here only the activity "waving" of the split's two
    logged = ["val/loss", "val/kcal_kl", "val/pose_mpjpe", "val/mae", "val/known/mae", "val/mae/waving"]
    found = monitor_problem(monitor, logged, groups=["boxing", "waving"])
    assert (found is None) if problem is None else (problem in found), found
    assert monitor_problem("train/stage", logged, train_only=["train/stage"]) is None  # a staged task
    assert monitor_problem("val/anything", ["train/loss"]) is None  # no validation ran: Lightning's check


@pytest.mark.parametrize(
    ("dropped", "flags"),
    [("frames/factor_2_5d", ["--data.target_space", "image25d"]),
     ("frames/joints_2d_gt", ["--data.input_2d", "ground_truth"])],
)  # fmt: skip
def test_missing_data_array_leaves_no_run_folder(
    dropped: str, flags: list[str], synthmet_tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    import h5py

    data = tmp_path / "data.h5"
    data.write_bytes(synthmet_tiny.read_bytes())
    with h5py.File(data, "a") as f:
        del f[dropped]
    root = tmp_path / "runs"
    assert main(real_fit_args(HPE, data, root) + flags) == 2
    _one_error_line(capsys, str(data), f"'/{dropped}'", "needs this array")
    assert not root.exists() or not any(root.rglob("*")), sorted(root.rglob("*"))
