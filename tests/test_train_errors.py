"""`faceswap train` on bad input: one clear line, exit status 1, nothing lost; Ctrl-C saves."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import TINY_PRESET, run_cli, write_portrait_crops

from faceswap_gan.cli import main
from faceswap_gan.training.loop import TrainRequest, train
from faceswap_gan.workspace import resolve_workspace


def test_help_shows_an_example(capsys: pytest.CaptureFixture) -> None:
    main(["train", "--help"])
    out = capsys.readouterr().out
    assert "faceswap train --step 1" in out and "--speakers" in out and "resumes" in out


def test_user_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ws = tmp_path / "ws"
    base = ["train", "--workspace", str(ws), "--pipeline", "tiny"]
    code, err = run_cli([*base, "--step", "1"], capsys, stdout=False)
    assert code == 1 and err.startswith("error: training needs crops of at least two speakers")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1

    code, err = run_cli([*base, "--step", "2"], capsys, stdout=False)
    assert code == 1 and "no step-1 checkpoint" in err and "faceswap train --step 1" in err

    write_portrait_crops(ws / "faces", size=32, count=4)
    code, err = run_cli([*base, "--step", "1", "--speakers", "astronaut,nobody"], capsys,
                        stdout=False)
    assert code == 1 and "nobody" in err and "astronaut, hopper" in err

    code, err = run_cli([*base, "--step", "1", "--steps", "2"], capsys, stdout=False)
    assert code == 0
    # the same model with another architecture: refused, checkpoint untouched
    before = (ws / "models" / "default" / "step1" / "model.safetensors").read_bytes()
    code, err = run_cli(["train", "--workspace", str(ws), "--pipeline", "paper", "--step", "1"],
                        capsys, stdout=False)
    assert code == 1 and "another architecture" in err
    assert (ws / "models" / "default" / "step1" / "model.safetensors").read_bytes() == before
    code, err = run_cli([*base, "--step", "2", "--speakers", "nobody"], capsys, stdout=False)
    assert code == 1 and "knows astronaut, hopper" in err


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ws = tmp_path / "ws"
    write_portrait_crops(ws / "faces", size=32, count=4)
    code, _ = run_cli(["train", "--workspace", str(ws), "--pipeline", "tiny", "--step", "1",
                       "--steps", "2"], capsys, stdout=False)
    assert code == 0
    model = ws / "models" / "default"
    good = (model / "step1" / "model.safetensors").read_bytes()
    # An absurd learning rate blows the weights up to inf within a step or two.
    bad = tmp_path / "explode.toml"
    bad.write_text(TINY_PRESET.read_text().replace("[train1]\n", "[train1]\nlr = 1e30\n"))
    code, err = run_cli(["train", "--workspace", str(ws), "--pipeline", str(bad), "--step", "1",
                         "--steps", "10"], capsys, stdout=False)
    assert code == 1, err
    assert "NaN or infinite" in err and "last good checkpoint (step 2) is kept" in err
    assert (model / "step1" / "model.safetensors").read_bytes() == good
    assert json.loads((model / "step1" / "model.json").read_text())["step"] == 2


@pytest.mark.slow
def test_ctrl_c_saves_and_the_same_command_resumes(tmp_path: Path) -> None:
    ws = resolve_workspace(tmp_path / "ws")
    write_portrait_crops(ws.faces_dir, size=32, count=4)
    pipeline = tmp_path / "slowsave.toml"
    pipeline.write_text(TINY_PRESET.read_text().replace("checkpoint_every = 2", "checkpoint_every = 10000"))
    cmd = [sys.executable, "-m", "faceswap_gan.cli", "train", "--workspace", str(ws.root),
           "--pipeline", str(pipeline), "--step", "1", "--steps", "5000"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = ws.model_dir() / "logs" / "step1" / "metrics.jsonl"
    deadline = time.time() + 40
    while time.time() < deadline and (not metrics.exists() or len(metrics.read_text().splitlines()) < 3):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=40)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    saved = json.loads((ws.model_dir() / "step1" / "model.json").read_text())["step"]
    assert saved >= 3
    # the same command with a total just past the saved step picks up from there
    summary = train(TrainRequest(ws, 1, ws.model_dir(), None, steps=saved + 2))
    assert (summary.start_step, summary.end_step) == (saved, saved + 2)
    assert summary.total_steps == saved + 2 and not os.environ.get("WORLD_SIZE")
