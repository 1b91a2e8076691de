"""Data-parallel training: two CPU processes under torchrun with the gloo backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import write_portrait_crops

from faceswap_gan.training.previews import read_metrics
from faceswap_gan.workspace import resolve_workspace

pytestmark = pytest.mark.slow  # torchrun subprocesses


def test_torchrun_two_cpu_processes(tmp_path: Path) -> None:
    ws = resolve_workspace(tmp_path / "ws")
    write_portrait_crops(ws.faces_dir, size=32, count=6)
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for step in ("1", "2"):
        cmd = [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "faceswap_gan.cli", "train",
               "--step", step, "--pipeline", "tiny", "--workspace", str(ws.root), "--device", "cpu"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, check=False)
        assert proc.returncode == 0, proc.stderr[-3000:]
    model = ws.model_dir()
    meta = json.loads((model / "step1" / "model.json").read_text())
    assert meta["world_size"] == 2 and meta["step"] == 4
    # only rank 0 logs: one line per step, no duplicates
    assert [r["step"] for r in read_metrics(model / "logs" / "step1" / "metrics.jsonl")] == [1, 2, 3, 4]
    assert json.loads((model / "step2" / "model.json").read_text())["step"] == 4
    # each rank drew half of the batch of 8: images/s counts both
    rows = read_metrics(model / "logs" / "step2" / "metrics.jsonl")
    assert all(r["z_mse"] > 0 for r in rows)
    assert not list(model.glob(".step*"))  # no temporary folders left behind


RANK_SCRIPT = """
import sys, torch
sys.path.insert(0, {tests!r})
from faceswap_gan.config import load_pipeline
from faceswap_gan.models.networks import NetworkSpec
from faceswap_gan.training import ddp
from faceswap_gan.training.data import load_faces
from faceswap_gan.training.step1 import Step1Trainer
from faceswap_gan.workspace import resolve_workspace
ctx, device = ddp.init_from_env(torch.device("cpu"))
p = load_pipeline("tiny")
ws = resolve_workspace({ws!r})
faces = load_faces(ws, ["astronaut", "hopper"], 32)
t = Step1Trainer(NetworkSpec.from_config(p.model, 2), p, faces, device, seed=ctx.rank * 100, dist=ctx)
for step in range(3):
    t.train_step(step)
g = torch.cat([q.detach().reshape(-1) for q in t.g.parameters()])
d = torch.cat([q.detach().reshape(-1) for q in t.d.parameters()])
out = {out!r} + "/rank%d.txt" % ctx.rank
open(out, "w").write("%r %r" % (g.double().sum().item(), d.double().sum().item()))
ddp.shutdown(ctx)
"""


def test_ranks_stay_in_sync(tmp_path: Path) -> None:
    """Different seeds per rank on purpose: the broadcast at start and the averaged gradients
    must still leave both ranks with identical weights."""
    ws = resolve_workspace(tmp_path / "ws")
    write_portrait_crops(ws.faces_dir, size=32, count=6)
    script = tmp_path / "ranks.py"
    script.write_text(RANK_SCRIPT.format(tests=str(Path(__file__).parent), ws=str(ws.root), out=str(tmp_path)))
    torchrun = Path(sys.executable).with_name("torchrun")
    proc = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node", "2", str(script)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"}, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    sums = [(tmp_path / f"rank{r}.txt").read_text().split() for r in (0, 1)]
    assert sums[0] == sums[1]
