"""CPU threads: from the CPUs this process may use, --threads, or $FACESWAP_THREADS."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from faceswap_gan.device import THREADS_ENV, CoreShare, set_cpu_threads, usable_cpus
from faceswap_gan.errors import FaceswapError


def test_threads_follow_the_affinity_mask() -> None:
    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("no CPU affinity on this platform")
    code = ("import os; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]}); "
            "from faceswap_gan.device import usable_cpus, set_cpu_threads; "
            "print(usable_cpus(), set_cpu_threads())")
    env = {k: v for k, v in os.environ.items() if k not in (THREADS_ENV, "OMP_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True).stdout.split()
    assert out == ["1", "1"]
    assert 1 <= usable_cpus() <= (os.cpu_count() or 1)


def test_requested_and_environment_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    try:
        assert set_cpu_threads(1) == 1 and torch.get_num_threads() == 1
        monkeypatch.setenv(THREADS_ENV, "2")
        assert set_cpu_threads() == 2 and torch.get_num_threads() == 2
        monkeypatch.setenv(THREADS_ENV, "many")
        with pytest.raises(FaceswapError, match="whole number"):
            set_cpu_threads()
        with pytest.raises(FaceswapError, match="at least 1"):
            set_cpu_threads(0)
    finally:
        torch.set_num_threads(before)


def test_runs_share_the_cpus_and_take_them_back(tmp_path) -> None:
    """Two runs registered in one folder get half the CPUs each; when one dies the other takes
    them all back at its next refresh (a real second process, not a fake pid)."""
    before = torch.get_num_threads()
    first = CoreShare(tmp_path, usable=4)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert first.join() == 4
        assert CoreShare(tmp_path, usable=4).join(pid=other.pid) == 2
        first._checked = 0.0  # as if REFRESH_SECONDS had passed
        assert first.refresh() == 2 and torch.get_num_threads() == 2
        other.kill()
        other.wait()
        first._checked = 0.0
        assert first.refresh() == 4 and torch.get_num_threads() == 4
        assert sorted(p.name for p in tmp_path.iterdir()) == [str(os.getpid())]  # dead run's file gone
        first.leave()
        assert list(tmp_path.iterdir()) == []
    finally:
        other.kill()
        torch.set_num_threads(before)
