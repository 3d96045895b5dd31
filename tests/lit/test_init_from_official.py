"""`init_from` with weights saved by the official STAPFormer code: converted for the task's encoder.

The reference is the independent re-implementation of the official forward pass in
``tests/models/test_compat.py`` (itself checked against the shared test vector there).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.lit.test_training import CONF, TINY_ENCODER, T, cli_args
from tests.models.test_compat import official_forward, random_official_state_dict

from pose2met.cli import main
from pose2met.lit import EnergyTask, HPETask
from pose2met.lit.checkpoint import CheckpointError
from pose2met.models import STAPFormer

# official YAML keys, and the same architecture as our constructor's arguments
OFFICIAL = dict(depth=2, dim_feat=32, dim_compress=64, dim_rep=48, block_size=[3, 5], block_stride=[1, 2],
                num_heads=2, num_frames=20)  # fmt: skip
OURS = dict(depth=2, dim_feat=32, dim_compress=64, dim_rep=48, stap_kernel=(3, 5), stap_stride=(1, 2),
            num_heads=2, num_frames=20, dim_in=3, joint_gcn=False)  # fmt: skip


def _official_file(
    tmp_path: Path, cfg: dict = OFFICIAL, seed: int = 3, entry: str = "model"
) -> tuple[Path, dict]:
    """An official training checkpoint (float32 weights, DDP ``module.`` prefixes): ``entry="model"``
    as the official training script saves it (optimizer state, a NumPy float64 best MPJPE),
    ``"model_pos"`` as MotionBERT-style scripts do."""
    weights = random_official_state_dict(cfg, seed=seed, dtype=torch.float32)
    content: dict = {"epoch": 7, "lr": 1e-4, entry: {"module." + k: v for k, v in weights.items()}}
    if entry == "model":
        params = [torch.nn.Parameter(v.clone()) for v in weights.values() if v.is_floating_point()]
        optimizer = torch.optim.AdamW(params)
        for param in params:
            param.grad = torch.ones_like(param)
        optimizer.step()
        content |= {
            "optimizer": optimizer.state_dict(),
            "min_mpjpe": np.mean([41.2, 43.9]),
            "config_name": "x",
        }
    path = tmp_path / "best_epoch.bin"
    torch.save(content, path)
    return path, weights


@pytest.mark.parametrize("entry", ["model", "model_pos"])
def test_hpe_task_from_official_weights_gives_the_official_output(entry: str, tmp_path: Path) -> None:
    path, weights = _official_file(tmp_path, entry=entry)
    task = HPETask(STAPFormer(**OURS), init_from=str(path)).eval()
    x = torch.randn(2, OFFICIAL["num_frames"], 17, 3)
    with torch.no_grad():
        out = task.model(x)["pose_3d"]
        expected = official_forward(weights, OFFICIAL, x)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


def test_energy_task_takes_the_official_encoder_and_keeps_its_fresh_calorie_head(tmp_path: Path) -> None:
    path, weights = _official_file(tmp_path)
    torch.manual_seed(0)
    task = EnergyTask(STAPFormer(**OURS), setting="3d_finetune", init_from=str(path)).eval()
    x = torch.randn(2, OFFICIAL["num_frames"], 17, 3)
    with torch.no_grad():
        rep = task.model.encoder.forward_features(x)
        torch.testing.assert_close(
            rep, official_forward(weights, OFFICIAL, x, return_rep=True), atol=1e-5, rtol=0
        )
    torch.manual_seed(0)
    untouched = EnergyTask(STAPFormer(**OURS), setting="standard")
    for name, value in untouched.model.calorie_head.state_dict().items():
        torch.testing.assert_close(task.model.calorie_head.state_dict()[name], value, atol=0, rtol=0)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"joint_gcn": True}, "the official STAPFormer has joint_gcn False, this encoder True"),
        ({"joint_mixer": "mixste"}, "joint_mixer 'stc'"),
        ({"num_frames": 27}, "'encoder.pos_embed_t' has shape (1, 20, 1, 32), expected (1, 27, 1, 32)"),
        ({"depth": 3}, "missing"),
        ({"dim_in": 2}, "'encoder.input_embed.weight' has shape (32, 3), expected (32, 2)"),
    ],
)
def test_official_weights_of_another_architecture_are_refused_by_setting(
    change: dict, words: str, tmp_path: Path
) -> None:
    path, _ = _official_file(tmp_path)
    with pytest.raises(CheckpointError, match="official STAPFormer weights that do not fit") as err:
        HPETask(STAPFormer(**(OURS | change)), init_from=str(path))
    assert str(path) in str(err.value) and words in str(err.value)


def test_official_weights_are_refused_for_3d_input(tmp_path: Path) -> None:
    path, _ = _official_file(tmp_path)
    with pytest.raises(
        CheckpointError, match=r"take 2D keypoints \(x, y, confidence\), this task's input is 3d"
    ):
        EnergyTask(STAPFormer(**OURS), setting="3d_input", init_from=str(path))


def test_pose2met_test_scores_official_weights_without_a_lightning_checkpoint(
    synthmet_tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    cfg = dict(TINY_ENCODER, num_frames=T, block_size=[3, 3], block_stride=[3, 3])
    path, _ = _official_file(tmp_path, cfg)
    args = cli_args(CONF / "experiment/stapformer-s_synthmet-27f_cpu-hpe.yaml", synthmet_tiny, tmp_path)
    args[0] = "test"
    i = args.index("--trainer.fast_dev_run")
    del args[i : i + 2]
    results = tmp_path / "results.json"
    args += ["--model.init_args.encoder.init_args.joint_gcn", "false",
             "--model.init_args.init_from", str(path),
             "--trainer.limit_test_batches", "2", "--results_json", str(results)]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    metrics = json.loads(results.read_text())["metrics"]
    assert metrics["test/mpjpe"] > 0 and torch.isfinite(torch.tensor(metrics["test/mpjpe"]))


def test_init_from_a_plain_state_dict_of_the_model(tmp_path: Path) -> None:
    torch.manual_seed(1)
    trained = HPETask(STAPFormer(**OURS))
    for prefix, state in (("", trained.model.state_dict()), ("task", trained.state_dict())):
        path = tmp_path / f"{prefix}weights.pt"
        torch.save(state, path)
        torch.manual_seed(2)
        task = HPETask(STAPFormer(**OURS), init_from=str(path))
        for name, value in trained.model.state_dict().items():
            torch.testing.assert_close(task.model.state_dict()[name], value, atol=0, rtol=0)


@pytest.mark.parametrize("content", [{0: torch.zeros(1)}, {"model": {0: torch.zeros(1)}}, {"x": 1}])
def test_init_from_a_file_of_neither_kind_is_one_line(content: dict, tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    torch.save(content, path)
    with pytest.raises(CheckpointError, match="neither a Pose2Met/Lightning checkpoint .* nor a state dict"):
        HPETask(STAPFormer(**OURS), init_from=str(path))
