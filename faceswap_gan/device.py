"""Device choice, CPU threads and mixed precision, decided once per run and passed down."""

from __future__ import annotations

import atexit
import contextlib
import os
import platform
import tempfile
import time
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


THREADS_ENV = "FACESWAP_THREADS"
# Render and translate run E and G on one thread: a chunk's crops are a small batch, and the
# other cores are busy tracking, blending and encoding (two torch threads beside them made
# the networks 4x slower per face on a 2-core Xeon; one thread: 2.2 ms per 64 px face).
INFERENCE_THREADS = 1


def set_cpu_threads(requested: int | None = None, default: int | None = None,
                    share: CoreShare | None = None) -> int:
    """torch's CPU threads: ``requested`` (--threads), else $FACESWAP_THREADS, else
    $OMP_NUM_THREADS (left as torch read it), else ``default`` (capped by the usable CPUs),
    else the usable CPUs divided among the faceswap runs using them (``share`` joined: other
    runs of this user on this machine, and the local ranks of a torchrun). More threads than
    CPUs only spin against each other (two trainings on two cores with two threads each ran
    at 0.30x of one alone; with one thread each, 0.8x)."""
    if requested is None and not os.environ.get(THREADS_ENV) and os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads()
    given = "--threads"
    if requested is None and os.environ.get(THREADS_ENV):
        given = f"${THREADS_ENV}"
        try:
            requested = int(os.environ[THREADS_ENV])
        except ValueError:
            raise FaceswapError(f"{given} must be a whole number, got {os.environ[THREADS_ENV]!r}") from None
    if requested is not None and requested < 1:
        raise FaceswapError(f"{given} must be at least 1, got {requested}")
    if requested is not None and requested > usable_cpus():
        raise FaceswapError(f"{given} {requested} is more than the {usable_cpus()} CPUs this process "
                            "may use (extra threads only slow it down)")
    if requested is None and not default and share is not None:
        n = share.join()
    else:
        local_ranks = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
        fair = max(1, usable_cpus() // max(1, local_ranks))
        n = requested or (min(default, fair) if default else fair)
    torch.set_num_threads(n)
    return n


class CoreShare:
    """The CPUs shared fairly among this user's faceswap runs on one machine.

    Each run that joins leaves a file named by its pid in ``folder`` (per user, under
    $XDG_RUNTIME_DIR or the temp folder) and takes ``usable_cpus() // runs`` threads, the
    local ranks of a torchrun counted as runs too. ``refresh()``, called between training
    steps, looks again every few seconds, so a long run gives cores up when another starts and
    takes them back when it ends. Files of runs that died are removed by whoever looks next.
    Where the folder cannot be written, the run counts only itself.
    """

    REFRESH_SECONDS = 5.0

    def __init__(self, folder: Path | None = None, usable: int | None = None) -> None:
        self.folder = folder or _share_folder()
        self.usable = usable or usable_cpus()
        self.entry: Path | None = None
        self.current = 0
        self._checked = 0.0

    def join(self, pid: int | None = None) -> int:
        """Register ``pid`` (this process) and return its fair share of threads."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.entry = self.folder / str(pid or os.getpid())
            self.entry.touch()
            atexit.register(self.leave)
        except OSError:
            self.entry = None
        self.current = self.threads()
        self._checked = time.monotonic()
        return self.current

    def threads(self) -> int:
        local_ranks = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
        return max(1, self.usable // max(1, local_ranks, self._runs()))

    def refresh(self) -> int:
        """Re-read how many runs share the CPUs (at most every REFRESH_SECONDS) and set
        torch's threads to the new share; returns the threads in use."""
        now = time.monotonic()
        if self.entry is None or now - self._checked < self.REFRESH_SECONDS:
            return self.current
        self._checked = now
        n = self.threads()
        if n != self.current:
            torch.set_num_threads(n)
            self.current = n
        return n

    def leave(self) -> None:
        if self.entry is not None:
            self.entry.unlink(missing_ok=True)
            self.entry = None

    def _runs(self) -> int:
        runs = 0
        try:
            entries = list(self.folder.iterdir())
        except OSError:
            return 1
        for entry in entries:
            if entry.name.isdigit() and _alive(int(entry.name)):
                runs += 1
            else:
                entry.unlink(missing_ok=True)
        return max(1, runs)


def _share_folder() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    user = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return Path(base) / f"faceswap_gan-{user}" / "runs"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists, owned by someone else
    return True


def cpu_name() -> str:
    """The CPU's model name and whether it runs bf16 natively, for benchmark reports."""
    name = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    return f"{name} ({'bf16 hardware' if cpu_supports_bf16() else 'no bf16 hardware: fp32'})"


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
