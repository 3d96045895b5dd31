"""SynthMet generation speed (and, with ``--stats``, label and quality figures).

``python bench/synthmet.py [--presets tiny,default] [--h36m-scale] [--write] [--stats]``
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from pose2met.data.h5format import write_dataset
from pose2met.data.synthmet import PRESETS, SynthMetBundle, generate
from pose2met.data.synthmet.bodies import ANKLE_HEIGHT_FRACTION


def _world(bundle: SynthMetBundle, sequence: int) -> np.ndarray:
    start, length = bundle.sequences["start"][sequence], bundle.sequences["length"][sequence]
    cam = bundle.cameras[bundle.sequences["camera"][sequence]]
    return (bundle.frames["joints_3d"][start : start + length].astype(np.float64) - cam["t"]) @ cam["R"]


def print_stats(bundle: SynthMetBundle) -> None:
    """Per-activity labels, foot sliding, image coverage and detector error of a bundle."""
    inst, fps = bundle.instances, bundle.preset.fps
    print(f"  {'activity':14s} {'n':>4s} {'mean':>7s} {'std':>6s} {'cv':>5s} {'min':>5s} {'max':>5s}  kcal/h")
    for action in dict.fromkeys(inst["action"]):
        v = inst["kcal"][inst["action"] == action]
        print(
            f"  {action:14s} {len(v):4d} {v.mean():7.1f} {v.std():6.1f} {v.std() / v.mean():5.2f} "
            f"{v.min():5.0f} {v.max():5.0f}"
        )
    q = np.percentile(inst["kcal"], [0, 5, 50, 95, 100])
    print(
        f"  labels: min {q[0]:.0f}, p5 {q[1]:.0f}, median {q[2]:.0f}, p95 {q[3]:.0f}, max {q[4]:.0f} kcal/h"
    )
    print(f"  share of labels above 500 kcal/h: {(inst['kcal'] > 500).mean():.1%}")
    slide = {"walking": [], "jogging": []}
    for k, action in enumerate(inst["action"]):
        if action in slide:
            world = _world(bundle, inst["first_sequence"][k])
            floor = ANKLE_HEIGHT_FRACTION * bundle.subjects.height_mm[inst["subject"][k]]
            speed = np.linalg.norm(np.diff(world[:, [3, 6], :2], axis=0), axis=-1) * fps  # mm/s
            z = world[:, [3, 6], 2]
            resting = (np.abs(z[1:] - floor) < 2.0) & (np.abs(np.diff(z, axis=0)) * fps < 20.0)
            slide[action].append(speed[resting])
    for action, values in slide.items():
        v = np.concatenate(values)
        print(f"  {action}: ankle speed while resting on the floor: median {np.median(v):.1f}, "
              f"p95 {np.percentile(v, 95):.1f} mm/s, share > 20 mm/s {(v > 20).mean():.1%}")  # fmt: skip
    gt, det = bundle.frames["joints_2d_gt"], bundle.frames["joints_2d"]
    inside = (gt[..., 0] >= 0) & (gt[..., 0] < 1000) & (gt[..., 1] >= 0) & (gt[..., 1] < 1000)
    err = np.linalg.norm(det - gt, axis=-1)
    height_px = gt[..., 1].max(-1) - gt[..., 1].min(-1)
    print(f"  ground-truth keypoints inside the image: {inside.mean():.2%}; person height "
          f"{np.percentile(height_px, 5):.0f}-{np.percentile(height_px, 95):.0f} px (p5-p95)")  # fmt: skip
    print(f"  detector error: median {np.median(err):.2f} px, mean {err.mean():.2f} px, p99 "
          f"{np.percentile(err, 99):.1f} px, >50 px {(err > 50).mean():.2%}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--presets", default="tiny,default", help="comma-separated preset names")
    parser.add_argument("--h36m-scale", action="store_true", help="also time the h36m-scale preset")
    parser.add_argument("--write", action="store_true", help="also time writing the HDF5 file")
    parser.add_argument("--stats", action="store_true", help="print label and quality figures")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    names = [n for n in args.presets.split(",") if n] + (["h36m-scale"] if args.h36m_scale else [])
    unknown = sorted(set(names) - set(PRESETS))
    if unknown:
        parser.error(f"--presets: unknown {unknown}; expected names from {sorted(PRESETS)}")
    print(f"load average before: {os.getloadavg()}, cpus: {os.cpu_count()}")
    for name in names:
        start = time.perf_counter()
        bundle = generate(PRESETS[name], args.seed)
        seconds = time.perf_counter() - start
        n, train = bundle.num_frames, int(np.sum(np.asarray(bundle.sequences["split"]) == "train"))
        train_frames = int(
            np.asarray(bundle.sequences["length"])[np.asarray(bundle.sequences["split"]) == "train"].sum()
        )
        print(
            f"{name}: {n} frames ({train_frames} train) in {len(bundle.sequences['start'])} sequences "
            f"({train} train), {len(bundle.instances['kcal'])} motions: generated in {seconds:.2f} s "
            f"= {n / seconds:,.0f} frames/s"
        )
        if args.write:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / f"synthmet-{name}.h5"
                start = time.perf_counter()
                write_dataset(path, frames=bundle.frames, sequences=bundle.sequences, cameras=bundle.cameras,
                              dataset="synthmet", fps=bundle.preset.fps, attrs=bundle.attrs)  # fmt: skip
                print(
                    f"  written in {time.perf_counter() - start:.2f} s, {path.stat().st_size / 2**20:.0f} MiB"
                )
        if args.stats:
            print_stats(bundle)
        del bundle
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
