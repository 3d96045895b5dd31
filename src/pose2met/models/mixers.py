"""Joint-Branch mixers of a STAP block, on channel-last tokens ``(B, T, J, C) -> (B, T, J, C)``.

* :class:`STCAttention` (``"stc"``, default): half of the channels attend over joints, half over frames.
* :class:`MixSTEMixer` (``"mixste"``): spatial multi-head attention, then temporal, in sequence.
* :class:`STConvMixer` (``"stconv"``): parallel ``(1, k)`` joint and ``(k, 1)`` frame convolutions.
* :class:`SkeletonGCN`: graph convolution over the skeleton, added to the Joint-Branch output.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from pose2met import skeleton
from pose2met.models import cpu_attention
from pose2met.models.attention import AttentionImpl, attend, check_attention_impl
from pose2met.models.layers import fold_bn_after, restore_exact_buffer

Axis = Literal["joints", "frames"]


def axis_attention(
    q: Tensor, k: Tensor, v: Tensor, axis: Axis, scale: float, impl: AttentionImpl, dropout_p: float = 0.0
) -> Tensor:
    """Multi-head attention along one axis of ``(B, T, J, h, c)`` tensors; returns ``(B, T, J, h, c)``.

    ``axis="joints"``: the J joints of each frame attend to each other; ``"frames"``: the T frames of
    each joint attend to each other.
    """
    b = q.shape[0]
    if axis == "joints":
        q, k, v = (rearrange(z, "b t j h c -> (b t) h j c") for z in (q, k, v))
        return rearrange(attend(q, k, v, scale, impl, dropout_p), "(b t) h j c -> b t j h c", b=b)
    q, k, v = (rearrange(z, "b t j h c -> (b j) h t c") for z in (q, k, v))
    return rearrange(attend(q, k, v, scale, impl, dropout_p), "(b j) h t c -> b t j h c", b=b)


class STCAttention(nn.Module):
    """Spatio-temporal criss-cross attention (the STAPFormer Joint-Branch).

    One bias-free ``Linear(C -> 3C)`` gives q, k, v, laid out ``(half, qkv, head, channel)``. The first
    half of the channels attends over the joints of each frame, the second half over the frames of
    each joint, each with ``num_heads`` heads of width ``C / (2 h)``; the outputs are concatenated
    as ``(half, head, channel)`` and projected by ``Linear(C -> C)``. The logit scale is
    ``(C / h) ** -0.5`` as in the official code (not the per-head width ``C / 2h``). With
    ``attention_impl="auto"`` on the CPU both halves run in the fused kernel of
    :mod:`pose2met.models.cpu_attention` when it is available.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        attn_dropout: float = 0.0,
        dropout: float = 0.0,
        attention_impl: AttentionImpl = "auto",
    ) -> None:
        super().__init__()
        if dim % (2 * num_heads):
            raise ValueError(
                f"STC attention: dim_feat ({dim}) must be divisible by 2 * num_heads ({2 * num_heads})"
            )
        self.num_heads = num_heads
        self.head_dim = dim // (2 * num_heads)
        self.scale = (dim / num_heads) ** -0.5
        self.attn_dropout = attn_dropout
        self.attention_impl = check_attention_impl(attention_impl)
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        qkv = self.qkv(x)
        p = self.attn_dropout if self.training else 0.0
        longest = max(qkv.shape[1], qkv.shape[2])
        if self.attention_impl == "auto" and cpu_attention.usable(qkv, self.head_dim, p, longest):
            out = cpu_attention.axis_attention(qkv, self.num_heads, ("joints", "frames"), self.scale)
            return self.proj_drop(self.proj(out))
        # one unbind, not indexing: its backward is one stack, not a zero-filled full-size tensor per slice
        qs, ks, vs, qt, kt, vt = rearrange(
            qkv, "b t j (s n h c) -> (s n) b t j h c", n=3, s=2, h=self.num_heads
        ).unbind(0)
        spatial = axis_attention(qs, ks, vs, "joints", self.scale, self.attention_impl, p)
        temporal = axis_attention(qt, kt, vt, "frames", self.scale, self.attention_impl, p)
        out = rearrange(torch.stack([spatial, temporal], dim=3), "b t j s h c -> b t j (s h c)")
        return self.proj_drop(self.proj(out))


class AxisAttention(nn.Module):
    """Standard multi-head self-attention along one axis of ``(B, T, J, C)`` (scale ``(C / h) ** -0.5``)."""

    def __init__(
        self,
        dim: int,
        axis: Axis,
        num_heads: int = 8,
        attn_dropout: float = 0.0,
        dropout: float = 0.0,
        attention_impl: AttentionImpl = "auto",
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"attention: dim_feat ({dim}) must be divisible by num_heads ({num_heads})")
        self.axis: Axis = axis
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = (dim / num_heads) ** -0.5
        self.attn_dropout = attn_dropout
        self.attention_impl = check_attention_impl(attention_impl)
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        qkv = self.qkv(x)
        p = self.attn_dropout if self.training else 0.0
        length = qkv.shape[2] if self.axis == "joints" else qkv.shape[1]
        if self.attention_impl == "auto" and cpu_attention.usable(qkv, self.head_dim, p, length):
            out = cpu_attention.axis_attention(qkv, self.num_heads, (self.axis,), self.scale)
            return self.proj_drop(self.proj(out))
        q, k, v = rearrange(qkv, "b t j (n h c) -> n b t j h c", n=3, h=self.num_heads).unbind(0)
        out = axis_attention(q, k, v, self.axis, self.scale, self.attention_impl, p)
        return self.proj_drop(self.proj(rearrange(out, "b t j h c -> b t j (h c)")))


class MixSTEMixer(nn.Module):
    """MixSTE-style mixer: spatial attention over joints, then temporal attention over frames."""

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        attn_dropout: float = 0.0,
        dropout: float = 0.0,
        attention_impl: AttentionImpl = "auto",
    ) -> None:
        super().__init__()
        self.spatial = AxisAttention(dim, "joints", num_heads, attn_dropout, dropout, attention_impl)
        self.temporal = AxisAttention(dim, "frames", num_heads, attn_dropout, dropout, attention_impl)

    def forward(self, x: Tensor) -> Tensor:
        return self.temporal(self.spatial(x))


class _ConvBranch(nn.Module):
    """``Conv2d`` over ``(B, C, T, J)`` with "same" padding, then BN and GELU; tokens in and out."""

    def __init__(self, dim: int, kernel: tuple[int, int]) -> None:
        super().__init__()
        self.conv = nn.Conv2d(dim, dim, kernel, padding=(kernel[0] // 2, kernel[1] // 2))
        self.norm: nn.Module = nn.BatchNorm2d(dim)

    def forward(self, x: Tensor) -> Tensor:
        y = self.norm(self.conv(rearrange(x, "b t j c -> b c t j")))
        return F.gelu(rearrange(y, "b c t j -> b t j c"))

    def fuse_(self) -> None:
        if isinstance(self.norm, nn.BatchNorm2d):
            fold_bn_after(self.conv, self.norm)
            self.norm = nn.Identity()


class STConvMixer(nn.Module):
    """Convolutional Joint-Branch: ``Linear(C -> 2C)``, then half the channels go through a ``(1, k)``
    convolution over joints and half through a ``(k, 1)`` convolution over frames (each with BN and
    GELU), concatenated and projected by ``Linear(2C -> C)``."""

    def __init__(self, dim: int, kernel_size: int = 3) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"stconv_kernel must be a positive odd integer, got {kernel_size}")
        self.expand = nn.Linear(dim, 2 * dim)
        self.spatial = _ConvBranch(dim, (1, kernel_size))
        self.temporal = _ConvBranch(dim, (kernel_size, 1))
        self.shrink = nn.Linear(2 * dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        xs, xt = self.expand(x).chunk(2, dim=-1)
        return self.shrink(torch.cat([self.spatial(xs), self.temporal(xt)], dim=-1))

    def fuse_(self) -> None:
        self.spatial.fuse_()
        self.temporal.fuse_()


class SkeletonGCN(nn.Module):
    """Graph convolution over the joints of each frame: ``A_hat @ (X W) + b``, ``(B, T, J, C) -> same``.

    ``A_hat = D^-1/2 (A + I) D^-1/2`` is the symmetrically normalized h36m17 skeleton adjacency
    (:func:`pose2met.skeleton.normalized_adjacency`), a non-persistent buffer that follows the
    module's device and, from float32 up, its dtype (:func:`restore_exact_buffer`).
    """

    def __init__(self, dim: int, num_joints: int = skeleton.NUM_JOINTS) -> None:
        super().__init__()
        if num_joints != skeleton.NUM_JOINTS:
            raise ValueError(
                f"joint_gcn uses the h36m17 skeleton ({skeleton.NUM_JOINTS} joints), "
                f"but num_joints={num_joints}; set joint_gcn=False for other joint counts"
            )
        self.linear = nn.Linear(dim, dim)
        self.register_buffer("adjacency", self._exact_adjacency(torch.get_default_dtype()), persistent=False)

    @staticmethod
    def _exact_adjacency(dtype: torch.dtype) -> Tensor:
        return torch.as_tensor(skeleton.normalized_adjacency(), dtype=dtype)

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> SkeletonGCN:
        dtype_before = self.adjacency.dtype
        super()._apply(fn, recurse)
        restore_exact_buffer(self, "adjacency", dtype_before, self._exact_adjacency)
        return self

    def forward(self, x: Tensor) -> Tensor:
        h = F.linear(x, self.linear.weight)
        return torch.matmul(self.adjacency.to(h.dtype), h) + self.linear.bias
