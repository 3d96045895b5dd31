"""The windows of a STAP aggregation with stride equal to its kernel, on the CPU in one pass.

The aggregation convolution of :class:`pose2met.models.stap.STAPAttention` is one matrix product
over flattened, non-overlapping windows; in PyTorch operators the windows take a zero-padded copy of
the tokens and a reshaping copy (and as many passes backward). The kernel of
:mod:`pose2met.models.cpu_kernels` gathers them in one pass, padding implicit.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

from pose2met.models import cpu_kernels


class _Windows(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx, x: Tensor, kernel: tuple[int, int], padding: tuple[int, int], grid: tuple[int, int]
    ) -> Tensor:
        lib = cpu_kernels.library()
        assert lib is not None
        b, t, j, c = x.shape
        windows = x.new_empty(b, *grid, kernel[0] * kernel[1] * c)
        dims = (b, t, j, c, *kernel, *padding, *grid)
        cpu_kernels.check(
            lib.windows_forward(x.data_ptr(), windows.data_ptr(), *dims, torch.get_num_threads()), "windows"
        )
        ctx.dims, ctx.args = dims, (kernel, padding, grid)
        return windows

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, None, None, None]:  # type: ignore[override]
        if torch.is_grad_enabled():  # create_graph=True: gradients with a graph, by PyTorch operators
            # the windows are linear in x: the vector-Jacobian product at x = 0 is the one at any x
            zero = torch.zeros(ctx.dims[:4], dtype=grad.dtype, requires_grad=True)
            (grad_x, *_) = cpu_kernels.gradients_by_pytorch(reference_windows, (zero, *ctx.args), grad)
            return grad_x, None, None, None
        lib = cpu_kernels.library()
        assert lib is not None
        grad = grad.contiguous()
        grad_x = grad.new_empty(ctx.dims[:4])
        code = lib.windows_backward(grad.data_ptr(), grad_x.data_ptr(), *ctx.dims, torch.get_num_threads())
        cpu_kernels.check(code, "windows")
        return grad_x, None, None, None


def reference_windows(
    x: Tensor, kernel: tuple[int, int], padding: tuple[int, int], grid: tuple[int, int]
) -> Tensor:
    """:func:`windows` by PyTorch operators: a zero-padded copy cropped to the frames and joints the
    windows cover, regrouped."""
    (kt, kj), (pt, pj), (gt, gj) = kernel, padding, grid
    t, j = x.shape[1:3]
    x = F.pad(x, (0, 0, pj, max(0, gj * kj - pj - j), pt, max(0, gt * kt - pt - t)))
    return rearrange(x[:, : gt * kt, : gj * kj], "b (gt kt) (gj kj) c -> b gt gj (kt kj c)", kt=kt, kj=kj)


def usable(x: Tensor) -> bool:
    """Whether :func:`windows` can run on ``x``: float32 tokens on the CPU, kernels built."""
    return x.dim() == 4 and cpu_kernels.available_for(x)


def windows(x: Tensor, kernel: tuple[int, int], padding: tuple[int, int], grid: tuple[int, int]) -> Tensor:
    """``(B, T, J, C) -> (B, T', J', k_t k_j C)``: window ``(g_t, g_j)`` holds the tokens of frames
    ``g_t k_t - p_t + a`` and joints ``g_j k_j - p_j + b`` (``a < k_t``, ``b < k_j``; zero outside the
    clip), flattened as ``(a, b, channel)``. Check :func:`usable` first."""
    return _Windows.apply(x.contiguous(), tuple(kernel), tuple(padding), tuple(grid))
