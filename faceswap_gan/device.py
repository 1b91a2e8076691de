"""Device choice, CPU threads and mixed precision, decided once per run and passed down."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import torch

from faceswap_gan.errors import FaceswapError


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' picks CUDA when present, else CPU; 'cuda' without a GPU is a user error."""
    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise FaceswapError("--device cuda asked for, but PyTorch sees no CUDA GPU")
    if name.split(":")[0] not in ("cpu", "cuda"):
        raise FaceswapError(f"unknown device '{name}' (use auto, cpu or cuda)")
    return torch.device(name)


THREADS_ENV = "FACESWAP_THREADS"


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask (taskset, a container's cpuset),
    capped by a cgroup CPU quota (docker --cpus, Kubernetes limits)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        n = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    if quota is not None:
        n = min(n, max(1, int(quota)))
    return max(1, n)


def _cgroup_cpu_quota() -> float | None:
    """CPUs' worth of time the cgroup allows (v2 cpu.max, else v1 cfs quota), or None."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period_us = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return quota_us / period_us if quota_us > 0 and period_us > 0 else None
    except (OSError, ValueError):
        return None


def set_cpu_threads(requested: int | None = None) -> int:
    """torch's CPU threads: ``requested`` (--threads), else $FACESWAP_THREADS, else
    $OMP_NUM_THREADS (left as torch read it), else the usable CPUs shared among the local
    ranks of a torchrun. More threads than CPUs only spin against each other (two runs
    sharing two cores with two threads each ran 3x slower, not 2x)."""
    if requested is None and not os.environ.get(THREADS_ENV) and os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads()
    if requested is None and os.environ.get(THREADS_ENV):
        try:
            requested = int(os.environ[THREADS_ENV])
        except ValueError:
            raise FaceswapError(f"${THREADS_ENV} must be a whole number, got {os.environ[THREADS_ENV]!r}") from None
    if requested is not None and requested < 1:
        raise FaceswapError(f"threads must be at least 1, got {requested}")
    local_ranks = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    n = requested or max(1, usable_cpus() // max(1, local_ranks))
    torch.set_num_threads(n)
    return n


def cpu_supports_bf16() -> bool:
    """True where the CPU has native bf16 matmul (AMX or AVX-512 bf16): autocast pays off there."""
    try:
        return bool(torch.backends.mkldnn.is_available()) and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    except (AttributeError, RuntimeError):
        return False


def amp_dtype(device: torch.device, enabled: bool = True, training: bool = False) -> torch.dtype | None:
    """The autocast dtype for this device, or None for plain fp32.

    CPU: bf16 where the hardware runs it natively (AMX/AVX-512 bf16; elsewhere bf16 is far
    slower than fp32). CUDA inference: fp16. CUDA training: bf16, which keeps fp32's exponent
    range so no loss scaling is needed, on GPUs that have it; fp32 on older GPUs.
    """
    if not enabled:
        return None
    if device.type == "cuda":
        if not training:
            return torch.float16
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    if device.type == "cpu" and cpu_supports_bf16():
        return torch.bfloat16
    return None


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Autocast to ``dtype`` (from ``amp_dtype``), or a no-op for None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)
