"""Command-line entry points: ``pose2met infer``, ``pose2met export``, ``pose2met viz compare|attention``.

Each ``*_main(argv)`` takes the arguments after the subcommand word and returns the exit code:
0 on success; 2 with a one-line ``error: ...`` message on stderr (no traceback) for bad input,
in which case no output file is written. An existing output file is refused before any work unless
``--overwrite`` is given; a file the command reads (``--checkpoint``, ``--input``, ...) is never replaced.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pose2met.atomic import unwritable_reason
from pose2met.checks import is_positive_number
from pose2met.infer.keypoints import (
    DEFAULT_MIN_SCORE,
    LAYOUTS,
    KeypointError,
    clean_keypoints,
    load_keypoints,
)
from pose2met.infer.outputs import OUTPUT_SUFFIXES, OutputError, check_new_output, write_result
from pose2met.infer.predict import (
    InferenceError,
    InferenceSettings,
    LoadedModel,
    load_inference_model,
    make_predict_fn,
    model_input,
    run_inference,
)
from pose2met.infer.units import DEFAULT_BODY_HEIGHT_MM, Intrinsics

EXIT_ERROR = 2
#: Errors reported as one line; anything else is a bug and keeps its traceback.
USER_ERRORS = (KeypointError, InferenceError, OutputError, ValueError, OSError)
#: Most samples `viz compare` draws (side by side in one row).
MAX_COMPARE_SAMPLES = 16


def _run(
    main: Callable[[argparse.Namespace], None], parser: argparse.ArgumentParser, argv: Sequence[str] | None
) -> int:
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help (0) or a usage error (2), already printed by argparse
        return int(stop.code or 0)
    try:
        main(args)
    except USER_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_ERROR
    return 0


def _device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise InferenceError(f"--device {name!r}: {err}") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InferenceError(f"--device {name}: CUDA is not available on this machine")
    if device.type not in ("cpu", "cuda"):
        raise InferenceError(f"--device {name}: expected cpu, cuda, cuda:N or auto")
    return name


def _add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="Pose2Met .ckpt (or official weights, see next)")
    parser.add_argument(
        "--official-config", default=None, metavar="YAML",
        help="the checkpoint holds official STAPFormer weights; this is their YAML config",
    )  # fmt: skip
    parser.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:1, ...")
    parser.add_argument(
        "--overwrite", action="store_true",
        help="replace existing output files (default: refuse); the command's input files are never replaced",
    )  # fmt: skip


def _inputs(args: argparse.Namespace, *flags: str) -> dict[str, str | None]:
    """``{flag: path}`` of the files a command reads, which its outputs must never replace."""
    names = ("--checkpoint", "--official-config", *flags)
    return {flag: getattr(args, flag[2:].replace("-", "_"), None) for flag in names}


def _output(args: argparse.Namespace, suffixes: tuple[str, ...], *input_flags: str) -> Path:
    """Check ``--output`` up front: suffix, folder, not an input file, existing only with ``--overwrite``."""
    output = check_new_output(
        args.output, suffixes, overwrite=args.overwrite, inputs=_inputs(args, *input_flags)
    )
    _check_writable_folder(output, "--output")
    return output


def _check_writable_folder(path: Path, flag: str) -> None:
    """Fail before any work if a file cannot be created at ``path``."""
    reason = unwritable_reason(path)
    if reason:
        raise OutputError(f"{flag} {path.parent}: {reason}")


def _load(args: argparse.Namespace) -> LoadedModel:
    return load_inference_model(args.checkpoint, args.official_config, _device(args.device))


# ------------------------------------------------------------------------------------------- infer
def infer_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pose2met infer",
        description="3D pose and energy expenditure (kcal/h) from 2D keypoints of one person.",
    )
    _add_model_args(p)
    p.add_argument("--input", required=True, help="keypoints: COCO-17 .json, or .npy/.npz (T, 17, 2|3)")
    p.add_argument("--layout", choices=LAYOUTS, default="coco", help="joint order of .npy/.npz input")
    p.add_argument("--image-size", type=float, nargs=2, required=True, metavar=("W", "H"))
    p.add_argument("--intrinsics", type=float, nargs=4, metavar=("FX", "FY", "CX", "CY"), default=None)
    p.add_argument("--root-depth", type=float, default=None, metavar="MM",
                   help="pelvis-to-camera distance (mm), for 2.5D models with --intrinsics")  # fmt: skip
    p.add_argument("--body-height", type=float, default=DEFAULT_BODY_HEIGHT_MM, metavar="MM",
                   help="subject height used to solve the root depth without --root-depth")  # fmt: skip
    p.add_argument("--fps", type=float, default=None, help="frame rate (needed for total_kcal and seconds)")
    p.add_argument("--output", required=True, help="OUT.npz or OUT.json")
    p.add_argument("--plot", default=None, metavar="DIR", help="write PNG figures into DIR")
    p.add_argument("--gif", action="store_true", help="with --plot: also an animated GIF of the skeleton")
    p.add_argument("--mp4", action="store_true", help="with --plot: also an MP4 (ffmpeg, pose2met[video])")
    p.add_argument("--stride", type=int, default=None, help="window stride in frames (default T/2)")
    p.add_argument("--batch-size", type=int, default=8, help="windows per model call")
    p.add_argument("--no-flip", action="store_true", help="no left/right flip test-time averaging")
    p.add_argument("--min-score", type=float, default=DEFAULT_MIN_SCORE,
                   help="keypoints below this confidence are treated as missing")  # fmt: skip
    return p


def _infer(args: argparse.Namespace) -> None:
    output = _output(args, OUTPUT_SUFFIXES, "--input")
    if (args.gif or args.mp4) and not args.plot:
        raise InferenceError("--gif/--mp4 need --plot DIR")
    if args.plot and Path(args.plot).exists() and not Path(args.plot).is_dir():
        raise OutputError(f"--plot {args.plot}: exists and is not a folder")
    if args.mp4:
        from pose2met.viz.animation import find_ffmpeg

        if find_ffmpeg() is None:
            raise InferenceError('--mp4 needs ffmpeg, none found: pip install "pose2met[video]" or use --gif')
    if args.stride is not None and args.stride < 1:
        raise InferenceError(f"--stride must be >= 1, got {args.stride}")
    if not 0.0 <= args.min_score <= 1.0:  # also refuses NaN
        raise InferenceError(f"--min-score must be a confidence in [0, 1], got {args.min_score}")
    if args.plot:
        _check_writable_folder(Path(args.plot) / "x", "--plot")
    if args.root_depth is not None and not is_positive_number(args.root_depth):
        raise InferenceError(
            f"--root-depth must be a positive number of millimetres, got {args.root_depth:g}"
        )
    if not is_positive_number(args.body_height):
        raise InferenceError(
            f"--body-height must be a positive number of millimetres, got {args.body_height:g}"
        )
    intrinsics = Intrinsics(*args.intrinsics) if args.intrinsics else None
    keypoints = clean_keypoints(load_keypoints(args.input, args.layout), args.min_score, source=args.input)
    loaded = _load(args)
    if args.stride is not None and args.stride > loaded.window:
        raise InferenceError(f"--stride {args.stride} exceeds the model's window of {loaded.window} frames")
    if args.plot and Path(args.plot).is_dir():  # the figures this model gives must not replace files either
        inputs = _inputs(args, "--input")
        for name in _plot_names(loaded, args):
            path = Path(args.plot) / name
            check_new_output(path, (path.suffix,), overwrite=args.overwrite, inputs=inputs)
    settings = InferenceSettings(
        image_size=(args.image_size[0], args.image_size[1]), intrinsics=intrinsics, fps=args.fps,
        stride=args.stride, batch_size=args.batch_size, flip=not args.no_flip,
        root_depth_mm=args.root_depth, body_height_mm=args.body_height,
    )  # fmt: skip
    record = run_inference(loaded, keypoints, settings)
    write_result(output, record)  # first: a failed write leaves earlier figures as they were
    if args.plot:
        _plots(record, Path(args.plot), args)
    missing = int(record["missing_frames"].sum())
    summary = f"wrote {output} ({record['num_frames']} frames, {len(record['window_start'])} windows"
    if missing:
        summary += f", {missing} frames without a person filled"
    if "kcal_per_hour" in record:
        summary += f", {record['kcal_per_hour']:.0f} ± {record['kcal_per_hour_std']:.0f} kcal/h"
    print(summary + ")")


def _plot_names(loaded: LoadedModel, args: argparse.Namespace) -> list[str]:
    """The files :func:`_plots` writes into ``--plot DIR`` for this model and these flags."""
    names = []
    if loaded.has_pose:
        names.append("skeletons.png")
        names += [
            f"skeleton{suffix}" for wanted, suffix in ((args.gif, ".gif"), (args.mp4, ".mp4")) if wanted
        ]
    if loaded.has_kcal:
        names.append("kcal_timeline.png")
    return names


def _plots(record: dict[str, Any], folder: Path, args: argparse.Namespace) -> None:
    from pose2met.viz.animation import AnimationError, save_skeleton_animation
    from pose2met.viz.figures import save_figure
    from pose2met.viz.sheet import skeleton_sheet_figure
    from pose2met.viz.timeline import kcal_timeline_figure

    folder.mkdir(parents=True, exist_ok=True)
    key = "joints_3d_mm" if "joints_3d_mm" in record else "joints_3d_normalized"
    fps = args.fps
    if key in record:
        units = "mm" if key == "joints_3d_mm" else "normalized units"
        fig = skeleton_sheet_figure(record[key], fps=fps, title=f"predicted 3D pose ({units})")
        save_figure(fig, folder / "skeletons.png")
        for wanted, suffix in ((args.gif, ".gif"), (args.mp4, ".mp4")):
            if wanted:
                try:
                    save_skeleton_animation(record[key], folder / f"skeleton{suffix}", fps=fps or 25.0)
                except AnimationError as err:
                    raise InferenceError(str(err)) from err
    if "window_kcal_per_hour" in record:
        fig = kcal_timeline_figure(
            record["window_start"], record["window_frames"], record["window_kcal_per_hour"],
            record["window_kcal_per_hour_std"], record["kcal_per_hour"], record["kcal_per_hour_std"], fps,
        )  # fmt: skip
        save_figure(fig, folder / "kcal_timeline.png")


def infer_main(argv: Sequence[str] | None = None) -> int:
    """``pose2met infer ...``; returns the exit code."""
    return _run(_infer, infer_parser(), argv)


# ------------------------------------------------------------------------------------------ export
def export_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pose2met export", description="Export encoder + heads to ONNX/TorchScript."
    )
    _add_model_args(p)
    p.add_argument("--format", choices=("onnx", "torchscript"), required=True)
    p.add_argument("--output", required=True, help="file to write (.onnx for onnx, .pt for torchscript)")
    p.add_argument("--frames", type=int, default=None, help="T of the exported graph (default: the model's)")
    p.add_argument("--batch", type=int, default=1, help="batch size of the exported graph")
    return p


def _export(args: argparse.Namespace) -> None:
    from pose2met.infer.export import EXPORT_SUFFIXES, export_model

    suffixes = EXPORT_SUFFIXES[args.format]
    if not Path(args.output).is_dir() and Path(args.output).suffix.lower() not in suffixes:
        raise OutputError(
            f"{args.output}: --format {args.format} output name must end with {' or '.join(suffixes)}"
        )
    output = _output(args, suffixes)
    loaded = _load(args)
    names = export_model(loaded, output, args.format, args.frames, args.batch)
    frames = args.frames or loaded.window
    print(f"wrote {output} ({args.format}; input keypoints ({args.batch}, {frames}, 17, 3); outputs {names})")


def export_main(argv: Sequence[str] | None = None) -> int:
    """``pose2met export ...``; returns the exit code."""
    return _run(_export, export_parser(), argv)


# --------------------------------------------------------------------------------------------- viz
def viz_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pose2met viz", description="Figures of a trained model.")
    sub = p.add_subparsers(dest="figure", required=True)
    cmp = sub.add_parser("compare", help="predicted vs ground-truth skeletons of dataset samples")
    _add_model_args(cmp)
    cmp.add_argument("--data", required=True, help="Pose2Met HDF5 file with 3D ground truth")
    cmp.add_argument("--split", default="test")
    cmp.add_argument("--num", type=int, default=4, help=f"number of samples (1-{MAX_COMPARE_SAMPLES})")
    cmp.add_argument("--output", required=True, help="PNG file")
    cmp.add_argument("--no-flip", action="store_true")
    att = sub.add_parser("attention", help="last block's Joint-Branch and STAP-Branch attention maps")
    _add_model_args(att)
    source = att.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="Pose2Met HDF5 file (one clip of --split is used)")
    source.add_argument("--input", help="keypoints file as for `infer` (its first window is used)")
    att.add_argument("--split", default="test")
    att.add_argument("--layout", choices=LAYOUTS, default="coco")
    att.add_argument("--image-size", type=float, nargs=2, metavar=("W", "H"), default=None)
    att.add_argument("--block", type=int, default=-1, help="block index (default: the last)")
    att.add_argument("--output", required=True, help="PNG file")
    return p


def _png(args: argparse.Namespace, *input_flags: str) -> Path:
    return _output(args, (".png",), *input_flags)


def _compare(args: argparse.Namespace) -> None:
    from pose2met.infer.samples import dataset_batch, predict_vs_truth
    from pose2met.viz.figures import save_figure
    from pose2met.viz.skeleton import skeleton_comparison_figure

    if not 1 <= args.num <= MAX_COMPARE_SAMPLES:
        raise InferenceError(
            f"--num must be in [1, {MAX_COMPARE_SAMPLES}] (one row of panels, 320 px each), got {args.num}"
        )
    output = _png(args, "--data")
    loaded = _load(args)
    batch = dataset_batch(args.data, args.split, args.num, loaded.window, loaded.target_space)
    pred, gt = predict_vs_truth(loaded, batch, flip=not args.no_flip)
    mid = pred.shape[1] // 2
    errors = np.linalg.norm(pred[:, mid] - gt[:, mid], axis=-1).mean(-1)
    titles = [
        f"{a} / {s}: {e:.0f} mm" for a, s, e in zip(batch["action"], batch["subject"], errors, strict=True)
    ]
    save_figure(skeleton_comparison_figure(pred[:, mid], gt[:, mid], titles), output)
    print(f"wrote {output} ({len(errors)} samples, centre frame; MPJPE {errors.mean():.1f} mm)")


def _attention(args: argparse.Namespace) -> None:
    from pose2met.infer.samples import dataset_batch
    from pose2met.skeleton import JOINT_NAMES
    from pose2met.viz.attention import attention_figure, capture_attention
    from pose2met.viz.figures import save_figure

    output = _png(args, "--data", "--input")
    loaded = _load(args)
    param = next(loaded.model.parameters())
    if args.data:
        # only the 2D input is used: "camera" reads no image25d-only arrays (factor_2_5d)
        x = dataset_batch(args.data, args.split, 1, loaded.window, "camera")["input_2d"]
    else:
        if args.image_size is None:
            raise InferenceError("--input needs --image-size W H")
        if not all(is_positive_number(v) for v in args.image_size):
            raise InferenceError(
                f"--image-size: width and height must be positive finite numbers, got {args.image_size}"
            )
        kp = clean_keypoints(load_keypoints(args.input, args.layout), source=args.input)
        x = torch.from_numpy(model_input(kp, *args.image_size))[: loaded.window][None]
    x = x.to(device=param.device, dtype=param.dtype)
    predict = make_predict_fn(loaded, flip=False)
    try:
        maps = capture_attention(loaded.encoder, lambda: predict(x), args.block)  # type: ignore[arg-type]
    except IndexError as err:
        raise InferenceError(
            f"--block {args.block}: the model has {len(loaded.encoder.blocks)} blocks"
        ) from err
    save_figure(attention_figure(maps, JOINT_NAMES), output)
    print(f"wrote {output} (block {maps.block}, {x.shape[1]} frames)")


def viz_main(argv: Sequence[str] | None = None) -> int:
    """``pose2met viz compare|attention ...``; returns the exit code."""
    parser = viz_parser()
    return _run(lambda args: {"compare": _compare, "attention": _attention}[args.figure](args), parser, argv)
