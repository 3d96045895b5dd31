"""`pose2met infer --official-config`: official STAPFormer weights (the shared test vector) on keypoints."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import yaml

from pose2met.compat import load_official_stapformer
from pose2met.infer.cli import infer_main

W, H = 1000.0, 1000.0


def test_official_weights_infer_matches_direct_forward(reference_dir: str, tmp_path: Path) -> None:
    ref = torch.load(os.path.join(reference_dir, "official_stapformer_tiny.pt"), weights_only=True)
    weights, config = tmp_path / "best_epoch.bin", tmp_path / "official.yaml"
    torch.save({"model_pos": ref["state_dict"]}, weights)
    config.write_text(yaml.safe_dump(dict(ref["config"])))
    t = int(ref["config"]["num_frames"])  # one window: no stitching
    rng = np.random.default_rng(3)
    xy = rng.uniform(300, 700, (t, 17, 2))
    score = rng.uniform(0.5, 1.0, (t, 17, 1))
    inp, out = tmp_path / "kp.npy", tmp_path / "out.npz"
    np.save(inp, np.concatenate([xy, score], -1).astype(np.float32))
    args = ["--checkpoint", str(weights), "--official-config", str(config), "--input", str(inp)]
    assert (
        infer_main(
            [*args, "--layout", "h36m", "--image-size", "1000", "1000", "--output", str(out), "--no-flip"]
        )
        == 0
    )
    rec = dict(np.load(out))
    assert "joints_3d_normalized" in rec and "normalized" in str(rec["units"])
    # independent composition: MotionBERT normalization by hand, the loader, root subtraction
    x_norm = np.concatenate([xy / W * 2 - 1, score], -1)  # W == H, so y' = y / W * 2 - H / W
    lifter = load_official_stapformer(ref["state_dict"], dict(ref["config"])).eval()
    with torch.no_grad():
        pose = lifter(torch.as_tensor(x_norm, dtype=torch.float32)[None])[0].numpy()
    np.testing.assert_allclose(rec["joints_3d_normalized"], pose - pose[:, :1], atol=1e-4)


def test_bad_body_height_for_a_25d_model_names_the_flag(reference_dir: str, tmp_path: Path, capsys) -> None:
    ref = torch.load(os.path.join(reference_dir, "official_stapformer_tiny.pt"), weights_only=True)
    weights, config = tmp_path / "best_epoch.bin", tmp_path / "official.yaml"
    torch.save({"model_pos": ref["state_dict"]}, weights)
    config.write_text(yaml.safe_dump(dict(ref["config"])))
    inp, out = tmp_path / "kp.npy", tmp_path / "out.npz"
    np.save(inp, np.random.default_rng(3).uniform(300, 700, (int(ref["config"]["num_frames"]), 17, 3)))
    args = [
        "--checkpoint",
        str(weights),
        "--official-config",
        str(config),
        "--input",
        str(inp),
        "--layout",
        "h36m",
    ]
    args += [
        "--image-size",
        "1000",
        "1000",
        "--intrinsics",
        "1000",
        "1000",
        "500",
        "500",
        "--output",
        str(out),
    ]
    assert infer_main([*args, "--body-height", "-5"]) == 2
    err = capsys.readouterr().err
    assert err == "error: --body-height must be a positive number of millimetres, got -5\n"
    assert not out.exists()
    assert infer_main([*args, "--body-height", "1800"]) == 0
    rec = dict(np.load(out))
    assert "joints_3d_mm" in rec and float(rec["root_depth_mm"]) > 0 and "1800 mm" in str(rec["units"])
