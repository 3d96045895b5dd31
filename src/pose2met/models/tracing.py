"""Whether PyTorch is scripting, tracing, compiling, exporting or transforming the model right now."""

from __future__ import annotations

import torch


def tracing() -> bool:
    """True while scripting, tracing, compiling or exporting, or inside a ``torch.func`` transform
    (``grad``, ``vmap``, ``jvp``): data-dependent checks and the custom CPU kernels are skipped there,
    in favour of plain PyTorch operators."""
    return (
        torch.jit.is_scripting()
        or torch.jit.is_tracing()
        or torch.compiler.is_compiling()
        or torch.onnx.is_in_onnx_export()
        or _functorch_active()
    )


def _functorch_active() -> bool:
    peek = getattr(torch._C._functorch, "peek_interpreter_stack", None)
    return peek is not None and peek() is not None
