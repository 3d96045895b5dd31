"""The STAP-Branch: attention over aggregated spatio-temporal tokens."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from pose2met.models import cpu_attention, cpu_batchnorm, cpu_windows
from pose2met.models.attention import AttentionImpl, attend, check_attention_impl
from pose2met.models.layers import fold_bn_after, runs_plain


def _pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(int(v) for v in value)
    if len(pair) != 2 or min(pair) < 1:
        raise ValueError(f"{name} must be a positive int or a pair (frames, joints), got {value!r}")
    return pair  # type: ignore[return-value]


class STAPAttention(nn.Module):
    """STAP-Branch: ``(B, T, J, C) -> (B, T, J, C)``.

    ``Conv2d(C -> 3 C_c, kernel, stride, padding=kernel // 2)`` over ``(B, C, T, J)``, then BN and
    GELU, aggregates neighbouring frames and joints into a ``(T', J')`` grid of STAP tokens. Its
    channels are ``[q | k | v]``, each ``(head, channel)``; multi-head attention (scale
    ``(C_c / h) ** -0.5``) runs over all ``T' J'`` tokens. The result is projected
    ``Linear(C_c -> C)`` and upsampled to ``(T, J)`` by bilinear interpolation
    (``align_corners=False``). The official code interpolates first and projects after; both orders
    give the same result (interpolation weights sum to one), projecting first is ``T J / T' J'``
    times cheaper.
    """

    def __init__(
        self,
        dim: int,
        dim_compress: int | None = None,
        kernel: int | Sequence[int] = (3, 3),
        stride: int | Sequence[int] = (3, 3),
        num_heads: int = 8,
        attn_dropout: float = 0.0,
        dropout: float = 0.0,
        attention_impl: AttentionImpl = "auto",
    ) -> None:
        super().__init__()
        dim_compress = dim_compress or dim
        if dim_compress % num_heads:
            raise ValueError(
                f"STAP: dim_compress ({dim_compress}) must be divisible by num_heads ({num_heads})"
            )
        kernel = _pair(kernel, "stap_kernel")
        stride = _pair(stride, "stap_stride")
        self.num_heads = num_heads
        self.head_dim = dim_compress // num_heads
        self.scale = (dim_compress / num_heads) ** -0.5
        self.attn_dropout = attn_dropout
        self.attention_impl = check_attention_impl(attention_impl)
        padding = (kernel[0] // 2, kernel[1] // 2)
        self.qkv = nn.Conv2d(dim, 3 * dim_compress, kernel, stride, padding, bias=False)
        self.qkv_norm: nn.Module = nn.BatchNorm2d(3 * dim_compress)
        self.proj = nn.Linear(dim_compress, dim)
        self.proj_drop = nn.Dropout(dropout)

    def aggregate(self, x: Tensor) -> Tensor:
        """STAP tokens before BN: ``(B, T, J, C) -> (B, T', J', 3 C_c)`` (channel-last).

        With ``kernel == stride`` (the default) the windows do not overlap and the convolution is
        one matrix product over flattened windows, faster than the generic convolution on CPU.
        """
        conv = self.qkv
        if conv.kernel_size != conv.stride:
            return rearrange(conv(rearrange(x, "b t j c -> b c t j")), "b c gt gj -> b gt gj c")
        (kt, kj), (pt, pj) = conv.kernel_size, conv.padding
        t, j = x.shape[1:3]
        grid_t, grid_j = (t + 2 * pt - kt) // kt + 1, (j + 2 * pj - kj) // kj + 1
        gather = cpu_windows.windows if cpu_windows.usable(x) else cpu_windows.reference_windows
        windows = gather(x, (kt, kj), (pt, pj), (grid_t, grid_j))  # zero padding as the convolution's
        return F.linear(windows, rearrange(conv.weight, "o c kt kj -> o (kt kj c)"), conv.bias)

    def forward(self, x: Tensor) -> Tensor:
        _, t, j, _ = x.shape
        tokens = self.aggregate(x)
        if self.training and isinstance(self.qkv_norm, nn.BatchNorm2d) and tokens[:, :, :, 0].numel() == 1:
            raise ValueError(
                f"STAP: training needs more than one STAP token per batch for its batch norm, but a batch "
                f"of {x.shape[0]} with {t} frames x {j} joints gives a 1x1 token grid (kernel "
                f"{tuple(self.qkv.kernel_size)}, stride {tuple(self.qkv.stride)}); use batches of 2 or more "
                "clips (a last partial batch counts: pick a batch size that leaves no single clip over)"
            )
        norm = self.qkv_norm
        if isinstance(norm, nn.BatchNorm2d) and runs_plain(norm) and cpu_batchnorm.usable(tokens, norm):
            tokens = cpu_batchnorm.batch_norm(tokens, norm, gelu=True)
        else:
            tokens = rearrange(
                F.gelu(norm(rearrange(tokens, "b gt gj c -> b c gt gj"))), "b c gt gj -> b gt gj c"
            )
        grid_t, grid_j = tokens.shape[1:3]
        p = self.attn_dropout if self.training else 0.0
        if self.attention_impl == "auto" and cpu_attention.usable(tokens, self.head_dim, p, grid_t * grid_j):
            # all T' J' tokens as one sequence: the "joints" of a single frame
            flat = rearrange(tokens, "b gt gj c -> b 1 (gt gj) c")
            out = cpu_attention.axis_attention(flat, self.num_heads, ("joints",), self.scale)
            out = rearrange(out, "b 1 (gt gj) c -> b gt gj c", gt=grid_t)
        else:
            q, k, v = rearrange(tokens, "b gt gj (n h c) -> n b h (gt gj) c", n=3, h=self.num_heads).unbind(0)
            out = attend(q, k, v, self.scale, self.attention_impl, p)
            out = rearrange(out, "b h (gt gj) c -> b gt gj (h c)", gt=grid_t, gj=grid_j)
        out = self.proj(out)
        out = F.interpolate(
            rearrange(out, "b gt gj c -> b c gt gj"), size=(t, j), mode="bilinear", align_corners=False
        )
        return self.proj_drop(rearrange(out, "b c t j -> b t j c"))

    def fuse_(self) -> None:
        """Fold the eval-mode batch norm after the aggregation convolution into it (in place)."""
        if isinstance(self.qkv_norm, nn.BatchNorm2d):
            fold_bn_after(self.qkv, self.qkv_norm)
            self.qkv_norm = nn.Identity()
