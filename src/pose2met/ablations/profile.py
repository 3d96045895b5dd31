"""Model cost of a table cell: parameters, GFLOPs (``FlopCounterMode``) and batch-1 inference time."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

from pose2met.ablations.tables import RunSettings
from pose2met.models import PoseHead, PoseLifter, STAPFormer
from pose2met.skeleton import NUM_JOINTS

#: Untimed calls before timing (thread pools, allocator, caches).
WARMUP = 10


@dataclass(frozen=True)
class Cost:
    """``params`` (count), ``gflops`` (one clip), ``ms`` (median batch-1 latency), ``fps`` (frames/s)."""

    params: int
    gflops: float
    ms: float | None = None
    fps: float | None = None


def encoder_kwargs(settings: RunSettings, root: Path) -> dict:
    """Encoder arguments of the task's CPU-recipe config with the cell's settings applied."""
    path = root / settings.config
    try:
        config = yaml.safe_load(path.read_text())
        kwargs = dict(config["model"]["init_args"]["encoder"]["init_args"])
    except (OSError, KeyError, TypeError, yaml.YAMLError) as err:
        raise ValueError(f"{path}: expected model.init_args.encoder.init_args ({err})") from err
    kwargs.update(
        num_frames=settings.frames,
        stap_kernel=settings.kernel,
        stap_stride=settings.stride,
        joint_mixer=settings.mixer,
        stap=settings.stap,
    )
    return kwargs


def build_lifter(settings: RunSettings, root: Path, device: torch.device | str = "cpu") -> PoseLifter:
    """Encoder + pose head of the HPE recipe, in eval mode on ``device``."""
    torch.manual_seed(0)
    encoder = STAPFormer(**encoder_kwargs(settings, root))
    return PoseLifter(encoder, PoseHead(encoder.dim_rep)).to(device).eval()


def measure(settings: RunSettings, root: Path, *, repeats: int = 0, device: str | None = None) -> Cost:
    """Params and GFLOPs of one ``(1, T, 17, 3)`` clip; with ``repeats`` > 0 also median latency and FPS."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = build_lifter(settings, root, dev)
    x = torch.randn(1, settings.frames, NUM_JOINTS, 3, device=dev)
    params = sum(p.numel() for p in model.parameters())
    with torch.inference_mode():
        with FlopCounterMode(display=False) as counter:
            model(x)
        gflops = counter.get_total_flops() / 1e9
        if repeats <= 0:
            return Cost(params, gflops)
        times = []
        for i in range(repeats + WARMUP):
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            start = time.perf_counter()
            model(x)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            if i >= WARMUP:
                times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return Cost(params, gflops, median * 1e3, settings.frames / median)
