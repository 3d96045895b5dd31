"""Training-mode batch norm (optionally followed by GELU) on channel-last CPU tokens, in one C kernel.

With batch statistics, PyTorch's batch norm and a following GELU make three passes over
``(tokens, C)`` forward and three backward, with an intermediate tensor between them; the kernel of
:mod:`pose2met.models.cpu_kernels` makes two each way, merges per-block statistics in double
precision, and can skip a preceding linear layer's bias (``shift``): a batch norm with batch
statistics removes any per-channel constant, so the bias only moves the running mean, which is
updated here as PyTorch would. The result equals ``gelu(bn(x + shift))`` (GELU from an erf
approximation accurate to about 1e-7) and updates ``bn.running_mean``, ``bn.running_var`` and
``bn.num_batches_tracked`` as ``bn`` itself would.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from pose2met.models import cpu_kernels


class _BatchNormFunction(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx, x: Tensor, weight: Tensor, bias: Tensor, shift: Tensor | None, eps: float, gelu: bool
    ) -> tuple[Tensor, Tensor, Tensor]:
        lib = cpu_kernels.library()
        assert lib is not None
        n, c = x.shape
        y = torch.empty_like(x)
        mean, var, rstd = (x.new_empty(c) for _ in range(3))
        ptrs = (x.data_ptr(), y.data_ptr(), weight.contiguous().data_ptr(), bias.contiguous().data_ptr())
        threads = torch.get_num_threads()
        code = lib.batch_norm_forward(
            *ptrs, eps, n, c, gelu, mean.data_ptr(), var.data_ptr(), rstd.data_ptr(), threads
        )
        cpu_kernels.check(code, "batch norm")
        ctx.save_for_backward(x, weight, bias, shift, mean, rstd)
        ctx.gelu, ctx.eps = gelu, eps
        ctx.mark_non_differentiable(mean, var)
        return y, mean, var

    @staticmethod
    def backward(  # type: ignore[override]
        ctx, grad_y: Tensor, _grad_mean: Tensor | None, _grad_var: Tensor | None
    ) -> tuple[Tensor | None, ...]:
        x, weight, bias, shift, mean, rstd = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: gradients with a graph, by PyTorch operators
            inputs = (x, weight, bias, shift, ctx.eps, ctx.gelu)
            return cpu_kernels.gradients_by_pytorch(reference_batch_norm, inputs, grad_y)
        lib = cpu_kernels.library()
        assert lib is not None
        weight, bias = weight.contiguous(), bias.contiguous()
        n, c = x.shape
        grad_y = grad_y.contiguous()
        grad_x = torch.empty_like(x)
        grad_weight, grad_bias = x.new_empty(c), x.new_empty(c)
        grad_shift = x.new_empty(c) if ctx.needs_input_grad[3] else None
        code = lib.batch_norm_backward(
            x.data_ptr(), grad_y.data_ptr(), grad_x.data_ptr(), weight.data_ptr(), bias.data_ptr(),
            mean.data_ptr(), rstd.data_ptr(), n, c, ctx.gelu, grad_weight.data_ptr(), grad_bias.data_ptr(),
            None if grad_shift is None else grad_shift.data_ptr(), torch.get_num_threads(),
        )  # fmt: skip
        cpu_kernels.check(code, "batch norm")
        return grad_x, grad_weight, grad_bias, grad_shift, None, None


def reference_batch_norm(
    x: Tensor, weight: Tensor, bias: Tensor, shift: Tensor | None, eps: float, gelu: bool
) -> Tensor:
    """``gelu(batch_norm(x + shift))`` with batch statistics by PyTorch operators (no running statistics)."""
    y = F.batch_norm(x if shift is None else x + shift, None, None, weight, bias, training=True, eps=eps)
    return F.gelu(y) if gelu else y


def usable(x: Tensor, bn: _BatchNorm) -> bool:
    """Whether :func:`batch_norm` applies: ``bn`` in training mode with affine parameters, float32 CPU
    tokens ``(..., C)`` with C a multiple of 8 and more than one token, kernels built."""
    return (
        bn.training
        and bn.affine
        and x.shape[-1] == bn.num_features
        and bn.num_features % 8 == 0
        and x.numel() > bn.num_features
        and bn.weight.dtype == torch.float32
        and cpu_kernels.available_for(x)
    )


def batch_norm(x: Tensor, bn: _BatchNorm, gelu: bool = False, shift: Tensor | None = None) -> Tensor:
    """``gelu(bn(x + shift))`` (without ``gelu`` if False) for tokens ``x (..., C)`` in training mode,
    updating ``bn``'s running statistics; ``shift (C,)`` gets its gradient. Check :func:`usable` first."""
    flat = x.reshape(-1, x.shape[-1]).contiguous()
    factor = _update_factor(bn)
    y, mean, var = _BatchNormFunction.apply(flat, bn.weight, bn.bias, shift, bn.eps, gelu)
    if factor is not None and bn.running_mean is not None and bn.running_var is not None:
        n = flat.shape[0]
        with torch.no_grad():
            if shift is not None:
                mean = mean + shift.detach()
            bn.running_mean.mul_(1.0 - factor).add_(mean, alpha=factor)
            bn.running_var.mul_(1.0 - factor).add_(var, alpha=factor * n / (n - 1))
    return y.view(x.shape)


def _update_factor(bn: _BatchNorm) -> float | None:
    """Count the batch and return the running statistics' update factor (``None``: not tracked)."""
    if not bn.track_running_stats or bn.num_batches_tracked is None:
        return None
    bn.num_batches_tracked.add_(1)
    return 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else float(bn.momentum)
