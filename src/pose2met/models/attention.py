"""Scaled dot-product attention with a choice of kernel (fused SDPA or plain matmuls).

Measured on a 2-core AVX2 CPU (torch 2.13, fp32, see ``bench/inference.py``): the fused
``F.scaled_dot_product_attention`` kernel is 1.5-3x faster than plain matmuls for the long
sequences of STAPFormer (243 frames, 486 STAP tokens, 81 frames x batch 16), but about 20% slower
for the 17-joint spatial attention, where the per-call overhead of the fused kernel dominates.
``"auto"`` therefore picks SDPA on accelerators and, on CPU, for sequences of at least
:data:`SDPA_MIN_TOKENS_CPU` tokens (:data:`SDPA_MIN_TOKENS_CPU_TRAIN` when gradients are needed),
and plain matmuls otherwise.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

AttentionImpl = Literal["auto", "sdpa", "math"]
ATTENTION_IMPLS: tuple[str, ...] = ("auto", "sdpa", "math")
#: On CPU, ``"auto"`` uses the fused kernel from this sequence length on (inference; crossover measured
#: between 17 and 81 tokens) ...
SDPA_MIN_TOKENS_CPU = 32
#: ... and from this length on when gradients are needed (the fused backward lost to matmuls at 27-54 tokens).
SDPA_MIN_TOKENS_CPU_TRAIN = 128


#: CUDA launches the fused SDPA kernels with the batch axis on a grid dimension capped at 2**16 - 1
#: blocks (torch < 2.8 fails with "invalid configuration argument" beyond it); longer batches go in chunks.
SDPA_MAX_BATCH_CUDA = 65535


def check_attention_impl(impl: str) -> AttentionImpl:
    """Validate an ``attention_impl`` argument (clear error instead of a silent fallback)."""
    if impl not in ATTENTION_IMPLS:
        raise ValueError(f"attention_impl must be one of {ATTENTION_IMPLS}, got {impl!r}")
    return impl  # type: ignore[return-value]


def resolve_impl(
    impl: AttentionImpl, seq_len: int, device: torch.device, needs_grad: bool = False
) -> Literal["sdpa", "math"]:
    """The kernel ``"auto"`` stands for, given the sequence length, the device and autograd."""
    if impl != "auto":
        return impl
    threshold = SDPA_MIN_TOKENS_CPU_TRAIN if needs_grad else SDPA_MIN_TOKENS_CPU
    if device.type != "cpu" or seq_len >= threshold:
        return "sdpa"
    return "math"


def attend(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    scale: float,
    impl: AttentionImpl = "auto",
    dropout_p: float = 0.0,
) -> Tensor:
    """Softmax attention ``softmax(q k^T * scale) v`` over the second-to-last axis.

    Args:
        q, k, v: ``(..., N, c)`` with the same leading (batch, head) axes.
        scale: multiplier of the logits.
        impl: ``"sdpa"`` (fused kernel), ``"math"`` (matmul, softmax, matmul) or ``"auto"``.
        dropout_p: dropout on the attention weights (pass 0 in eval mode).

    Returns:
        ``(..., N, c)``.
    """
    needs_grad = torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad)
    if resolve_impl(impl, q.shape[-2], q.device, needs_grad) == "sdpa":
        return fused_attention(q, k, v, scale, dropout_p, sdpa_batch_limit(q.device))
    *batch, n, c = q.shape
    q, k, v = (z.reshape(-1, z.shape[-2], z.shape[-1]) for z in (q, k, v))
    # the scale is applied inside the matrix product (no extra pass over the logits, forward or backward)
    logits = torch.baddbmm(q.new_zeros(()).expand(1, 1, 1), q, k.transpose(1, 2), beta=0.0, alpha=scale)
    weights = torch.softmax(logits, dim=-1)
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p)
    return torch.bmm(weights, v).view(*batch, n, v.shape[-1])


def sdpa_batch_limit(device: torch.device) -> int | None:
    """The largest batch one fused SDPA call takes on ``device`` (``None``: no limit)."""
    return SDPA_MAX_BATCH_CUDA if device.type == "cuda" else None


def fused_attention(
    q: Tensor, k: Tensor, v: Tensor, scale: float, dropout_p: float = 0.0, max_batch: int | None = None
) -> Tensor:
    """``F.scaled_dot_product_attention`` on ``(B, ..., N, c)``, at most ``max_batch`` of B per call."""
    if max_batch is None or q.shape[0] <= max_batch:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, scale=scale)
    chunks = zip(q.split(max_batch), k.split(max_batch), v.split(max_batch), strict=True)
    return torch.cat(
        [
            F.scaled_dot_product_attention(qc, kc, vc, dropout_p=dropout_p, scale=scale)
            for qc, kc, vc in chunks
        ]
    )
