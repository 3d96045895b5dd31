"""Small building blocks on channel-last tokens ``(..., C)``: batch norm, MLP, stochastic depth.

STAPFormer keeps its features as ``(B, T, J, C)`` everywhere, so 1x1 convolutions are
``nn.Linear`` and ``BatchNorm2d`` over ``(B, C, T, J)`` is :class:`TokenBatchNorm` (the same
statistics: per channel over batch, frames and joints). Eval-mode batch norms can be folded
into the neighbouring linear layer (:func:`fold_bn_after`, :func:`fold_bn_before`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn
from torch.nn.modules import module as module_globals
from torch.nn.utils import parametrize

from pose2met.models import cpu_batchnorm, cpu_kernels
from pose2met.models.tracing import tracing


class TokenBatchNorm(nn.BatchNorm1d):
    """Batch norm of channel-last tokens ``(..., C) -> (..., C)``.

    Equivalent to ``BatchNorm2d(C)`` applied to the ``(B, C, T, J)`` view of ``(B, T, J, C)``;
    same parameters and buffers (``weight, bias, running_mean, running_var, num_batches_tracked``).
    """

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(
                f"TokenBatchNorm expects (..., {self.num_features}) tokens, got {tuple(input.shape)}"
            )

    def forward(self, x: Tensor) -> Tensor:
        if cpu_batchnorm.usable(x, self):  # training on the CPU: the fused kernel
            return cpu_batchnorm.batch_norm(x, self)
        if x.dim() == 4:  # (B, T, J, C) as a channels-last (B, C, T, J) view: the fastest CPU kernel
            return super().forward(rearrange(x, "b t j c -> b c t j")).permute(0, 2, 3, 1)
        return super().forward(x.reshape(-1, x.shape[-1])).view(x.shape)

    def after_linear(self, x: Tensor, linear: nn.Linear, gelu: bool = False) -> Tensor:
        """``self(linear(x))``, then GELU if ``gelu``, skipping the bias addition when batch statistics
        normalize.

        A batch norm with batch statistics removes any per-channel constant, so ``linear``'s bias
        changes only the running mean: the product is normalized without it (one pass less over the
        ``(tokens, C)`` output, forward and backward), the running mean gets the bias added with the
        update's own factor, and the bias still receives its gradient (the sum of the batch norm's
        input gradient, as through the addition).
        """
        if (
            linear.bias is None
            or not self.training
            or self.running_mean is None
            or not cpu_kernels.enabled()
            or tracing()
            or not runs_plain(linear, nn.Linear)
            or not runs_plain(self)
        ):
            y = self(linear(x))
            return F.gelu(y) if gelu else y
        h = F.linear(x, linear.weight)
        if cpu_batchnorm.usable(h, self):
            return cpu_batchnorm.batch_norm(h, self, gelu=gelu, shift=linear.bias)
        y = self(_BiasGradient.apply(h, linear.bias))
        # the same factor as the update just made (num_batches_tracked already counts this batch); through
        # .data: autograd keeps the running mean as an input of the batch norm, though its backward with
        # batch statistics never reads it
        factor = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
        self.running_mean.data.add_(linear.bias.detach().to(self.running_mean.dtype), alpha=factor)
        return F.gelu(y) if gelu else y


class _BiasGradient(torch.autograd.Function):
    """Identity on ``x (..., C)`` that gives ``bias (C,)`` the gradient of ``x + bias``."""

    @staticmethod
    def forward(ctx, x: Tensor, bias: Tensor) -> Tensor:  # type: ignore[override]
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        return grad, grad.reshape(-1, grad.shape[-1]).sum(0)


def bn_affine(bn: nn.BatchNorm1d | nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
    """Eval-mode batch norm as ``y = x * scale + shift``; returns ``(scale, shift)``, each ``(C,)``."""
    if bn.running_var is None or bn.running_mean is None:
        raise ValueError("cannot fold a batch norm without running statistics (track_running_stats=False)")
    scale = torch.rsqrt(bn.running_var.double() + bn.eps)
    shift = -bn.running_mean.double() * scale
    if bn.affine:
        scale = scale * bn.weight.double()
        shift = shift * bn.weight.double() + bn.bias.double()
    return scale, shift


@torch.no_grad()
def fold_bn_after(layer: nn.Linear | nn.Conv2d, bn: nn.BatchNorm1d | nn.BatchNorm2d) -> None:
    """Fold ``bn(layer(x))`` into ``layer`` in place (exact, computed in float64)."""
    scale, shift = bn_affine(bn)
    weight = layer.weight.double()
    weight = weight * scale.view(-1, *([1] * (weight.dim() - 1)))
    bias = shift if layer.bias is None else layer.bias.double() * scale + shift
    layer.weight.copy_(weight.to(layer.weight.dtype))
    if layer.bias is None:
        layer.bias = nn.Parameter(bias.to(layer.weight.dtype))
    else:
        layer.bias.copy_(bias.to(layer.bias.dtype))


@torch.no_grad()
def fold_bn_before(layer: nn.Linear, bn: nn.BatchNorm1d | nn.BatchNorm2d) -> None:
    """Fold ``layer(bn(x))`` into ``layer`` in place (exact for a linear layer; not for padded convs)."""
    scale, shift = bn_affine(bn)
    weight = layer.weight.double()
    bias = weight @ shift
    if layer.bias is not None:
        bias = bias + layer.bias.double()
    layer.weight.copy_((weight * scale[None, :]).to(layer.weight.dtype))
    if layer.bias is None:
        layer.bias = nn.Parameter(bias.to(layer.weight.dtype))
    else:
        layer.bias.copy_(bias.to(layer.bias.dtype))


def restore_exact_buffer(
    module: nn.Module, name: str, dtype_before: torch.dtype, exact: Callable[[torch.dtype], Tensor]
) -> None:
    """Call at the end of ``module._apply``: a buffer derived from the module's settings (not learned)
    whose dtype a cast changed is rebuilt from ``exact(dtype)`` (computed on the CPU, then moved)
    instead of keeping the cast's rounding, and never narrower than float32, where bf16 would merge
    neighbouring values. ``model.bfloat16().float()`` thus leaves it exact."""
    moved = getattr(module, name)
    if moved.dtype == dtype_before or not moved.is_floating_point():
        return
    dtype = moved.dtype if torch.finfo(moved.dtype).bits >= 32 else torch.float32
    setattr(module, name, exact(dtype).to(moved.device))


#: Tokens per piece in :func:`chunked_tokens` (a ``1024 x 512`` float32 hidden layer is 2 MiB).
INFERENCE_CHUNK = 1024


def use_chunks(module: nn.Module) -> bool:
    """Whether to run ``module`` piecewise: only in eval mode without autograd (inference)."""
    return not module.training and not torch.is_grad_enabled()


def chunked_tokens(
    fn: Callable[[Tensor], Tensor], x: Tensor, dim_out: int, chunk: int = INFERENCE_CHUNK
) -> Tensor:
    """Apply a token-wise ``fn`` to ``x (..., C)`` in pieces of ``chunk`` tokens -> ``(..., dim_out)``.

    Same result as ``fn(x)``; keeps wide intermediates (the MLP hidden layer) small and hot in cache
    instead of allocating (and page-faulting) many-MiB temporaries, which dominates CPU inference.
    """
    flat = x.reshape(-1, x.shape[-1])
    if flat.shape[0] <= chunk:
        return fn(x)
    first = fn(flat[:chunk])
    out = first.new_empty(flat.shape[0], dim_out)  # the dtype fn gives (bf16 under autocast)
    out[:chunk] = first
    for start in range(chunk, flat.shape[0], chunk):
        out[start : start + chunk] = fn(flat[start : start + chunk])
    return out.view(*x.shape[:-1], dim_out)


def runs_plain(module: nn.Module, cls: type[nn.Module] | None = None) -> bool:
    """Whether calling ``module`` would only run its own ``forward`` (so that a fused path may read its
    parameters directly): no forward hooks, global or its own, no parametrization (``weight_norm``,
    ``spectral_norm`` and the like hook or parametrize), and exactly class ``cls`` if given (a
    subclass, e.g. an adapter, may compute something else)."""
    if cls is not None and type(module) is not cls:
        return False
    hooks = (module._forward_hooks, module._forward_pre_hooks)
    global_hooks = (
        getattr(module_globals, "_global_forward_hooks", {}),
        getattr(module_globals, "_global_forward_pre_hooks", {}),
    )
    return not any(hooks) and not any(global_hooks) and not parametrize.is_parametrized(module)


class _LinearTanh(torch.autograd.Function):
    """``tanh(x W^T + b)`` with ``tanh(z) = 2 sigmoid(2 z) - 1`` computed in place on the product
    (no separate bias copy or activation buffer); the backward reads the output (``g (1 - y^2)``)."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:  # type: ignore[override]
        y = x.reshape(-1, x.shape[-1]) @ weight.t()
        if bias is None:
            y.mul_(2.0)
        else:
            torch.add(bias * 2.0, y, alpha=2.0, out=y)  # 2 (z + b) in one pass
        torch.sigmoid_(y)
        torch.add(y.new_full((), -1.0), y, alpha=2.0, out=y)
        ctx.save_for_backward(x, weight, bias, y)
        return y.view(*x.shape[:-1], weight.shape[0])

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        x, weight, bias, y = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: gradients with a graph, by PyTorch operators
            return cpu_kernels.gradients_by_pytorch(
                lambda x, w, b: torch.tanh(F.linear(x, w, b)), (x, weight, bias), grad
            )
        flat = x.reshape(-1, x.shape[-1])
        grad_z = torch.ops.aten.tanh_backward(grad.reshape(y.shape), y)
        grad_x = (grad_z @ weight).view(x.shape) if ctx.needs_input_grad[0] else None
        grad_w = grad_z.t() @ flat if ctx.needs_input_grad[1] else None
        grad_b = grad_z.sum(0) if bias is not None and ctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_b


def linear_tanh(x: Tensor, linear: nn.Linear) -> Tensor:
    """``tanh(linear(x))``: on the CPU in float32 fused and through the sigmoid, about twice as fast as
    ``torch.tanh`` there (absolute error below 2e-7); elsewhere the plain operators."""
    if (
        cpu_kernels.fast_path(x)
        and linear.weight.dtype == torch.float32
        and not torch.is_autocast_enabled("cpu")
        and runs_plain(linear, nn.Linear)
    ):
        return _LinearTanh.apply(x, linear.weight, linear.bias)
    return torch.tanh(linear(x))


class DropPath(nn.Module):
    """Stochastic depth: zero a whole residual branch per sample with probability ``p`` (training)."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop_path probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


def _normalize_linear(norm: nn.Module, linear: nn.Linear, x: Tensor, gelu: bool = False) -> Tensor:
    """``norm(linear(x))``, then GELU if ``gelu`` (via :meth:`TokenBatchNorm.after_linear` when ``norm``
    is one)."""
    if isinstance(norm, TokenBatchNorm):
        return norm.after_linear(x, linear, gelu)
    y = norm(linear(x))
    return F.gelu(y) if gelu else y


class FeedForward(nn.Module):
    """The STAPFormer MLP on tokens: ``Linear -> BN -> GELU -> Linear -> BN`` (``(..., C) -> (..., C)``).

    The official code writes it with 1x1 convolutions on ``(B, C, T, J)``; the math is the same.
    """

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.norm1: nn.Module = TokenBatchNorm(hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.norm2: nn.Module = TokenBatchNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        if use_chunks(self):
            return chunked_tokens(self._forward, x, self.fc2.out_features)
        return self._forward(x)

    def _forward(self, x: Tensor) -> Tensor:
        x = self.drop(_normalize_linear(self.norm1, self.fc1, x, gelu=True))
        return self.drop(_normalize_linear(self.norm2, self.fc2, x))

    def fuse_(self) -> None:
        """Fold both eval-mode batch norms into the linear layers (in place)."""
        if isinstance(self.norm1, nn.BatchNorm1d):
            fold_bn_after(self.fc1, self.norm1)
            self.norm1 = nn.Identity()
        if isinstance(self.norm2, nn.BatchNorm1d):
            fold_bn_after(self.fc2, self.norm2)
            self.norm2 = nn.Identity()
