"""Pipeline presets and the shared CLI behaviour (error lines, exit codes, workspace)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from faceswap_gan.config import available_pipelines, load_pipeline
from faceswap_gan.errors import FaceswapError
from faceswap_gan.workspace import WORKSPACE_ENV, resolve_workspace


def test_shipped_presets_load_and_paper_matches_the_authors_settings() -> None:
    assert {"paper", "debate", "tiny"} <= set(available_pipelines())
    paper = load_pipeline("paper")
    assert (paper.model.size, paper.model.z_dim) == (64, 100)
    assert (paper.model.g_width, paper.model.d_width) == (64, 64)
    assert paper.train1.lr == pytest.approx(2e-4) and paper.train1.beta1 == pytest.approx(0.5)
    assert paper.train1.batch_size == 64 and paper.train1.g_steps_per_d == 2
    assert paper.train1.loss == "bce" and paper.train1.ema_decay == 0.0
    assert paper.train2.lr == pytest.approx(1e-4) and paper.train2.steps == 30000
    assert paper.train2.recon_weight == 0.0
    assert load_pipeline(None).name == "debate"


def test_preset_from_a_path_and_its_checks(tmp_path: Path) -> None:
    good = tmp_path / "mine.toml"
    good.write_text("[model]\nsize = 128\n[extract]\ncrop_size = 128\n")
    assert load_pipeline(str(good)).model.size == 128

    bad_key = tmp_path / "typo.toml"
    bad_key.write_text("[model]\nsizee = 64\n")
    with pytest.raises(FaceswapError, match="unknown setting model.sizee"):
        load_pipeline(str(bad_key))

    mismatch = tmp_path / "mismatch.toml"
    mismatch.write_text("[model]\nsize = 128\n[extract]\ncrop_size = 64\n")
    with pytest.raises(FaceswapError, match="must equal"):
        load_pipeline(str(mismatch))

    wrong_type = tmp_path / "type.toml"
    wrong_type.write_text('[train1]\nsteps = "many"\n')
    with pytest.raises(FaceswapError, match="train1.steps must be int"):
        load_pipeline(str(wrong_type))

    with pytest.raises(FaceswapError, match="unknown pipeline 'nope'"):
        load_pipeline("nope")


def test_workspace_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(WORKSPACE_ENV, raising=False)
    assert resolve_workspace().root == (tmp_path / "workspace").resolve()
    monkeypatch.setenv(WORKSPACE_ENV, str(tmp_path / "env_ws"))
    assert resolve_workspace().root == (tmp_path / "env_ws").resolve()
    assert resolve_workspace(tmp_path / "flag_ws").root == (tmp_path / "flag_ws").resolve()
    (tmp_path / "afile").write_text("x")
    with pytest.raises(FaceswapError, match="not a folder"):
        resolve_workspace(tmp_path / "afile")


def _faceswap(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "faceswap_gan.cli", *args],
        cwd=cwd, capture_output=True, text=True, timeout=300,
    )


def test_cli_help_lists_every_command_and_each_shows_an_example(tmp_path: Path) -> None:
    top = _faceswap("--help", cwd=tmp_path)
    assert top.returncode == 0
    for name in ("samples", "extract", "train", "render", "translate", "eval"):
        assert name in top.stdout
        sub = _faceswap(name, "--help", cwd=tmp_path)
        assert sub.returncode == 0, sub.stderr
        assert "faceswap " + name in sub.stdout, f"{name} --help shows no example"


def test_cli_user_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    result = _faceswap("extract", "missing.mp4", "--speaker", "a", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr
    result = _faceswap("train", "--step", "1", "--pipeline", "nope", cwd=tmp_path)
    assert result.returncode == 1
    assert "unknown pipeline 'nope'" in result.stderr and "Traceback" not in result.stderr
    unknown = _faceswap("frobnicate", cwd=tmp_path)
    assert unknown.returncode == 2 and "No such command" in unknown.stderr
