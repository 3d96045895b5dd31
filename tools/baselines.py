"""Trivial baselines for a Pose2Met file, to put trained-model figures in context.

* HPE "mean pose": every test frame is predicted as the mean root-relative 3D pose of the training
  frames (camera coordinates, mm) -> MPJPE and P-MPJPE over the test frames with 3D labels.
* EEE "training mean": every test sequence is predicted as the mean training kcal/h label
  -> MAE (kcal/h), also split into known / unknown activities where the file has ``activity_set``.

Usage::

    python tools/baselines.py                       # the default SynthMet file (generated if missing)
    python tools/baselines.py --data FILE.h5 --train-split train --test-split test
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from pose2met.data.reader import Pose2MetFile
from pose2met.metrics.functional.pose import mpjpe_per_frame, p_mpjpe_per_frame


def frames_of(file: Pose2MetFile, split: str) -> np.ndarray:
    """Indices of every frame of the sequences of ``split``."""
    seq = file.sequences
    chosen = file.split_indices(split)
    if len(chosen) == 0:
        raise SystemExit(f"{file.path}: no sequences in split {split!r}")
    return np.concatenate([np.arange(seq["start"][i], seq["start"][i] + seq["length"][i]) for i in chosen])


def pose_baseline(file: Pose2MetFile, train: str, test: str, max_frames: int) -> dict[str, float]:
    joints = file.read_whole("joints_3d")
    valid = file.read_whole("valid").astype(bool) if file.has("valid") else np.ones(len(joints), bool)
    rel = joints - joints[:, :1]
    train_idx = frames_of(file, train)
    mean_pose = rel[train_idx[valid[train_idx]]].mean(axis=0)
    test_idx = frames_of(file, test)
    test_idx = test_idx[valid[test_idx]]
    if len(test_idx) > max_frames:
        test_idx = np.random.default_rng(0).choice(test_idx, max_frames, replace=False)
    target = torch.as_tensor(rel[test_idx], dtype=torch.float64)
    pred = torch.as_tensor(np.broadcast_to(mean_pose, target.shape).copy(), dtype=torch.float64)
    return {
        "frames": float(len(test_idx)),
        "mpjpe_mm": float(mpjpe_per_frame(pred, target).mean()),
        "p_mpjpe_mm": float(p_mpjpe_per_frame(pred, target).mean()),
    }


def energy_baseline(file: Pose2MetFile, train: str, test: str) -> dict[str, float]:
    seq = file.sequences
    kcal = seq["kcal"].astype(np.float64)
    train_idx, test_idx = file.split_indices(train), file.split_indices(test)
    mean = kcal[train_idx].mean()
    error = np.abs(kcal[test_idx] - mean)
    out = {"train_mean_kcal_h": float(mean), "mae": float(error.mean()), "sequences": float(len(test_idx))}
    if "activity_set" in seq:
        sets = seq["activity_set"][test_idx]
        for name in ("known", "unknown"):
            if (sets == name).any():
                out[f"mae_{name}"] = float(error[sets == name].mean())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="Pose2Met .h5 (default: SynthMet default)")
    parser.add_argument("--train-split", default="train")
    parser.add_argument("--test-split", default="test")
    parser.add_argument("--max-frames", type=int, default=200_000, help="subsample test frames for P-MPJPE")
    args = parser.parse_args(argv)
    path = args.data
    if path is None:
        from pose2met.data.datamodule import Pose2MetDataModule

        datamodule = Pose2MetDataModule()
        datamodule.prepare_data()
        path = Path(datamodule.path)
    file = Pose2MetFile(path)
    print(f"{path} ({file.dataset}), train split {args.train_split!r}, test split {args.test_split!r}")
    if file.has_3d:
        res = pose_baseline(file, args.train_split, args.test_split, args.max_frames)
        print(f"HPE mean-pose baseline over {res['frames']:.0f} frames: "
              f"MPJPE {res['mpjpe_mm']:.1f} mm, P-MPJPE {res['p_mpjpe_mm']:.1f} mm")  # fmt: skip
    if file.has_kcal:
        res = energy_baseline(file, args.train_split, args.test_split)
        parts = ", ".join(f"{k} {v:.1f}" for k, v in res.items() if k.startswith("mae_"))
        suffix = f" ({parts})" if parts else ""
        print(f"EEE training-mean baseline ({res['train_mean_kcal_h']:.1f} kcal/h) over "
              f"{res['sequences']:.0f} sequences: MAE {res['mae']:.1f} kcal/h{suffix}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
