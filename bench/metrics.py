"""Throughput of the pose and energy metrics (frames or samples per second).

Usage: ``python bench/metrics.py [--frames 1000000] [--device cpu] [--repeats 3]``. Prints one
line per metric: the best time over the repeats and frames/s. The Human3.6M line scores a test set
of 567k frames in evaluation clips (B=16, T=243) with ``H36MProtocol.update`` + ``compute``.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import torch

from pose2met.metrics import H36M_ACTIONS, H36MProtocol
from pose2met.metrics import functional as MF

H36M_TEST_FRAMES = 567_000


def _best_time(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best


def _report(name: str, count: int, unit: str, seconds: float) -> None:
    print(f"{name:<34s} {count:>9,d} {unit:<7s} {seconds * 1e3:9.1f} ms  {count / seconds:>13,.0f} {unit}/s")


def _poses(
    frames: int, device: torch.device, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    target = torch.randn(frames, 17, 3, generator=generator) * 200
    pred = target + torch.randn(frames, 17, 3, generator=generator) * 40
    return pred.to(device), target.to(device)


def _h36m_protocol(pred: torch.Tensor, target: torch.Tensor, clip: int, batch: int) -> None:
    """Score ``pred``/``target`` (N, J, 3) as a test set of clips, the last one padded."""
    metric = H36MProtocol(H36M_ACTIONS).to(pred.device)
    n = pred.shape[0]
    per_batch = clip * batch
    for start in range(0, n, per_batch):
        stop = min(start + per_batch, n)
        rows = -(-(stop - start) // clip)
        pad = rows * clip - (stop - start)
        p = torch.nn.functional.pad(pred[start:stop], (0, 0, 0, 0, 0, pad)).reshape(rows, clip, 17, 3)
        t = torch.nn.functional.pad(target[start:stop], (0, 0, 0, 0, 0, pad)).reshape(rows, clip, 17, 3)
        frames = torch.arange(start, start + rows * clip, device=pred.device).reshape(rows, clip)
        valid = frames < stop
        frames = frames.masked_fill(~valid, -1)
        actions = [H36M_ACTIONS[(start // clip + r) % len(H36M_ACTIONS)] for r in range(rows)]
        metric.update(p, t, frames, valid, actions)
    metric.compute()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1_000_000, help="frames for the per-frame metrics")
    parser.add_argument("--procrustes-frames", type=int, default=200_000, help="frames for P-MPJPE")
    parser.add_argument("--samples", type=int, default=10_000, help="samples for vid2burn_metrics")
    parser.add_argument("--bins", type=int, default=500)
    parser.add_argument(
        "--device", choices=("cpu", "cuda"), default="cpu", help="MPS is not offered: the metrics use float64"
    )
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available")
    g = torch.Generator().manual_seed(0)
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    pred, target = _poses(args.frames, device, g)
    for name, fn in (
        ("mpjpe", MF.mpjpe),
        ("n_mpjpe", MF.n_mpjpe),
        ("pck_3dhp", MF.pck_3dhp),
        ("auc_3dhp", MF.auc_3dhp),
    ):
        _report(name, args.frames, "frames", _best_time(lambda f=fn: f(pred, target), args.repeats, device))
    clips = args.frames // 243
    seq_pred, seq_target = (
        pred[: clips * 243].reshape(clips, 243, 17, 3),
        target[: clips * 243].reshape(clips, 243, 17, 3),
    )
    t = _best_time(lambda: MF.mpjve(seq_pred, seq_target), args.repeats, device)
    _report("mpjve (clips of 243)", clips * 243, "frames", t)
    pp, pt = pred[: args.procrustes_frames], target[: args.procrustes_frames]
    _report("p_mpjpe", pp.shape[0], "frames", _best_time(lambda: MF.p_mpjpe(pp, pt), args.repeats, device))
    hp, ht = _poses(H36M_TEST_FRAMES, device, g)
    t = _best_time(lambda: _h36m_protocol(hp, ht, clip=243, batch=16), max(1, args.repeats - 1), device)
    _report("H36MProtocol update+compute", H36M_TEST_FRAMES, "frames", t)
    centers = torch.arange(args.bins, dtype=torch.float32, device=device) + 0.5
    labels = (150 + 300 * torch.rand(args.samples, generator=g)).to(device)
    probs = torch.randn(args.samples, args.bins, generator=g).to(device).softmax(-1)
    t = _best_time(lambda: MF.vid2burn_metrics(probs, labels, centers), args.repeats, device)
    _report(f"vid2burn_metrics (K={args.bins})", args.samples, "samples", t)


if __name__ == "__main__":
    main()
