"""Fused CPU attention over joints, frames or STAP tokens (a small C kernel, compiled on first use).

STAPFormer's attention runs over short sequences (17 joints, 27-243 frames, a few hundred STAP
tokens) with narrow heads (8 or 16 channels). On a CPU, batched matrix products and the softmax
spend most of their time on per-matrix overhead at these sizes, and the reshapes between the
fused qkv projection and the per-head layout add copies forward and backward. ``cpu_attention.c``
computes ``softmax(scale * q k^T) v`` (and its gradients) one sequence at a time in cache, reading
the heads straight out of the qkv tensor and writing the output in the ``(B, T, J, C)`` layout the
projection reads, on PyTorch's own OpenMP threads.

The C source ships with the package and is compiled with the system C compiler on first use
(about a second; cached under ``$POSE2MET_CACHE_DIR``, else ``$XDG_CACHE_HOME/pose2met`` or
``~/.cache/pose2met``). Without a compiler, on other devices or dtypes, with attention dropout,
while tracing/exporting/compiling, or with ``POSE2MET_CPU_ATTENTION=0``, callers use the PyTorch
path (:func:`pose2met.models.attention.attend`); :func:`status` says which is active and why.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import sysconfig
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from pose2met.models.layers import tracing

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("cpu_attention.c")
#: Head widths the kernel is built for (other widths use the PyTorch path).
HEAD_DIMS: tuple[int, ...] = (8, 16, 32, 64)
#: Set to ``0`` to never use the kernel.
ENV_SWITCH = "POSE2MET_CPU_ATTENTION"
_ABI = 1
Axis = Literal["joints", "frames"]


class _View(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int64) for name in ("off", "s0", "s1", "s2", "row")]


class _Plan(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int64) for name in ("n0", "n1", "n2", "len")] + [
        (name, _View) for name in ("q", "k", "v", "o")
    ]


@dataclass(frozen=True)
class _Job:
    """One batch of equal-length sequences: where q, k, v sit in the input and o in the output."""

    plan: _Plan
    head_dim: int
    sequences: int
    length: int


@dataclass(frozen=True)
class AttentionPlan:
    """How one qkv tensor of a given shape is attended: the output shape and the jobs."""

    out_shape: tuple[int, ...]
    jobs: tuple[_Job, ...]
    scale: float


# ----------------------------------------------------------------------------- building the library


class _Library:
    def __init__(self, path: Path) -> None:
        lib = ctypes.CDLL(str(path))
        if lib.p2m_attention_abi() != _ABI:
            raise OSError(f"{path} implements another interface version")
        ptr, plan, f32, i32 = ctypes.c_void_p, ctypes.POINTER(_Plan), ctypes.c_float, ctypes.c_int
        self.forward, self.backward = {}, {}
        for c in HEAD_DIMS:
            fwd = getattr(lib, f"p2m_attention_forward_c{c}")
            fwd.argtypes, fwd.restype = [ptr, ptr, ptr, plan, f32, i32], i32
            bwd = getattr(lib, f"p2m_attention_backward_c{c}")
            bwd.argtypes, bwd.restype = [ptr, ptr, ptr, ptr, ptr, plan, f32, i32], i32
            self.forward[c], self.backward[c] = fwd, bwd
        self.path = path


_LOCK = threading.Lock()
_STATE: dict[str, object] = {}


def cache_dir() -> Path:
    """Where compiled kernels are kept (created on demand)."""
    if os.environ.get("POSE2MET_CACHE_DIR"):
        return Path(os.environ["POSE2MET_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pose2met"


def _compiler() -> str:
    name = os.environ.get("CC") or (sysconfig.get_config_var("CC") or "cc").split()[0]
    path = shutil.which(name) or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if path is None:
        raise OSError(f"no C compiler found (tried $CC, {name!r}, cc, gcc, clang)")
    return path


def _arch_flags() -> list[str]:
    if platform.machine().lower() in ("x86_64", "amd64") and torch.backends.cpu.get_cpu_capability() in (
        "AVX2",
        "AVX512",
    ):
        return ["-mavx2", "-mfma"]
    return []


def _build() -> Path:
    """Compile the kernel (once per source, compiler and flags) and return the shared library."""
    compiler = _compiler()
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30).stdout
    flags = ["-O3", "-std=gnu11", "-fPIC", "-shared", *_arch_flags()]
    key = hashlib.sha256(
        b"\0".join(s.encode() for s in (compiler, version, *flags, platform.machine(), str(_ABI)))
        + SOURCE.read_bytes()
    ).hexdigest()[:16]
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".probe-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError:
        folder = Path(tempfile.gettempdir()) / f"pose2met-{os.getuid() if hasattr(os, 'getuid') else 0}"
        folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"cpu_attention-{key}.so"
    if target.is_file():
        return target
    partial = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    errors = []
    for openmp in (["-fopenmp"], []):  # without OpenMP (e.g. Apple clang) it runs on one thread
        done = subprocess.run(
            [compiler, *flags, *openmp, str(SOURCE), "-o", str(partial)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode == 0:
            os.replace(partial, target)  # atomic: concurrent builders (DDP ranks) each write their own file
            return target
        errors.append((done.stderr.strip().splitlines() or ["(no message)"])[-1])
    partial.unlink(missing_ok=True)
    raise OSError(f"compiling {SOURCE.name} with {compiler} failed: {errors[-1]}")


def library() -> _Library | None:
    """The compiled kernel, building it on first use; ``None`` if it cannot be used here."""
    if "library" not in _STATE:
        with _LOCK:
            if "library" not in _STATE:
                _STATE["library"], _STATE["reason"] = _load()
    return _STATE["library"]  # type: ignore[return-value]


def _load() -> tuple[_Library | None, str]:
    if os.environ.get(ENV_SWITCH, "1").strip() == "0":
        return None, f"disabled by {ENV_SWITCH}=0"
    try:
        lib = _Library(_build())
    except (OSError, subprocess.SubprocessError, AttributeError) as err:
        log.info("pose2met CPU attention kernel unavailable, using PyTorch attention: %s", err)
        return None, str(err)
    return lib, f"compiled kernel {lib.path}"


def status() -> str:
    """One line: whether the kernel is in use, and the library file or the reason it is not."""
    lib = library()
    return ("in use: " if lib is not None else "not in use: ") + str(_STATE["reason"])


# ----------------------------------------------------------------------------- plans


def _view(t: Tensor, length_dim: int, batch_dims: Sequence[int]) -> _View:
    strides = [t.stride(d) for d in batch_dims] + [0] * (3 - len(batch_dims))
    return _View(t.storage_offset(), *strides, t.stride(length_dim))


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
        plan = _Plan(n0, n1, n2, q.shape[length], *views)
        jobs.append(_Job(plan, c, n0 * n1 * n2, q.shape[length]))
    return AttentionPlan((b, t, j, groups * heads * c), tuple(jobs), float(scale))


# ----------------------------------------------------------------------------- autograd


def _padded(length: int) -> int:
    """Row width of the stored probabilities: ``length`` rounded up to a multiple of 8."""
    return -(-length // 8) * 8


class _PlannedAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, plan: AttentionPlan) -> Tensor:  # type: ignore[override]
        lib = library()
        assert lib is not None
        out = x.new_empty(plan.out_shape)
        keep = ctx.needs_input_grad[0]
        probs = [x.new_empty(j.sequences, j.length, _padded(j.length)) if keep else None for j in plan.jobs]
        threads = torch.get_num_threads()
        for job, p in zip(plan.jobs, probs, strict=True):
            p_ptr = None if p is None else p.data_ptr()
            if lib.forward[job.head_dim](x.data_ptr(), out.data_ptr(), p_ptr, job.plan, plan.scale, threads):
                raise MemoryError("pose2met CPU attention: out of memory for its scratch buffers")
        if keep:
            ctx.save_for_backward(x, out, *probs)
            ctx.plan = plan
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        lib = library()
        assert lib is not None
        x, out, *probs = ctx.saved_tensors
        plan: AttentionPlan = ctx.plan
        grad_out = grad_out.contiguous()
        grad_x = torch.empty_like(x)  # the q, k, v views of the jobs cover every element once
        threads = torch.get_num_threads()
        for job, p in zip(plan.jobs, probs, strict=True):
            args = (x.data_ptr(), out.data_ptr(), p.data_ptr(), grad_out.data_ptr(), grad_x.data_ptr())
            if lib.backward[job.head_dim](*args, job.plan, plan.scale, threads):
                raise MemoryError("pose2met CPU attention: out of memory for its scratch buffers")
        return grad_x, None


def usable(qkv: Tensor, head_dim: int, dropout_p: float = 0.0) -> bool:
    """Whether :func:`axis_attention` can run on ``qkv``: float32 on the CPU, a head width in
    :data:`HEAD_DIMS`, no attention dropout, not traced or compiled, and the kernel built."""
    return (
        qkv.device.type == "cpu"
        and qkv.dtype == torch.float32
        and head_dim in HEAD_DIMS
        and dropout_p == 0.0
        and not tracing()
        and library() is not None
    )


def axis_attention(qkv: Tensor, heads: int, axes: tuple[Axis, ...], scale: float) -> Tensor:
    """Multi-head attention of each channel group along its axis: ``(B, T, J, G*3*h*c) -> (B, T, J, G*h*c)``.

    ``qkv`` is laid out ``(group, qkv, head, channel)``; group ``g`` attends over the joints of each
    frame (``axes[g] == "joints"``) or the frames of each joint (``"frames"``) with logits scaled by
    ``scale``; the output is laid out ``(group, head, channel)``. Check :func:`usable` first.
    """
    qkv = qkv.contiguous()
    return _PlannedAttention.apply(qkv, axis_plan(tuple(qkv.shape), heads, axes, float(scale)))
