"""The C kernels (attention, batch norm + GELU) against NumPy/SciPy references, and their fallbacks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.special import erf

from pose2met.models import (
    PoseHead,
    PoseLifter,
    cpu_attention,
    cpu_batchnorm,
    cpu_kernels,
    cpu_windows,
    stapformer_preset,
)
from pose2met.models.layers import TokenBatchNorm, linear_tanh

HAS_COMPILER = any(shutil.which(name) for name in ("cc", "gcc", "clang"))


@pytest.fixture(autouse=True)
def _kernels_built() -> None:
    """With a C compiler on this machine the kernels must build: a failed build is a bug, not a skip."""
    if not HAS_COMPILER:
        pytest.skip("no C compiler here: the PyTorch fallback is what runs (tested below)")
    assert cpu_kernels.library() is not None, cpu_kernels.status()


# ----------------------------------------------------------------------------- attention


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _per_axis(qkv: np.ndarray, heads: int, axes: tuple[str, ...]):
    """Yield (group, q, k, v) with q, k, v as (batch..., L, c) arrays for each group's axis."""
    b, t, j, width = qkv.shape
    c = width // (len(axes) * 3 * heads)
    z = qkv.reshape(b, t, j, len(axes), 3, heads, c)
    for g, axis in enumerate(axes):
        order = (0, 1, 3, 2, 4) if axis == "joints" else (0, 2, 3, 1, 4)  # (..., L, c)
        yield g, order, [z[:, :, :, g, n].transpose(order) for n in range(3)]


def numpy_attention(qkv: np.ndarray, heads: int, axes: tuple[str, ...], scale: float) -> np.ndarray:
    b, t, j, width = qkv.shape
    c = width // (len(axes) * 3 * heads)
    out = np.zeros((b, t, j, len(axes), heads, c))
    for g, order, (q, k, v) in _per_axis(qkv, heads, axes):
        o = _softmax(q @ np.swapaxes(k, -1, -2) * scale) @ v
        out[:, :, :, g] = o.transpose(np.argsort(order))
    return out.reshape(b, t, j, -1)


def numpy_attention_grad(
    qkv: np.ndarray, grad_out: np.ndarray, heads: int, axes: tuple[str, ...], scale: float
) -> np.ndarray:
    """d(sum(out * grad_out)) / d qkv from the closed-form softmax-attention gradients."""
    b, t, j, width = qkv.shape
    c = width // (len(axes) * 3 * heads)
    grad = np.zeros((b, t, j, len(axes), 3, heads, c))
    go_all = grad_out.reshape(b, t, j, len(axes), heads, c)
    for g, order, (q, k, v) in _per_axis(qkv, heads, axes):
        go = go_all[:, :, :, g].transpose(order)
        p = _softmax(q @ np.swapaxes(k, -1, -2) * scale)
        dv = np.swapaxes(p, -1, -2) @ go
        dp = go @ np.swapaxes(v, -1, -2)
        ds = p * (dp - (dp * p).sum(-1, keepdims=True))
        dq, dk = ds @ k * scale, np.swapaxes(ds, -1, -2) @ q * scale
        for n, d in enumerate((dq, dk, dv)):
            grad[:, :, :, g, n] = d.transpose(np.argsort(order))
    return grad.reshape(b, t, j, width)


@pytest.mark.parametrize(
    ("shape", "heads", "axes"),
    [
        ((2, 9, 17, 2 * 3 * 2 * 8), 2, ("joints", "frames")),  # STC: spatial + temporal halves, c = 8
        ((1, 27, 5, 2 * 3 * 1 * 8), 1, ("joints", "frames")),
        ((3, 1, 1, 3 * 2 * 16), 2, ("frames",)),  # single tokens
        ((2, 8, 3, 3 * 1 * 16), 1, ("frames",)),  # L a multiple of 8
        ((2, 1, 54, 3 * 2 * 16), 2, ("joints",)),  # STAP: all tokens of a clip as one sequence
        ((1, 7, 2, 3 * 1 * 32), 1, ("frames",)),
        ((1, 2, 9, 3 * 1 * 64), 1, ("joints",)),
    ],
)
def test_attention_matches_numpy_forward_and_gradients(
    shape: tuple[int, int, int, int], heads: int, axes: tuple[str, ...]
) -> None:
    rng = np.random.default_rng(sum(shape))
    qkv = rng.normal(size=shape) * 1.5
    grad_out = rng.normal(size=(*shape[:3], shape[3] // 3))
    scale = 0.37
    x = torch.tensor(qkv, dtype=torch.float32, requires_grad=True)
    head_dim = shape[3] // (len(axes) * 3 * heads)
    assert cpu_attention.usable(x, head_dim)
    out = cpu_attention.axis_attention(x, heads, axes, scale)
    np.testing.assert_allclose(
        out.detach().numpy(), numpy_attention(qkv, heads, axes, scale), atol=1e-5, rtol=1e-5
    )
    with torch.no_grad():  # inference keeps no probabilities: same numbers
        assert torch.equal(cpu_attention.axis_attention(x, heads, axes, scale), out.detach())
    out.backward(torch.tensor(grad_out, dtype=torch.float32))
    expected = numpy_attention_grad(qkv, grad_out, heads, axes, scale)
    np.testing.assert_allclose(x.grad.numpy(), expected, atol=3e-5, rtol=1e-4)


def test_attention_is_the_same_on_any_thread_count_and_propagates_nan() -> None:
    qkv = torch.randn(4, 27, 17, 384)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = cpu_attention.axis_attention(qkv, 8, ("joints", "frames"), 0.25)
        torch.set_num_threads(2)
        two = cpu_attention.axis_attention(qkv, 8, ("joints", "frames"), 0.25)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, two)  # each sequence is computed alone, in a fixed order
    qkv[1, 3, 5, 0] = float("nan")  # a spatial query of frame 3 of clip 1
    out = cpu_attention.axis_attention(qkv, 8, ("joints", "frames"), 0.25)
    assert out[1, 3, 5, :8].isnan().all()  # that query's head
    assert out[0].isfinite().all() and out[1, 4].isfinite().all()


def test_attention_is_not_used_where_it_cannot_run() -> None:
    x = torch.randn(2, 3, 17, 48)
    assert not cpu_attention.usable(x, 8, dropout_p=0.1)  # attention dropout: PyTorch's path
    assert not cpu_attention.usable(x.double(), 8)
    assert not cpu_attention.usable(x, 12)  # head width without a kernel
    assert not cpu_attention.usable(x.to(torch.bfloat16), 8)
    with cpu_kernels.disabled():
        assert not cpu_attention.usable(x, 8)
    assert cpu_attention.usable(x, 8)
    long = torch.randn(1, 243, 17, 48, requires_grad=True)
    assert not cpu_attention.usable(long, 8, longest=243)  # training: SDPA keeps no L x L probabilities
    with torch.no_grad():
        assert cpu_attention.usable(long, 8, longest=243)


# ----------------------------------------------------------------------------- batch norm (+ GELU)


def _gelu(z: np.ndarray) -> np.ndarray:
    return 0.5 * z * (1.0 + erf(z / np.sqrt(2.0)))


def _gelu_grad(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + erf(z / np.sqrt(2.0))) + z * np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)


@pytest.mark.parametrize("gelu", [True, False])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_batch_norm_matches_numpy(gelu: bool, momentum: float | None) -> None:
    rng = np.random.default_rng(3)
    n, c = 4 * 9 * 17, 24
    x = rng.normal(size=(n, c)) * 3.0 + 50.0  # a large mean: the statistics must not cancel
    shift = rng.normal(size=c)
    gamma, beta = 1 + 0.2 * rng.normal(size=c), 0.3 * rng.normal(size=c)
    grad_y = rng.normal(size=(n, c))
    bn = TokenBatchNorm(c, momentum=momentum).train()
    with torch.no_grad():
        bn.weight.copy_(torch.tensor(gamma))
        bn.bias.copy_(torch.tensor(beta))
        bn.running_mean.fill_(0.5)
        bn.running_var.fill_(2.0)
        bn.num_batches_tracked.fill_(3)
    xt = torch.tensor(x, dtype=torch.float32).view(4, 9, 17, c).requires_grad_(True)
    st = torch.tensor(shift, dtype=torch.float32, requires_grad=True)
    assert cpu_batchnorm.usable(xt, bn)
    y = cpu_batchnorm.batch_norm(xt, bn, gelu=gelu, shift=st)
    y.backward(torch.tensor(grad_y, dtype=torch.float32).view(4, 9, 17, c))

    xs = x + shift
    mean, var = xs.mean(0), xs.var(0)
    rstd = 1.0 / np.sqrt(var + bn.eps)
    xhat = (xs - mean) * rstd
    z = xhat * gamma + beta
    np.testing.assert_allclose(
        y.detach().numpy().reshape(n, c), _gelu(z) if gelu else z, atol=5e-6, rtol=1e-5
    )
    f = 0.1 if momentum is not None else 1.0 / 4.0
    np.testing.assert_allclose(bn.running_mean.numpy(), (1 - f) * 0.5 + f * mean, rtol=1e-6)
    np.testing.assert_allclose(bn.running_var.numpy(), (1 - f) * 2.0 + f * var * n / (n - 1), rtol=1e-5)
    assert int(bn.num_batches_tracked) == 4

    gz = grad_y * (_gelu_grad(z) if gelu else 1.0)
    dxhat = gz * gamma
    dx = rstd / n * (n * dxhat - dxhat.sum(0) - xhat * (dxhat * xhat).sum(0))
    np.testing.assert_allclose(xt.grad.numpy().reshape(n, c), dx, atol=2e-6, rtol=1e-4)
    np.testing.assert_allclose(bn.weight.grad.numpy(), (gz * xhat).sum(0), atol=1e-3, rtol=1e-4)
    np.testing.assert_allclose(bn.bias.grad.numpy(), gz.sum(0), atol=1e-3, rtol=1e-4)
    np.testing.assert_allclose(st.grad.numpy(), dx.sum(0), atol=1e-4)  # zero up to rounding


def test_batch_norm_propagates_nan_and_leaves_odd_widths_to_pytorch() -> None:
    bn = TokenBatchNorm(16).train()
    x = torch.randn(2, 5, 17, 16)
    x[0, 0, 0, 3] = float("nan")
    y = bn(x)
    assert y[..., 3].isnan().all() and y[..., 4].isfinite().all()
    assert not cpu_batchnorm.usable(torch.randn(2, 5, 17, 12), TokenBatchNorm(12).train())
    assert not cpu_batchnorm.usable(x, TokenBatchNorm(16).eval())  # running statistics: PyTorch's
    assert not cpu_batchnorm.usable(torch.randn(1, 1, 1, 16), bn)  # one token: PyTorch's error


def test_linear_bias_before_batch_norm_is_skipped_exactly() -> None:
    """FeedForward's fc1 -> BN -> GELU with the kernel and the skipped bias equals the plain layers
    (float64 PyTorch) in output, gradients and running statistics."""
    from pose2met.models.layers import FeedForward

    ff = FeedForward(16, 64).train()
    with torch.no_grad():
        ff.fc1.bias.normal_()
        ff.fc2.bias.normal_()
    ref = FeedForward(16, 64).double().train()
    ref.load_state_dict(ff.state_dict())
    x, probe = torch.randn(3, 5, 17, 16), torch.randn(3, 5, 17, 16)
    for _ in range(2):
        out = ff(x)
        with cpu_kernels.disabled():  # plain operators in float64
            expected = ref.norm2(ref.fc2(torch.nn.functional.gelu(ref.norm1(ref.fc1(x.double())))))
        torch.testing.assert_close(out.double(), expected, atol=2e-5, rtol=1e-5)
        (out * probe).sum().backward()
        (expected * probe.double()).sum().backward()
    scale = max(float(q.grad.abs().max()) for q in ref.parameters())
    for (name, p), q in zip(ff.named_parameters(), ref.parameters(), strict=True):
        # the biases before the batch norms get zero gradients up to float32 rounding
        torch.testing.assert_close(p.grad.double(), q.grad, atol=2e-6 * scale, rtol=1e-4, msg=name)
    for (name, b), r in zip(ff.named_buffers(), ref.buffers(), strict=True):
        torch.testing.assert_close(b.double(), r.double(), atol=1e-5, rtol=1e-5, msg=name)


# ----------------------------------------------------------------------------- STAP windows


@pytest.mark.parametrize(
    ("t", "j", "kernel", "padding"),
    [
        (27, 17, (3, 3), (1, 1)),
        (9, 17, (5, 5), (2, 2)),
        (8, 5, (2, 2), (1, 1)),
        (7, 17, (1, 17), (0, 8)),
        (3, 3, (3, 3), (1, 1)),
    ],
)
def test_windows_are_the_stride_equals_kernel_convolution(
    t: int, j: int, kernel: tuple[int, int], padding: tuple[int, int]
) -> None:
    """windows @ W equals F.conv2d (zero padding, stride = kernel), forward and input gradient."""
    c, out = 8, 5
    x = torch.randn(2, t, j, c, requires_grad=True)
    weight = torch.randn(out, c, *kernel)
    grid = (
        (t + 2 * padding[0] - kernel[0]) // kernel[0] + 1,
        (j + 2 * padding[1] - kernel[1]) // kernel[1] + 1,
    )
    assert cpu_windows.usable(x)
    w = cpu_windows.windows(x, kernel, padding, grid)
    y = w @ weight.permute(0, 2, 3, 1).reshape(out, -1).t()  # (o, kt, kj, c) flattened as the windows
    x_ref = x.detach().permute(0, 3, 1, 2).requires_grad_(True)
    expected = torch.nn.functional.conv2d(x_ref, weight, stride=kernel, padding=padding).permute(0, 2, 3, 1)
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=1e-5)
    g = torch.randn_like(y)
    y.backward(g)
    expected.backward(g)
    torch.testing.assert_close(x.grad, x_ref.grad.permute(0, 2, 3, 1), atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------- model level


def test_linear_tanh_matches_torch_and_keeps_autocast() -> None:
    lin = torch.nn.Linear(16, 40)
    x = torch.randn(3, 7, 16, requires_grad=True)
    y = linear_tanh(x, lin)
    x64 = x.detach().double().requires_grad_(True)
    expected = torch.tanh(torch.nn.functional.linear(x64, lin.weight.double(), lin.bias.double()))
    torch.testing.assert_close(y.double(), expected, atol=3e-7, rtol=0)
    g = torch.randn_like(y)
    y.backward(g)
    expected.backward(g.double())
    torch.testing.assert_close(x.grad.double(), x64.grad, atol=1e-6, rtol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert linear_tanh(x, lin).dtype == torch.bfloat16  # PyTorch's operators under autocast


def test_training_step_with_and_without_kernels_agree() -> None:
    torch.manual_seed(1)
    model = PoseLifter(
        stapformer_preset("small", depth=2, num_frames=27, joint_gcn=True), PoseHead(512)
    ).train()
    ref = (
        PoseLifter(stapformer_preset("small", depth=2, num_frames=27, joint_gcn=True), PoseHead(512))
        .double()
        .train()
    )
    ref.load_state_dict(model.state_dict())
    x = torch.randn(4, 27, 17, 3)
    out = model(x)
    with cpu_kernels.disabled():
        expected = ref(x.double())
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=1e-4)
    out.square().sum().backward()
    expected.square().sum().backward()
    for (name, p), q in zip(model.named_parameters(), ref.parameters(), strict=True):
        scale = q.grad.abs().max().clamp_min(1e-2)  # biases before batch norms: zero up to rounding
        assert (p.grad.double() - q.grad).abs().max() / scale < 1e-3, name
    for (name, b), r in zip(model.named_buffers(), ref.buffers(), strict=True):
        torch.testing.assert_close(b.double(), r.double(), atol=1e-5, rtol=1e-4, msg=name)


def test_hooks_adapters_and_weight_norm_are_honoured() -> None:
    """The fused paths read a linear layer's parameters directly; a hooked, subclassed or parametrized
    layer is called as a module instead."""
    torch.manual_seed(2)
    model = PoseLifter(stapformer_preset("small", depth=1, num_frames=9), PoseHead(512)).train()
    calls = []
    block = model.encoder.blocks[0]
    handles = [
        m.register_forward_hook(lambda *_, name=n: calls.append(name))
        for n, m in (("fc1", block.mlp.fc1), ("rep", model.encoder.rep))
    ]
    model(torch.randn(2, 9, 17, 3))
    for handle in handles:
        handle.remove()
    assert sorted(calls) == ["fc1", "rep"]

    class Scaled(torch.nn.Linear):  # an adapter-like subclass with its own forward
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 2 * super().forward(x)

    x = torch.randn(2, 9, 17, 3)
    before = model(x).detach()
    rep = Scaled(128, 512)
    rep.load_state_dict(model.encoder.rep.state_dict())
    model.encoder.rep = rep
    assert not torch.allclose(model(x), before, atol=1e-3)
    model.encoder.rep = torch.nn.utils.parametrizations.weight_norm(torch.nn.Linear(128, 512))
    out = model(x).detach()
    with torch.no_grad():
        model.encoder.rep.parametrizations.weight.original0.mul_(3.0)  # the norm g
    assert not torch.allclose(model(x), out, atol=1e-3)


def test_double_backward_and_torch_func_match_pytorch() -> None:
    torch.manual_seed(3)
    model = PoseLifter(stapformer_preset("small", depth=2, num_frames=9), PoseHead(512)).train()
    ref = PoseLifter(stapformer_preset("small", depth=2, num_frames=9), PoseHead(512)).double().train()
    ref.load_state_dict(model.state_dict())
    x = torch.randn(3, 9, 17, 3)

    def gradient_penalty(net: torch.nn.Module, inputs: torch.Tensor) -> None:
        inputs = inputs.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(net(inputs).square().sum(), inputs, create_graph=True)
        g.square().sum().backward()

    gradient_penalty(model, x)
    with cpu_kernels.disabled():
        gradient_penalty(ref, x.double())
    scale = max(float(q.grad.abs().max()) for q in ref.parameters())
    for (name, p), q in zip(model.named_parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p.grad.double(), q.grad, atol=2e-5 * scale, rtol=1e-3, msg=name)
    model.eval()
    ref.eval()
    grad = torch.func.grad(lambda inputs: model(inputs).sum())(x)
    with cpu_kernels.disabled():
        expected = torch.func.grad(lambda inputs: ref(inputs).sum())(x.double())
    torch.testing.assert_close(grad.double(), expected, atol=1e-4, rtol=1e-4)


def test_batch_norm_statistics_do_not_depend_on_the_first_token() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(16384, 8)) * 0.5 + 3.0
    x[0] = 1000.0  # an outlier first: the statistics must not be taken relative to it
    bn = TokenBatchNorm(8, momentum=1.0).train()
    cpu_batchnorm.batch_norm(torch.tensor(x, dtype=torch.float32), bn)
    xf = x.astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(bn.running_mean.numpy(), xf.mean(0), rtol=1e-6)
    np.testing.assert_allclose(bn.running_var.numpy(), xf.var(0, ddof=1), rtol=1e-5)


# ----------------------------------------------------------------------------- building and fallbacks

_PROBE = textwrap.dedent(
    """
    import torch
    from pose2met.models import PoseHead, PoseLifter, cpu_kernels, stapformer_preset
    model = PoseLifter(stapformer_preset("small", depth=1, num_frames=9), PoseHead(512)).train()
    model(torch.randn(2, 9, 17, 3)).square().sum().backward()
    print(cpu_kernels.status())
    """
)


def _probe(tmp_path: Path, **env: str) -> str:
    run_env = {**os.environ, "POSE2MET_CACHE_DIR": str(tmp_path / "cache"), **env}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], env=run_env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.slow
def test_kernels_fall_back_to_pytorch_and_rebuild_a_damaged_cache(tmp_path: Path) -> None:
    assert _probe(tmp_path, POSE2MET_CPU_KERNELS="0") == "not in use: disabled by POSE2MET_CPU_KERNELS=0"
    assert "$CC='/nonexistent/cc' is not an executable" in _probe(tmp_path, CC="/nonexistent/cc")
    assert "compiling cpu_kernels.c with" in _probe(tmp_path, CC=shutil.which("false") or "false")
    built = _probe(tmp_path)
    assert built.startswith("in use: compiled ") and str(tmp_path / "cache") in built
    library = Path(built.removeprefix("in use: compiled "))
    size = library.stat().st_size
    library.write_bytes(b"not a shared library")  # damaged (or copied from another machine)
    assert _probe(tmp_path) == built  # rebuilt in place
    library.write_bytes(library.read_bytes()[:4096].ljust(4096, b"\0"))  # truncated: loading it would crash
    assert _probe(tmp_path) == built and library.stat().st_size == size
    with_flags = _probe(tmp_path, CC=f"{shutil.which('cc') or shutil.which('gcc')} -O1")  # $CC with flags
    assert with_flags.startswith("in use: compiled ") and with_flags != built


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="folder ownership and permissions")
def test_kernels_are_not_loaded_from_a_folder_others_can_write(tmp_path: Path) -> None:
    shared = tmp_path / "cache"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)  # past the umask
    line = _probe(tmp_path)
    assert line == f"in use: compiled for this process only (the cache folder {shared} could not be used)"
    assert not list(shared.glob("*.so"))
