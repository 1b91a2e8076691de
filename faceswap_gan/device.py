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
    """torch's CPU threads: ``requested`` (--threads), else $FACESWAP_THREADS, else the usable
    CPUs. More threads than CPUs only spin against each other (two runs sharing two cores
    with two threads each ran 3x slower, not 2x)."""
    if requested is None and os.environ.get(THREADS_ENV):
        try:
            requested = int(os.environ[THREADS_ENV])
        except ValueError:
            raise FaceswapError(f"${THREADS_ENV} must be a whole number, got {os.environ[THREADS_ENV]!r}") from None
    if requested is not None and requested < 1:
        raise FaceswapError(f"threads must be at least 1, got {requested}")
    n = requested or usable_cpus()
    torch.set_num_threads(n)
    return n


def cpu_supports_bf16() -> bool:
    """True where the CPU has native bf16 matmul (AMX or AVX-512 bf16): autocast pays off there."""
    try:
        return bool(torch.backends.mkldnn.is_available()) and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    except (AttributeError, RuntimeError):
        return False


def autocast(device: torch.device, enabled: bool = True) -> contextlib.AbstractContextManager:
    """bf16 autocast on CPUs that support it, fp16 on CUDA, else a no-op."""
    if not enabled:
        return contextlib.nullcontext()
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    if device.type == "cpu" and cpu_supports_bf16():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()
