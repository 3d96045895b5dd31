"""Small C kernels for CPU training and inference, compiled with the system C compiler on first use.

``cpu_kernels.c`` ships with the package. On first use it is compiled (about a second) into a shared
library cached under ``$POSE2MET_CACHE_DIR``, else ``$XDG_CACHE_HOME/pose2met`` or
``~/.cache/pose2met``, keyed by the source, the compiler and its flags; built with OpenMP it runs on
PyTorch's own OpenMP thread pool. Without a C compiler, or with ``POSE2MET_CPU_KERNELS=0``, the
callers (:mod:`pose2met.models.cpu_attention`, :mod:`pose2met.models.cpu_batchnorm`) keep to plain
PyTorch operators; :func:`status` says which is the case and why.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import sysconfig
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import torch

from pose2met.models.tracing import tracing

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("cpu_kernels.c")
#: Set to ``0`` to never use the kernels.
ENV_SWITCH = "POSE2MET_CPU_KERNELS"
#: Head widths the attention kernel is built for.
HEAD_DIMS: tuple[int, ...] = (8, 16, 32, 64)
_ABI = 4


class View(ctypes.Structure):
    """A strided ``(N0, N1, N2, L, C)`` view into a float32 buffer (element offsets and strides)."""

    _fields_ = [(name, ctypes.c_int64) for name in ("off", "s0", "s1", "s2", "row")]


class Plan(ctypes.Structure):
    """``N0 x N1 x N2`` sequences of ``len`` tokens: where q, k, v and the output sit."""

    _fields_ = [(name, ctypes.c_int64) for name in ("n0", "n1", "n2", "len")] + [
        (name, View) for name in ("q", "k", "v", "o")
    ]


class Library:
    """The loaded kernels with their C signatures."""

    def __init__(self, path: Path) -> None:
        lib = ctypes.CDLL(str(path))
        if lib.p2m_abi() != _ABI:
            raise OSError(f"{path} implements another interface version")
        ptr, i64, f32, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float, ctypes.c_int
        plan = ctypes.POINTER(Plan)
        self.attention_forward, self.attention_backward = {}, {}
        for c in HEAD_DIMS:
            fwd = getattr(lib, f"p2m_attention_forward_c{c}")
            fwd.argtypes, fwd.restype = [ptr, ptr, ptr, plan, f32, i32], i32
            bwd = getattr(lib, f"p2m_attention_backward_c{c}")
            bwd.argtypes, bwd.restype = [ptr, ptr, ptr, ptr, plan, f32, i32], i32
            self.attention_forward[c], self.attention_backward[c] = fwd, bwd
        self.batch_norm_forward = lib.p2m_batch_norm_forward
        self.batch_norm_forward.argtypes = [ptr, ptr, ptr, ptr, f32, i64, i64, i32, ptr, ptr, ptr, i32]
        self.batch_norm_forward.restype = i32
        self.batch_norm_backward = lib.p2m_batch_norm_backward
        self.batch_norm_backward.argtypes = [
            ptr,
            ptr,
            ptr,
            ptr,
            ptr,
            ptr,
            ptr,
            i64,
            i64,
            i32,
            ptr,
            ptr,
            ptr,
            i32,
        ]
        self.batch_norm_backward.restype = i32
        self.windows_forward, self.windows_backward = lib.p2m_windows_forward, lib.p2m_windows_backward
        for fn in (self.windows_forward, self.windows_backward):
            fn.argtypes, fn.restype = [ptr, ptr, *[i64] * 10, i32], i32
        self.path = path


def check(code: int, what: str) -> None:
    """Raise ``MemoryError`` if a kernel reported that its scratch memory could not be allocated."""
    if code:
        raise MemoryError(f"pose2met CPU {what} kernel: out of memory for its scratch buffers")


_LOCK = threading.Lock()
_STATE: dict[str, object] = {}


def cache_dir() -> Path:
    """Where compiled kernels are kept (created on demand)."""
    if os.environ.get("POSE2MET_CACHE_DIR"):
        return Path(os.environ["POSE2MET_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pose2met"


def _compiler() -> str:
    """``$CC`` if set (it must exist), else Python's own compiler, ``cc``, ``gcc`` or ``clang``."""
    if os.environ.get("CC"):
        name = os.environ["CC"].split()[0]
        path = shutil.which(name)
        if path is None:
            raise OSError(f"$CC={os.environ['CC']!r} is not an executable on PATH")
        return path
    candidates = [(sysconfig.get_config_var("CC") or "cc").split()[0], "cc", "gcc", "clang"]
    for name in candidates:
        if path := shutil.which(name):
            return path
    raise OSError(f"no C compiler found (tried {', '.join(dict.fromkeys(candidates))}; set $CC)")


def _arch_flags() -> list[str]:
    if platform.machine().lower() in ("x86_64", "amd64") and torch.backends.cpu.get_cpu_capability() in (
        "AVX2",
        "AVX512",
    ):
        return ["-mavx2", "-mfma"]
    return []


def _build(rebuild: bool = False) -> Path:
    """Compile the kernels (once per source, compiler and flags) and return the shared library."""
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
    target = folder / f"cpu_kernels-{key}.so"
    if target.is_file() and not rebuild:
        return target
    partial = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    errors = []
    for openmp in (["-fopenmp"], []):  # without OpenMP (e.g. Apple clang) it runs on one thread
        done = subprocess.run(
            [compiler, *flags, *openmp, str(SOURCE), "-o", str(partial), "-lm"],
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


def library() -> Library | None:
    """The compiled kernels, built on first use; ``None`` if they cannot be used here."""
    if "library" not in _STATE:
        with _LOCK:
            if "library" not in _STATE:
                _STATE["library"], _STATE["reason"] = _load()
    return _STATE["library"]  # type: ignore[return-value]


def _load() -> tuple[Library | None, str]:
    if os.environ.get(ENV_SWITCH, "1").strip() == "0":
        return None, f"disabled by {ENV_SWITCH}=0"
    try:
        try:
            lib = Library(_build())
        except (OSError, AttributeError):  # a damaged or foreign file in the cache: build it again
            lib = Library(_build(rebuild=True))
    except (OSError, subprocess.SubprocessError, AttributeError) as err:
        log.info("pose2met CPU kernels unavailable, using PyTorch operators: %s", err)
        return None, str(err)
    return lib, f"compiled {lib.path}"


def status() -> str:
    """One line: whether the kernels are in use, and the library file or the reason they are not."""
    lib = library()
    return ("in use: " if lib is not None else "not in use: ") + str(_STATE["reason"])


def enabled() -> bool:
    """False inside :func:`disabled`."""
    return not _STATE.get("off", False)


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Within this context the model runs plain PyTorch operators only: no C kernels, and none of the
    other CPU fast paths (the fused linear + tanh, the skipped bias before a batch norm); for
    benchmarks and comparisons."""
    before = _STATE.get("off", False)
    _STATE["off"] = True
    try:
        yield
    finally:
        _STATE["off"] = before


def available_for(x: torch.Tensor) -> bool:
    """Whether the kernels can process ``x``: float32 on the CPU, outside tracing and compiling and
    :func:`disabled`, with the library built."""
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and enabled()
        and not tracing()
        and library() is not None
    )
