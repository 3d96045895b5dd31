"""Whether PyTorch is scripting, tracing, compiling or exporting the model right now."""

from __future__ import annotations

import torch


def tracing() -> bool:
    """True while scripting, tracing, compiling or exporting: data-dependent checks and the custom CPU
    kernels are skipped there, in favour of plain PyTorch operators."""
    return (
        torch.jit.is_scripting()
        or torch.jit.is_tracing()
        or torch.compiler.is_compiling()
        or torch.onnx.is_in_onnx_export()
    )
