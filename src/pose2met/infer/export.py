"""Export of the inference model (encoder + heads) to ONNX or TorchScript.

The exported graph takes normalized keypoints ``keypoints (B, T, 17, 3)`` (MotionBERT x, y and the
confidence, as :func:`pose2met.infer.predict.model_input` makes them) and returns ``pose_3d``
``(B, T, 17, 3)`` in the checkpoint's target space and/or ``kcal_logits`` ``(B, K)``. Shapes are
fixed to the ``--frames`` / ``--batch`` of the export (the STAP token grid depends on T); no flip
averaging or windowing is inside the graph.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Literal

import psutil
import torch
from torch import Tensor, nn

from pose2met.atomic import write_atomic
from pose2met.infer.predict import LoadedModel

ExportFormat = Literal["onnx", "torchscript"]
EXPORT_FORMATS: tuple[str, ...] = ("onnx", "torchscript")
#: File name endings accepted by ``pose2met export --output`` for each ``--format``.
EXPORT_SUFFIXES: dict[str, tuple[str, ...]] = {"onnx": (".onnx",), "torchscript": (".pt",)}
INPUT_NAME = "keypoints"
ONNX_OPSET = 17
#: Tracing keeps every intermediate of the forward pass: at least this many ``(T, J, d)`` float32
#: token maps per block and sequence. Measured per sequence (torch 2.13): base T=243 915 MB (ONNX) /
#: 418 MB (TorchScript), small T=81 142 / 64 MB, a 4-block d=64 T=27 model 15 / 7 MB; this floor
#: gives 338, 42 and 5 MB, below every one of them.
TRACE_TOKEN_MAPS_PER_BLOCK = 10


def trace_memory_floor(loaded: LoadedModel, frames: int, batch: int) -> int:
    """A lower bound on the bytes that tracing ``batch`` sequences of ``frames`` frames holds."""
    encoder = loaded.encoder
    maps = TRACE_TOKEN_MAPS_PER_BLOCK * len(encoder.blocks)
    return maps * batch * frames * encoder.num_joints * encoder.dim_feat * 4


def check_trace_fits(loaded: LoadedModel, frames: int, batch: int) -> None:
    """Refuse an export that cannot fit in the available memory (the OS would kill it silently)."""
    floor, available = trace_memory_floor(loaded, frames, batch), psutil.virtual_memory().available
    if floor > available:
        raise ValueError(
            f"--batch {batch}: tracing {batch} sequences of {frames} frames needs at least "
            f"{floor / 2**30:.1f} GiB, but {available / 2**30:.1f} GiB of memory is available; export a "
            "smaller --batch (the runtime can run the graph once per batch)"
        )


class ExportModel(nn.Module):
    """Wraps a loaded model so it returns a tuple of tensors in the order of :attr:`output_names`."""

    def __init__(self, loaded: LoadedModel) -> None:
        super().__init__()
        self.model = loaded.model
        self.output_names: list[str] = []
        if loaded.has_pose:
            self.output_names.append("pose_3d")
        if loaded.has_kcal:
            self.output_names.append("kcal_logits")

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        out = self.model(x)
        return tuple(out[name] for name in self.output_names)


def example_input(loaded: LoadedModel, frames: int | None = None, batch: int = 1) -> Tensor:
    """A plausible normalized input ``(batch, frames, 17, 3)`` for tracing (fixed seed)."""
    frames = loaded.window if frames is None else frames
    if not 1 <= frames <= loaded.window:
        raise ValueError(f"--frames must be in [1, {loaded.window}] for this model, got {frames}")
    if batch < 1:
        raise ValueError(f"--batch must be >= 1, got {batch}")
    check_trace_fits(loaded, frames, batch)
    param = next(loaded.model.parameters())
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(batch, frames, 17, 3, generator=gen) * 1.2 - 0.6
    x[..., 2] = 0.9
    return x.to(device=param.device, dtype=param.dtype)


def export_model(
    loaded: LoadedModel,
    path: str | os.PathLike,
    fmt: ExportFormat,
    frames: int | None = None,
    batch: int = 1,
) -> list[str]:
    """Write the model to ``path`` (atomically) as ONNX (opset 17) or a traced TorchScript module.

    Returns the output names. Tracing prints nothing: the model's shape checks turn into constants,
    which is right for the fixed export shape.
    """
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"--format must be one of {EXPORT_FORMATS}, got {fmt!r}")
    wrapper = ExportModel(loaded).eval()
    x = example_input(loaded, frames, batch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings about the (now constant) shape checks
        if fmt == "onnx":
            write_atomic(
                path,
                lambda tmp: torch.onnx.export(
                    wrapper,
                    (x,),
                    str(tmp),
                    input_names=[INPUT_NAME],
                    output_names=wrapper.output_names,
                    opset_version=ONNX_OPSET,
                    dynamo=False,
                ),
            )
        else:
            with torch.no_grad():
                traced = torch.jit.trace(wrapper, (x,), check_trace=False)
            write_atomic(path, lambda tmp: torch.jit.save(traced, str(tmp)))
    wrapper.eval()  # torch.onnx.export restores the wrapper's mode, which reaches the wrapped model
    return wrapper.output_names


def default_export_path(checkpoint: str | os.PathLike, fmt: ExportFormat) -> Path:
    """``model.ckpt`` -> ``model.onnx`` / ``model.pt``."""
    return Path(checkpoint).with_suffix(".onnx" if fmt == "onnx" else ".pt")
