"""Exported-model speed: ONNX Runtime vs PyTorch eager on CPU, ms per sequence (batch 1).

Usage::

    python bench/export.py                    # small T=81 and base T=243, batch 1
    python bench/export.py --repeats 5 --threads 2

Both run the same randomly initialized Pose2Met model (encoder + pose head + calorie head) with
batch norms folded, as ``pose2met infer`` runs it: PyTorch in ``inference_mode``, ONNX Runtime
on the graph written by ``pose2met export --format onnx`` (opset 17, CPU provider, graph
optimizations on). Times are medians (and minima) over repeats after one warm-up call, measured
side by side in one process; ``max |diff|`` compares the ONNX outputs with PyTorch's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

try:
    import onnxruntime as ort
except ModuleNotFoundError:  # an optional extra
    raise SystemExit('bench/export.py needs ONNX Runtime: pip install "pose2met[export]"') from None

from pose2met.infer.export import example_input, export_model
from pose2met.infer.predict import LoadedModel
from pose2met.models import Pose2MetModel, stapformer_preset

CASES = (("small", 81), ("base", 243))


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), min(times)


def bench_case(preset: str, frames: int, repeats: int, threads: int, folder: Path) -> list[str]:
    torch.manual_seed(0)
    model = Pose2MetModel.build(stapformer_preset(preset, num_frames=frames)).eval()  # type: ignore[arg-type]
    model.encoder.fuse_for_inference()
    head = model.calorie_head
    loaded = LoadedModel(model, frames, "camera", head.bin_centers if head else None, preset)
    path = folder / f"{preset}-{frames}.onnx"
    start = time.perf_counter()
    export_model(loaded, path, "onnx")
    export_s = time.perf_counter() - start
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    x = example_input(loaded)
    feed = {"keypoints": x.numpy()}

    def torch_run() -> dict[str, torch.Tensor]:
        with torch.inference_mode():
            return model(x)

    ref = torch_run()
    got = session.run(None, feed)
    diff = max(
        float(np.abs(g - ref[n].numpy()).max()) for g, n in zip(got, ("pose_3d", "kcal_logits"), strict=True)
    )
    t_med, t_min = timed(torch_run, repeats)
    o_med, o_min = timed(lambda: session.run(None, feed), repeats)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    case = f"{preset} T={frames} B=1 ({params:.2f}M params)"
    return [
        f"| {case} | PyTorch eager | {t_med:.1f} | {t_min:.1f} | 1.00 | |",
        f"| {case} | ONNX Runtime | {o_med:.1f} | {o_min:.1f} | {t_med / o_med:.2f} | "
        f"{diff:.1e} (export {export_s:.1f} s, {path.stat().st_size / 2**20:.1f} MiB) |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--cases", nargs="*", default=[f"{p}:{t}" for p, t in CASES], help="preset:T")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"torch {torch.__version__}, onnxruntime {ort.__version__}, {args.threads} threads, load {load}")
    print("\n| case | runtime | ms/seq (median) | ms (min) | speed-up vs PyTorch | max abs diff |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases:
            preset, frames = case.split(":")
            for row in bench_case(preset, int(frames), args.repeats, args.threads, Path(tmp)):
                print(row, flush=True)


if __name__ == "__main__":
    main()
