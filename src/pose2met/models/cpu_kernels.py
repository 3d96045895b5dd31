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
import shlex
import shutil
import subprocess
import sysconfig
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch
from torch import Tensor

from pose2met.models.tracing import tracing

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("cpu_kernels.c")
#: Set to ``0`` to never use the kernels.
ENV_SWITCH = "POSE2MET_CPU_KERNELS"
#: Head widths the attention kernel is built for.
HEAD_DIMS: tuple[int, ...] = (8, 16, 32, 64)
_ABI = 5
PRIVATE_PREFIX = "pose2met-kernels-"


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


def gradients_by_pytorch(
    reference: Callable[..., Tensor], inputs: Sequence[object], grad_output: Tensor
) -> tuple[Tensor | None, ...]:
    """The backward pass of a kernel's autograd function when the gradients need a graph themselves
    (``create_graph=True``: double backward, gradient penalties): the forward recomputed with PyTorch
    operators by ``reference(*inputs)``, differentiated by autograd. One gradient per input (``None``
    for non-tensors and tensors without ``requires_grad``)."""
    wanted = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    with torch.enable_grad(), disabled():
        output = reference(*inputs)
    grads = iter(torch.autograd.grad(output, wanted, grad_output, create_graph=True, allow_unused=True))
    return tuple(next(grads) if isinstance(t, Tensor) and t.requires_grad else None for t in inputs)


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


def _compiler() -> list[str]:
    """``$CC`` if set (split like a shell: a launcher such as ``ccache gcc`` and extra flags are kept;
    its first word must be an executable), else Python's own compiler, ``cc``, ``gcc`` or ``clang``."""
    if os.environ.get("CC"):
        argv = shlex.split(os.environ["CC"])
        path = shutil.which(argv[0]) if argv else None
        if path is None:
            raise OSError(f"$CC={os.environ['CC']!r} is not an executable on PATH")
        return [path, *argv[1:]]
    candidates = [(sysconfig.get_config_var("CC") or "cc").split()[0], "cc", "gcc", "clang"]
    for name in candidates:
        if path := shutil.which(name):
            return [path]
    raise OSError(f"no C compiler found (tried {', '.join(dict.fromkeys(candidates))}; set $CC)")


def _trusted(folder: Path) -> bool:
    """A cache folder this user owns and nobody else may write to (else a library could be planted)."""
    if os.name != "posix":
        return True
    info = folder.stat()
    return info.st_uid == os.getuid() and not info.st_mode & 0o022


def _intact(library: Path) -> bool:
    """Whether ``library`` is the file this loader wrote: its SHA-256 matches the one recorded beside it
    (a truncated or damaged shared library can crash the process when loaded, not just fail)."""
    try:
        recorded = library.with_name(library.name + ".sha256").read_text().strip()
        return recorded == hashlib.sha256(library.read_bytes()).hexdigest()
    except OSError:
        return False


def _arch_flags() -> list[str]:
    if platform.machine().lower() in ("x86_64", "amd64") and torch.backends.cpu.get_cpu_capability() in (
        "AVX2",
        "AVX512",
    ):
        return ["-mavx2", "-mfma"]
    return []


def _build(private: bool = False) -> Path:
    """Compile the kernels (once per source, compiler and flags) and return the shared library.

    The library is cached in :func:`cache_dir` with its checksum; where that folder cannot be written or
    is not this user's alone, or with ``private``, it is built into a new private temporary folder.
    """
    compiler = _compiler()
    version = subprocess.run([*compiler, "--version"], capture_output=True, text=True, timeout=30).stdout
    flags = ["-O3", "-std=gnu11", "-fPIC", "-shared", *_arch_flags()]
    key = hashlib.sha256(
        b"\0".join(s.encode() for s in (*compiler, version, *flags, platform.machine(), str(_ABI)))
        + SOURCE.read_bytes()
    ).hexdigest()[:16]
    folder = cache_dir()
    try:
        if private:
            raise OSError("a private build was asked for")
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not _trusted(folder):
            raise OSError(f"{folder} is writable by others")
        probe = folder / f".probe-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError:
        folder = Path(tempfile.mkdtemp(prefix=PRIVATE_PREFIX))  # 0700, this process only
    target = folder / f"cpu_kernels-{key}.so"
    if _intact(target):
        return target
    partial = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    errors = []
    for openmp in (["-fopenmp"], []):  # without OpenMP (e.g. Apple clang) it runs on one thread
        done = subprocess.run(
            [*compiler, *flags, *openmp, str(SOURCE), "-o", str(partial), "-lm"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode == 0:
            digest = hashlib.sha256(partial.read_bytes()).hexdigest()
            os.replace(partial, target)  # atomic: concurrent builders (DDP ranks) each write their own file
            record = target.with_name(f"{target.name}.sha256.tmp-{os.getpid()}")
            record.write_text(digest + "\n")
            os.replace(record, target.with_name(target.name + ".sha256"))
            return target
        errors.append((done.stderr.strip().splitlines() or ["(no message)"])[-1])
    partial.unlink(missing_ok=True)
    raise OSError(f"compiling {SOURCE.name} with {' '.join(compiler)} failed: {errors[-1]}")


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
        except (OSError, AttributeError):  # intact but not loadable here: a fresh private build
            lib = Library(_build(private=True))
    except (OSError, subprocess.SubprocessError, AttributeError) as err:
        log.info("pose2met CPU kernels unavailable, using PyTorch operators: %s", err)
        return None, str(err)
    if lib.path.parent.name.startswith(PRIVATE_PREFIX) and os.name == "posix":
        shutil.rmtree(lib.path.parent, ignore_errors=True)  # loaded; nothing left behind in the temp folder
        return lib, f"compiled for this process only (the cache folder {cache_dir()} could not be used)"
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


def fast_path(x: torch.Tensor) -> bool:
    """Whether the CPU fast paths may process ``x``: float32 on the CPU, outside tracing, compiling,
    ``torch.func`` transforms and :func:`disabled` (the C kernels also need :func:`available_for`)."""
    return x.device.type == "cpu" and x.dtype == torch.float32 and enabled() and not tracing()


def available_for(x: torch.Tensor) -> bool:
    """Whether the kernels can process ``x``: :func:`fast_path` and the library built."""
    return fast_path(x) and library() is not None
