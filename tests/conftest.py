"""Shared fixtures: footage and a tiny model that several test modules use, built once per
session. Constants (REPO, SAMPLE_MODEL, CPU, ...) and plain helper functions are in
helpers.py: import them from there (``from helpers import CPU``), not from this file.

Markers: ``@pytest.mark.slow`` (declared in pyproject.toml) marks tests that take more than a
few seconds on one CPU core (training, sample footage, whole renders, subprocesses). For a
quick loop run the rest:

    .venv/bin/python -m pytest -m "not slow"

and the whole suite (``pytest``) before committing. A fast test must not use a slow fixture
(that would build it in the quick loop too): such a test is slow as well.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers import make_eval_footage, train_tiny_model


@pytest.fixture(scope="session")
def tiny_model_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with extract-style crops of both portraits (speaker_a, speaker_b) and the
    `tiny` preset trained on them for a few steps (models/default, speaker gate fitted).
    Trained once per session; do not write into it: use ``tiny_workspace``."""
    root = tmp_path_factory.mktemp("tiny_model")
    train_tiny_model(root)
    return root


@pytest.fixture(scope="module")
def tiny_workspace(tiny_model_source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of ``tiny_model_source`` for one test module to write into."""
    root = tmp_path_factory.mktemp("tiny_ws")
    shutil.copytree(tiny_model_source, root, dirs_exist_ok=True)
    return root


@pytest.fixture(scope="session")
def eval_footage_clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``make_eval_footage`` with 8 frames: keys clip, truth, speaker_a, speaker_b. Shared by
    the eval tests; do not write beside the clips."""
    return make_eval_footage(tmp_path_factory.mktemp("eval_footage"), frames=8)


@pytest.fixture(scope="module")
def eval_footage(eval_footage_clips: dict[str, Path],
                 tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The eval footage with a fresh (not yet created) ``workspace`` per test module, so one
    module's cached identity classifier or renders never reach another's."""
    return {**eval_footage_clips, "workspace": tmp_path_factory.mktemp("eval_ws") / "workspace"}
