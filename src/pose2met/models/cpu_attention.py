"""Fused CPU attention over joints, frames or STAP tokens (see :mod:`pose2met.models.cpu_kernels`).

STAPFormer's attention runs over short sequences (17 joints, 27-243 frames, a few hundred STAP
tokens) with narrow heads (8 or 16 channels). On a CPU, batched matrix products and the softmax
spend most of their time on per-matrix overhead at these sizes, and the reshapes between the
fused qkv projection and the per-head layout add copies forward and backward. The C kernel
computes ``softmax(scale * q k^T) v`` (and its gradients) one sequence at a time in cache, reading
the heads straight out of the qkv tensor and writing the output in the ``(B, T, J, C)`` layout the
projection reads. Callers check :func:`usable` and otherwise use
:func:`pose2met.models.attention.attend`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from einops import rearrange
from torch import Tensor

from pose2met.models import cpu_kernels
from pose2met.models.attention import SDPA_MIN_TOKENS_CPU_TRAIN
from pose2met.models.cpu_kernels import HEAD_DIMS, Plan, View

Axis = Literal["joints", "frames"]


@dataclass(frozen=True)
class _Job:
    """One batch of equal-length sequences: where q, k, v sit in the input and o in the output."""

    plan: Plan
    head_dim: int
    sequences: int
    length: int


@dataclass(frozen=True)
class AttentionPlan:
    """How one qkv tensor of a given shape is attended: the output shape and the jobs."""

    out_shape: tuple[int, ...]
    jobs: tuple[_Job, ...]
    scale: float
    heads: int
    axes: tuple[Axis, ...]


def _view(t: Tensor, length_dim: int, batch_dims: Sequence[int]) -> View:
    strides = [t.stride(d) for d in batch_dims] + [0] * (3 - len(batch_dims))
    return View(t.storage_offset(), *strides, t.stride(length_dim))


@functools.lru_cache(maxsize=256)
def axis_plan(
    shape: tuple[int, int, int, int], heads: int, axes: tuple[Axis, ...], scale: float
) -> AttentionPlan:
    """Plan for qkv ``(B, T, J, G * 3 * heads * c)`` laid out ``(group, qkv, head, channel)``.

    Group ``g`` attends along ``axes[g]`` (over the joints of each frame or the frames of each
    joint); the output ``(B, T, J, G * heads * c)`` is laid out ``(group, head, channel)``.
    """
    b, t, j, width = shape
    groups = len(axes)
    c = width // (groups * 3 * heads)
    if c * groups * 3 * heads != width:
        raise ValueError(f"qkv width {width} is not {groups} x 3 x {heads} heads x channels")
    x = torch.empty(b, t, j, groups, 3, heads, c, device="meta")
    o = torch.empty(b, t, j, groups, heads, c, device="meta")
    jobs = []
    for g, axis in enumerate(axes):
        # (B, T, J, H, c) views; joints: batch (B, T, H), sequence J; frames: batch (B, J, H), sequence T
        batch, length = ((0, 1, 3), 2) if axis == "joints" else ((0, 2, 3), 1)
        q, k, v = (x[:, :, :, g, n] for n in range(3))
        views = [_view(z, length, batch) for z in (q, k, v, o[:, :, :, g])]
        n0, n1, n2 = (q.shape[d] for d in batch)
        plan = Plan(n0, n1, n2, q.shape[length], *views)
        jobs.append(_Job(plan, c, n0 * n1 * n2, q.shape[length]))
    return AttentionPlan((b, t, j, groups * heads * c), tuple(jobs), float(scale), heads, axes)


# ----------------------------------------------------------------------------- autograd


def _padded(length: int) -> int:
    """Row width of the stored probabilities: ``length`` rounded up to a multiple of 8."""
    return -(-length // 8) * 8


class _PlannedAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, plan: AttentionPlan) -> Tensor:  # type: ignore[override]
        lib = cpu_kernels.library()
        assert lib is not None
        out = x.new_empty(plan.out_shape)
        keep = ctx.needs_input_grad[0]
        probs = [x.new_empty(j.sequences, j.length, _padded(j.length)) if keep else None for j in plan.jobs]
        threads = torch.get_num_threads()
        for job, p in zip(plan.jobs, probs, strict=True):
            p_ptr = None if p is None else p.data_ptr()
            code = lib.attention_forward[job.head_dim](
                x.data_ptr(), out.data_ptr(), p_ptr, job.plan, plan.scale, threads
            )
            cpu_kernels.check(code, "attention")
        if keep:
            ctx.save_for_backward(x, *probs)
            ctx.plan = plan
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor | None, None]:  # type: ignore[override]
        x, *probs = ctx.saved_tensors
        plan: AttentionPlan = ctx.plan
        if torch.is_grad_enabled():  # create_graph=True: gradients with a graph, by PyTorch operators
            grad_x, _ = cpu_kernels.gradients_by_pytorch(
                lambda qkv, _: reference_attention(qkv, plan.heads, plan.axes, plan.scale),
                (x, plan),
                grad_out,
            )
            return grad_x, None
        lib = cpu_kernels.library()
        assert lib is not None
        grad_out = grad_out.contiguous()
        grad_x = torch.empty_like(x)  # the q, k, v views of the jobs cover every element once
        threads = torch.get_num_threads()
        for job, p in zip(plan.jobs, probs, strict=True):
            args = (x.data_ptr(), p.data_ptr(), grad_out.data_ptr(), grad_x.data_ptr())
            cpu_kernels.check(
                lib.attention_backward[job.head_dim](*args, job.plan, plan.scale, threads), "attention"
            )
        return grad_x, None


def reference_attention(qkv: Tensor, heads: int, axes: tuple[Axis, ...], scale: float) -> Tensor:
    """:func:`axis_attention` by PyTorch operators (matrix products and softmax)."""
    from pose2met.models.mixers import axis_attention as one_axis  # mixers import this module

    z = rearrange(qkv, "b t j (g n h c) -> g n b t j h c", g=len(axes), n=3, h=heads)
    outs = [one_axis(z[g, 0], z[g, 1], z[g, 2], axis, scale, "math") for g, axis in enumerate(axes)]
    return rearrange(torch.stack(outs, dim=3), "b t j g h c -> b t j (g h c)")


def usable(qkv: Tensor, head_dim: int, dropout_p: float = 0.0, longest: int = 0) -> bool:
    """Whether :func:`axis_attention` can run on ``qkv``: float32 on the CPU, a head width in
    :data:`HEAD_DIMS`, no attention dropout, not traced or compiled, and the kernels built.

    With gradients, sequences of ``longest >= SDPA_MIN_TOKENS_CPU_TRAIN`` tokens are left to PyTorch's
    fused SDPA: the kernel keeps every attention probability for the backward pass (``L^2`` floats per
    sequence, as plain matrix products do), which SDPA does not.
    """
    if torch.is_grad_enabled() and qkv.requires_grad and longest >= SDPA_MIN_TOKENS_CPU_TRAIN:
        return False
    return head_dim in HEAD_DIMS and dropout_p == 0.0 and cpu_kernels.available_for(qkv)


def axis_attention(qkv: Tensor, heads: int, axes: tuple[Axis, ...], scale: float) -> Tensor:
    """Multi-head attention of each channel group along its axis: ``(B, T, J, G*3*h*c) -> (B, T, J, G*h*c)``.

    ``qkv`` is laid out ``(group, qkv, head, channel)``; group ``g`` attends over the joints of each
    frame (``axes[g] == "joints"``) or the frames of each joint (``"frames"``) with logits scaled by
    ``scale``; the output is laid out ``(group, head, channel)``. Check :func:`usable` first.
    """
    qkv = qkv.contiguous()
    return _PlannedAttention.apply(qkv, axis_plan(tuple(qkv.shape), heads, axes, float(scale)))
