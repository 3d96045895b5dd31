"""Data loader benchmark: open time, clips/s and resident memory on a Human3.6M-size file.

Writes a file with ``--frames`` training frames (default 1.56M, like Human3.6M's training set;
17 joints; 2D + confidence + 3D + factor_2_5d; smooth random motion) into a temporary folder
(generation is excluded from the timings and runs in a separate process), then prints:

* the time to open (validate and index) the file;
* loader throughput in T-frame clips/s with 0 and 2 workers (batch 16, random order);
* resident memory (psutil RSS) added by serving ``--batches`` batches in random order, and the
  private memory (USS) of 2 workers.

Usage: ``python bench/dataloader.py [--frames 1560000] [--num-frames 243] [--batches 200]``.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import torch

from pose2met.data.datamodule import Pose2MetDataModule
from pose2met.data.h5format import write_dataset
from pose2met.data.reader import Pose2MetFile

CAMERA = {"fx": 1145.0, "fy": 1144.0, "cx": 512.0, "cy": 515.0, "width": 1000.0, "height": 1002.0}


#: Frames per generated sequence.
SEQ_LEN = 2600


def write_big_file(path: Path, n_frames: int, seq_len: int = SEQ_LEN, seed: int = 0) -> None:
    """Smooth random poses: per-joint random walks around a standing pose, ``seq_len``-frame sequences."""
    rng = np.random.default_rng(seed)
    j = 17
    base = rng.normal(0, 300, size=(1, j, 3)).astype(np.float32) + np.array([0, 0, 5000], dtype=np.float32)
    steps = rng.normal(0, 2.0, size=(n_frames, j, 3)).astype(np.float32)
    walk = np.cumsum(steps, axis=0, dtype=np.float32)
    walk -= np.repeat(walk[::seq_len], seq_len, axis=0)[:n_frames]  # restart every sequence
    joints_3d = base + walk
    del steps, walk
    z = joints_3d[..., 2:3]
    joints_2d = joints_3d[..., :2] / z * 1145.0 + np.array([512.0, 515.0], dtype=np.float32)
    starts = np.arange(0, n_frames, seq_len, dtype=np.int64)
    lengths = np.minimum(seq_len, n_frames - starts)
    s = len(starts)
    write_dataset(
        path,
        frames={
            "joints_2d": joints_2d,
            "confidence": rng.uniform(0.5, 1.0, size=(n_frames, j)).astype(np.float32),
            "joints_3d": joints_3d,
            "factor_2_5d": (joints_3d[:, 0, 2] / 1145.0).astype(np.float32),
        },
        sequences={
            "start": starts,
            "length": lengths,
            "subject": [f"S{i % 5}" for i in range(s)],
            "action": [f"action{i % 15}" for i in range(s)],
            "camera": ["cam"] * s,
            "split": ["train"] * (s - 2) + ["val", "test"],
            "kcal": rng.uniform(150, 450, size=s).astype(np.float32),
        },
        cameras={"cam": CAMERA},
        dataset="bench-h36m-size",
        fps=50.0,
    )


def rss_mb() -> float:
    """Resident memory (RSS) of this process in MB."""
    return psutil.Process().memory_info().rss / 2**20


def workers_uss_mb() -> float:
    """Private memory (USS: pages not shared with the parent) of this process's children, MB."""
    return sum(c.memory_full_info().uss for c in psutil.Process().children(recursive=True)) / 2**20


def throughput(dm: Pose2MetDataModule, batches: int, warmup: int = 5) -> tuple[float, float]:
    """Clips/s of the training loader over ``batches`` batches after ``warmup``; peak worker USS (MB)."""
    loader = dm.train_dataloader()
    it = itertools.chain.from_iterable(itertools.repeat(loader))  # next epoch when one ends (small files)
    for _ in range(warmup):
        next(it)
    peak = workers_uss_mb()
    t0 = time.perf_counter()
    clips = 0
    for i in range(batches):
        clips += next(it)["input_2d"].shape[0]
        if i % 50 == 0:
            peak = max(peak, workers_uss_mb())
    elapsed = time.perf_counter() - t0
    del it
    return clips / elapsed, peak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=1_560_000, help="training frames of the generated file")
    parser.add_argument("--num-frames", type=int, default=243, help="clip length T")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--batches", type=int, default=200, help="batches per measurement")
    parser.add_argument("--target-space", choices=("camera", "image25d"), default="camera")
    parser.add_argument("--tmpdir", default=None, help="folder for the generated file (default: system temp)")
    args = parser.parse_args(argv)
    if args.frames < 3 * SEQ_LEN:  # train, val and test need a sequence each
        parser.error(
            f"--frames must be at least {3 * SEQ_LEN} (three {SEQ_LEN}-frame sequences), got {args.frames}"
        )
    torch.set_num_threads(max(1, torch.get_num_threads()))
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} (other processes may run)")

    with tempfile.TemporaryDirectory(dir=args.tmpdir) as tmp:
        path = Path(tmp) / "h36m-size.h5"
        t0 = time.perf_counter()
        proc = mp.get_context("spawn").Process(target=write_big_file, args=(path, args.frames))
        proc.start()
        proc.join()
        if proc.exitcode != 0:
            raise SystemExit(f"generating {path} failed (exit code {proc.exitcode})")
        size_mb = path.stat().st_size / 2**20
        print(
            f"generated {args.frames} frames, {size_mb:.0f} MB "
            f"in {time.perf_counter() - t0:.1f} s (not timed)"
        )

        t0 = time.perf_counter()
        f = Pose2MetFile(path)
        open_s = time.perf_counter() - t0
        print(
            f"open + validate + index: {open_s * 1000:.0f} ms "
            f"({f.num_sequences} sequences, {f.num_frames} frames)"
        )

        common = {
            "path": str(path),
            "num_frames": args.num_frames,
            "batch_size": args.batch_size,
            "target_space": args.target_space,
            "flip_augment": True,
        }
        dm = Pose2MetDataModule(**common, num_workers=0)
        dm.setup("fit")
        print(
            f"train clips (T={args.num_frames}, stride {args.num_frames // 3}): {len(dm.datasets['train'])}"
        )
        dm.datasets["train"][0]  # import-time and first-open costs outside the RSS window
        rss_before = rss_mb()
        rate0, _ = throughput(dm, args.batches)
        rss_after = rss_mb()
        print(f"num_workers=0: {rate0:8.1f} clips/s ({rate0 * args.num_frames:,.0f} frames/s)")
        print(
            f"RSS serving {args.batches} random batches (workers=0): "
            f"{rss_before:.0f} MB -> {rss_after:.0f} MB (+{rss_after - rss_before:.0f} MB)"
        )

        dm2 = Pose2MetDataModule(**common, num_workers=2, persistent_workers=True)
        dm2.setup("fit")
        rate2, peak2 = throughput(dm2, args.batches)
        print(f"num_workers=2: {rate2:8.1f} clips/s ({rate2 * args.num_frames:,.0f} frames/s)")
        print(f"2 workers' private memory (USS) while serving: peak {peak2:.0f} MB in total")
        print(f"ratio workers=2 / workers=0: {rate2 / rate0:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
