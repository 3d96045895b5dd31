"""Skeleton GCN, attention kernels and batch-norm folding against NumPy references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pose2met import skeleton
from pose2met.models import SkeletonGCN, TokenBatchNorm, attend
from pose2met.models.attention import SDPA_MAX_BATCH_CUDA, fused_attention, resolve_impl, sdpa_batch_limit
from pose2met.models.layers import fold_bn_after, fold_bn_before


def _np_normalized_adjacency(parents: tuple[int, ...]) -> np.ndarray:
    n = len(parents)
    a = np.eye(n)
    for child, parent in enumerate(parents):
        if parent >= 0:
            a[child, parent] = a[parent, child] = 1.0
    d = a.sum(1)
    return np.diag(d**-0.5) @ a @ np.diag(d**-0.5)


def test_gcn_adjacency_is_symmetric_normalized() -> None:
    gcn = SkeletonGCN(8)
    expected = _np_normalized_adjacency(skeleton.PARENTS)
    np.testing.assert_allclose(gcn.adjacency.numpy(), expected, atol=1e-7)
    np.testing.assert_allclose(gcn.adjacency.numpy(), gcn.adjacency.numpy().T)
    assert "adjacency" not in gcn.state_dict()  # derived from the skeleton, not stored
    # the pelvis has 3 neighbours + itself, the right hip 2 + itself
    assert gcn.adjacency[0, 1].item() == pytest.approx(1 / np.sqrt(4 * 3))


def test_gcn_adjacency_survives_dtype_round_trips() -> None:
    """``bfloat16().float()`` must not leave the adjacency rounded to bf16; ``double()`` gives it exactly."""
    expected = _np_normalized_adjacency(skeleton.PARENTS)
    gcn = SkeletonGCN(8).bfloat16()
    assert gcn.linear.weight.dtype == torch.bfloat16 and gcn.adjacency.dtype == torch.float32  # >= float32
    np.testing.assert_allclose(gcn.adjacency.numpy(), expected, atol=1e-7)
    gcn = gcn.float()
    assert gcn.adjacency.dtype == torch.float32
    np.testing.assert_allclose(gcn.adjacency.numpy(), expected, atol=1e-7)
    np.testing.assert_allclose(gcn.double().adjacency.numpy(), expected, atol=1e-15)
    gcn.share_memory()  # not a cast: the buffer is moved like the weights, not rebuilt
    assert gcn.adjacency.is_shared() and gcn.linear.weight.is_shared()


def test_gcn_output_matches_numpy() -> None:
    gcn = SkeletonGCN(6)
    x = torch.randn(2, 3, 17, 6, dtype=torch.float64)
    gcn = gcn.double()
    w, b = gcn.linear.weight.detach().numpy(), gcn.linear.bias.detach().numpy()
    a = _np_normalized_adjacency(skeleton.PARENTS)
    expected = np.einsum("ij,btjc,oc->btio", a, x.numpy(), w) + b
    np.testing.assert_allclose(gcn(x).detach().numpy(), expected, atol=1e-12)


def _np_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, scale: float) -> np.ndarray:
    logits = q @ np.swapaxes(k, -1, -2) * scale
    w = np.exp(logits - logits.max(-1, keepdims=True))
    return (w / w.sum(-1, keepdims=True)) @ v


@pytest.mark.parametrize("impl", ["math", "sdpa", "auto"])
@pytest.mark.parametrize("n", [5, 40])
def test_attend_matches_numpy(impl: str, n: int) -> None:
    q, k, v = (torch.randn(2, 3, n, 4, dtype=torch.float64) for _ in range(3))
    got = attend(q, k, v, 0.3, impl)  # type: ignore[arg-type]
    np.testing.assert_allclose(got.numpy(), _np_attention(q.numpy(), k.numpy(), v.numpy(), 0.3), atol=1e-12)


def test_auto_attention_rule() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_impl("auto", 17, cpu) == "math"
    assert resolve_impl("auto", 243, cpu) == "sdpa"
    assert resolve_impl("auto", 54, cpu, needs_grad=True) == "math"
    assert resolve_impl("auto", 17, cuda) == "sdpa"
    assert resolve_impl("math", 243, cuda) == "math"


def test_fused_attention_in_batch_chunks_matches_numpy() -> None:
    q, k, v = (torch.randn(7, 2, 30, 4, dtype=torch.float64, requires_grad=True) for _ in range(3))
    chunked = fused_attention(q, k, v, 0.3, max_batch=3)  # chunks of 3 + 3 + 1
    expected = _np_attention(*(z.detach().numpy() for z in (q, k, v)), 0.3)
    np.testing.assert_allclose(chunked.detach().numpy(), expected, atol=1e-12)
    grads = torch.autograd.grad(chunked.square().sum(), (q, k, v))
    whole = torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=0.3)
    for got, want in zip(grads, torch.autograd.grad(whole.square().sum(), (q, k, v)), strict=True):
        np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-12)
    # CUDA's fused kernels take at most 2**16 - 1 batch entries per launch; other devices take any
    assert sdpa_batch_limit(torch.device("cuda")) == SDPA_MAX_BATCH_CUDA == 2**16 - 1
    assert sdpa_batch_limit(torch.device("cpu")) is None


def test_token_batch_norm_equals_batchnorm2d() -> None:
    x = torch.randn(2, 5, 17, 8)
    ours, ref = TokenBatchNorm(8), torch.nn.BatchNorm2d(8)
    torch.testing.assert_close(ours(x), ref(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1))
    torch.testing.assert_close(ours.running_var, ref.running_var)
    ours.eval(), ref.eval()
    torch.testing.assert_close(ours(x), ref(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1))


def test_batch_norm_folding_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 4))
    gamma, beta, mean, var = rng.normal(size=3), rng.normal(size=3), rng.normal(size=3), rng.random(3) + 0.5
    w, b = rng.normal(size=(3, 4)), rng.normal(size=3)
    expected = ((x @ w.T + b) - mean) / np.sqrt(var + 1e-5) * gamma + beta
    lin, bn = torch.nn.Linear(4, 3).double(), torch.nn.BatchNorm1d(3).double().eval()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(w)), lin.bias.copy_(torch.tensor(b))
        bn.weight.copy_(torch.tensor(gamma)), bn.bias.copy_(torch.tensor(beta))
        bn.running_mean.copy_(torch.tensor(mean)), bn.running_var.copy_(torch.tensor(var))
    fold_bn_after(lin, bn)
    np.testing.assert_allclose(lin(torch.tensor(x)).detach().numpy(), expected, atol=1e-12)
    # BN before a bias-free linear: the fold adds a bias
    lin2, bn2 = torch.nn.Linear(3, 2, bias=False).double(), torch.nn.BatchNorm1d(3).double().eval()
    with torch.no_grad():
        bn2.load_state_dict(bn.state_dict())
    w2 = lin2.weight.detach().numpy().copy()
    y = rng.normal(size=(5, 3))
    expected2 = ((y - mean) / np.sqrt(var + 1e-5) * gamma + beta) @ w2.T
    fold_bn_before(lin2, bn2)
    np.testing.assert_allclose(lin2(torch.tensor(y)).detach().numpy(), expected2, atol=1e-12)
