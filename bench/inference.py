"""STAPFormer speed: reference (plain eager) vs fast path, inference and training step.

Usage::

    python bench/inference.py                 # CPU, default thread count
    python bench/inference.py --quick --out bench/inference.md
    python bench/inference.py --device cuda --compile

Rows: the *reference* path is the same model with plain matmul attention
(``attention_impl="math"``), no batch-norm folding and PyTorch operators only (inside
``cpu_kernels.disabled()``); the *fast* path uses ``attention_impl="auto"`` (on the CPU the C kernels
of :mod:`pose2met.models.cpu_kernels` for attention and training-mode batch norm + GELU; fused SDPA
elsewhere), ``fuse_for_inference()`` and ``torch.inference_mode``; *fast, PyTorch operators only* is
the fast path inside ``cpu_kernels.disabled()``, to show what the kernels add. All run the same
weights (batch-norm statistics randomized as in a trained model); ``max |diff|`` is the largest
absolute difference of the fast output from the reference output. The official-layout rows run the
literal re-implementation of the official forward kept in ``tests/models/test_compat.py``
(in the training step: batch-statistics batch norm, plain AdamW over the official state dict);
where they run, every other row's note gives its speed-up over the official layout.
The paths of one case are timed interleaved, one call each per round, so that a slow spell of a
shared machine hits all of them alike; times are medians (and minima) over the rounds after warm-up,
and ``speed-up`` is the median over rounds of the reference time divided by the path's time in the
same round (drift-robust, unlike a ratio of medians taken minutes apart).
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from pose2met.compat.official import official_key_shapes, parse_official_config
from pose2met.models import PoseHead, PoseLifter, cpu_kernels, stapformer_preset

ROOT = Path(__file__).resolve().parents[1]
OFFICIAL = "official layout (literal re-impl.)"


@dataclass
class Row:
    case: str
    path: str
    params_m: float
    gflop: float
    ms_median: float
    ms_min: float
    per_seq: int
    frames: int
    max_diff: float | None = None
    note: str = ""
    speedup: float | None = None

    def cells(self) -> list[str]:
        ms_seq = self.ms_median / self.per_seq
        fps = self.frames / (self.ms_median / 1e3)
        diff = "" if self.max_diff is None else f"{self.max_diff:.2e}"
        speedup = "" if self.speedup is None else f"{self.speedup:.2f}x"
        return [self.case, self.path, f"{self.params_m:.2f}M", f"{self.gflop:.1f}", f"{self.ms_median:.0f}",
                f"{self.ms_min:.0f}", f"{ms_seq:.1f}", f"{fps:.0f}", speedup, diff, self.note]  # fmt: skip


HEADER = [
    "case",
    "path",
    "params",
    "GFLOP",
    "ms (median)",
    "ms (min)",
    "ms/seq",
    "frames/s",
    "speed-up",
    "max |diff|",
    "note",
]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Timing:
    ms_median: float
    ms_min: float
    times: list[float]  # ms, one per round

    def ratio_to(self, other: Timing) -> float:
        """Median over rounds of ``other``'s time / this path's time (same-round pairs)."""
        return statistics.median(o / t for o, t in zip(other.times, self.times, strict=True))


def time_interleaved(
    fns: dict[str, Callable[[], object]], device: torch.device, warmup: int, repeats: int
) -> dict[str, Timing]:
    """Time several paths round-robin (one call of each per round)."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            times[name].append((time.perf_counter() - start) * 1e3)
    return {name: Timing(statistics.median(ts), min(ts), ts) for name, ts in times.items()}


def count_gflop(fn: Callable[[], object]) -> float:
    """GFLOP of one call, counted on PyTorch's operators (the C kernels do the same work uncounted)."""
    with FlopCounterMode(display=False) as counter, cpu_kernels.disabled():
        fn()
    return counter.get_total_flops() / 1e9


def plain(fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn`` run with PyTorch operators only (no C kernels or other CPU fast paths)."""

    def run() -> Any:
        with cpu_kernels.disabled():
            return fn()

    return run


def randomize_batch_norms(model: nn.Module, seed: int = 0) -> None:
    """Trained-looking batch-norm statistics, so that folding them is a real test."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.2)
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))
                m.weight.copy_(1 + torch.randn(n, generator=g) * 0.1)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)


def build(preset: str, frames: int, gcn: bool, impl: str, device: torch.device) -> PoseLifter:
    torch.manual_seed(0)
    encoder = stapformer_preset(preset, num_frames=frames, joint_gcn=gcn, attention_impl=impl)  # type: ignore[arg-type]
    model = PoseLifter(encoder, PoseHead(encoder.dim_rep))
    randomize_batch_norms(model)
    return model.to(device).eval()


def fast_copy(reference: PoseLifter) -> PoseLifter:
    fast = copy.deepcopy(reference)
    for m in fast.modules():
        if hasattr(m, "attention_impl"):
            m.attention_impl = "auto"
    return fast.fuse_for_inference()


def params_m(model: nn.Module) -> float:
    return sum(p.numel() for p in model.parameters()) / 1e6


def load_official_reference() -> Callable | None:
    """The literal official-layout forward of the test suite (None if the tests are not there)."""
    path = ROOT / "tests" / "models" / "test_compat.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("_official_reference", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.official_forward


def official_state_dict(
    model: PoseLifter, preset_depth: int, frames: int, device: torch.device
) -> tuple[dict, dict]:
    """Official-layout weights equal to ``model``'s (inverse of the loader's permutation)."""
    from einops import rearrange

    cfg = dict(depth=preset_depth, dim_feat=128, dim_compress=128, dim_rep=512, block_size=[3, 3],
               block_stride=[3, 3], num_heads=8, num_frames=frames)  # fmt: skip
    ours = model.state_dict()
    kwargs, dim_out = parse_official_config(cfg)
    out = {}
    for key, shape in official_key_shapes(kwargs, dim_out).items():
        name = key.replace("encoder.input_embed.", "encoder.embed.").replace(".inner_mixer.", ".joint.")
        name = name.replace(".outer_mixer.qkv.0.", ".stap.qkv.").replace(
            ".outer_mixer.qkv.1.", ".stap.qkv_norm."
        )
        name = name.replace(".outer_mixer.proj.", ".stap.proj.")
        if name.startswith(("norm.", "rep_logit.0.")):
            name = "encoder." + name.replace("rep_logit.0.", "rep.")
        elif name.startswith("head."):
            name = "head.linear." + name[5:]
        value = ours[name]
        if key.endswith("inner_mixer.qkv.weight"):
            value = rearrange(value, "(s n h c) i -> (s h c n) i", n=3, s=2, h=8)
        elif key.endswith("inner_mixer.proj.weight"):
            value = rearrange(value, "o (s h c) -> o (s c h)", s=2, h=8)
        out[key] = value.reshape(shape).detach().to(device, copy=True)
    return out, cfg


@dataclass
class BenchPath:
    """One way of running a case: what to call and what its row reports besides the timing."""

    run: Callable[[], Any]
    params_m: float
    gflop: float
    note: str = ""
    compare: bool = True  # report the max |diff| of its output from the reference output


def timed_rows(
    case: str, paths: dict[str, BenchPath], batch: int, frames: int, args: argparse.Namespace,
    expected: torch.Tensor | None = None,
) -> list[Row]:  # fmt: skip
    """Time ``paths`` interleaved (the first is the baseline of the speed-up) and make their rows."""
    timings = time_interleaved({name: path.run for name, path in paths.items()}, torch.device(args.device),
                               args.warmup, args.repeats)  # fmt: skip
    baseline, official = timings[next(iter(paths))], timings.get(OFFICIAL)
    rows = []
    for name, path in paths.items():
        diff = None
        if expected is not None and path.compare:
            diff = (path.run().float() - expected).abs().max().item()
        t = timings[name]
        note = path.note
        if official is not None and name != OFFICIAL:
            note = "; ".join(filter(None, (note, f"{t.ratio_to(official):.2f}x vs official layout")))
        rows.append(Row(case, name, path.params_m, path.gflop, t.ms_median, t.ms_min, batch, batch * frames,
                        diff, note, t.ratio_to(baseline)))  # fmt: skip
    return rows


def inference_rows(
    preset: str, frames: int, batch: int, args: argparse.Namespace, official: Callable | None
) -> list[Row]:
    device = torch.device(args.device)
    reference = build(preset, frames, gcn=False, impl="math", device=device)
    fast = fast_copy(reference)
    with_gcn = fast_copy(build(preset, frames, gcn=True, impl="math", device=device))
    x = torch.randn(batch, frames, 17, 3, device=device)

    def one_sequence_gflop(model: nn.Module) -> float:
        return count_gflop(lambda: model(x[:1]))

    def bf16_forward() -> torch.Tensor:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            return fast(x)

    with torch.inference_mode():
        expected = plain(lambda: reference(x))()
        gflop = one_sequence_gflop(reference)
        paths = {
            "reference (math, no fold)": BenchPath(plain(lambda: reference(x)), params_m(reference), gflop),
            "fast (auto: C kernels, folded BN)": BenchPath(lambda: fast(x), params_m(fast), gflop),
            "fast, PyTorch operators only": BenchPath(plain(lambda: fast(x)), params_m(fast), gflop),
            "fast, with skeleton GCN (default)": BenchPath(
                lambda: with_gcn(x), params_m(with_gcn), one_sequence_gflop(with_gcn), "own weights", False
            ),
        }
        if official is not None and batch == 1:
            sd, cfg = official_state_dict(reference, len(reference.encoder.blocks), frames, device)
            paths[OFFICIAL] = BenchPath(lambda: official(sd, cfg, x), params_m(reference), gflop)
        paths[f"fast + {device.type} bf16 autocast"] = BenchPath(
            bf16_forward, params_m(fast), gflop, "error vs fp32 reference"
        )
        if args.compile:
            compiled = torch.compile(fast)
            start = time.perf_counter()
            compiled(x)
            sync(device)
            note = f"compile {time.perf_counter() - start:.0f} s"
            paths["fast + torch.compile"] = BenchPath(lambda: compiled(x), params_m(fast), gflop, note)
        return timed_rows(f"{preset} T={frames} B={batch}", paths, batch, frames, args, expected)


def train_rows(args: argparse.Namespace, official: Callable | None) -> list[Row]:
    device = torch.device(args.device)
    frames, batch = 27, 16
    x = torch.randn(batch, frames, 17, 3, device=device)
    y = torch.randn(batch, frames, 17, 3, device=device)

    def step_fn(
        forward: Callable[[torch.Tensor], torch.Tensor], opt: torch.optim.Optimizer
    ) -> Callable[[], None]:
        def step() -> None:
            loss = (forward(x) - y).norm(dim=-1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return step

    paths = {}
    for name, impl, fused, kernels in (
        ("reference (math, AdamW default)", "math", False, False),
        ("fast (auto: C kernels, fused AdamW)", "auto", True, True),
        ("fast, PyTorch operators only", "auto", True, False),
    ):
        torch.manual_seed(0)
        encoder = stapformer_preset("small", num_frames=frames, joint_gcn=False, attention_impl=impl)  # type: ignore[arg-type]
        model = PoseLifter(encoder, PoseHead(512)).to(device).train()
        opt = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.01, fused=fused)
        step = step_fn(model, opt) if kernels else plain(step_fn(model, opt))
        paths[name] = BenchPath(step, params_m(model), count_gflop(step), "fwd+bwd+AdamW")
    if official is not None:
        # the small model's weights in the official layout, trained via the official forward (batch-stat BN)
        sd, cfg = official_state_dict(model, len(model.encoder.blocks), frames, device)
        sd = {k: v.requires_grad_(k.endswith(("weight", "bias"))) for k, v in sd.items()}  # own copies
        opt = torch.optim.AdamW([v for v in sd.values() if v.requires_grad], lr=5e-4, weight_decay=0.01)
        step = step_fn(lambda inp: official(sd, cfg, inp, training=True), opt)
        paths[OFFICIAL] = BenchPath(step, params_m(model), count_gflop(step), "fwd+bwd+AdamW")
    return timed_rows(f"train step small T={frames} B={batch}", paths, batch, frames, args)


def render(rows: list[Row], title: str) -> str:
    lines = [f"### {title}", "", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r.cells()) + " |" for r in rows]
    return "\n".join(lines)


def environment(device: torch.device) -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU, {torch.get_num_threads()} threads"
    )
    kernels = cpu_kernels.status() if device.type == "cpu" else "not used on this device"
    return (f"torch {torch.__version__}, {name}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
            f"(other processes share the CPU when it is above 0); C kernels {kernels}")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument(
        "--compile", action="store_true", help="also time torch.compile (and its compile time)"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument(
        "--no-official", action="store_true", help="skip the official-layout re-implementation"
    )
    parser.add_argument("--out", type=Path, default=None, help="also write the tables as Markdown here")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available")
    if args.threads:
        torch.set_num_threads(args.threads)
    args.warmup, args.repeats = (1, 5) if args.quick else (2, 9)
    official = None if args.no_official else load_official_reference()
    device = torch.device(args.device)
    sections = [f"Environment: {environment(device)}"]
    rows = inference_rows("base", 243, 1, args, official) + inference_rows("small", 81, 16, args, official)
    sections.append(render(rows, "Inference (fp32 unless noted, eval)"))
    print(sections[-1], flush=True)
    sections.append(render(train_rows(args, official), "Training step"))
    print(sections[-1], flush=True)
    text = "\n\n".join(sections) + "\n"
    print(sections[0])
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
