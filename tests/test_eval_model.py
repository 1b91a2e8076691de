"""`faceswap eval --model`: render the clip with a (tiny) trained model, then score it."""

from __future__ import annotations

import json

import pytest
from helpers import eval_cli

pytestmark = pytest.mark.slow  # a tiny model trained, a clip rendered and scored


@pytest.fixture(scope="module")
def footage(eval_footage, tiny_workspace):
    """The eval footage, scored in a copy of the session's tiny-model workspace."""
    return {**eval_footage, "workspace": tiny_workspace}


def test_eval_renders_with_a_tiny_model_end_to_end(footage):
    """--model: the `tiny` preset trained for a few steps, render the clip with --swap, score it."""
    model = footage["workspace"] / "models" / "default"
    out = footage["workspace"] / "model.json"
    eval_cli(footage, "--model", str(model), "--pipeline", "tiny", "--json", str(out),
          "--device", "cpu")
    report = json.loads(out.read_text())
    rendered = next((footage["workspace"] / "eval").glob("debate_default_tiny_*.mp4"))
    assert report["rendered"] == str(rendered)
    assert report["recipe"] == "tiny"
    assert report["model"] == str(model)
    assert report["overall"]["frames"] == 8 and report["overall"]["faces"] == 16
    # Four training steps make no faces: identity fails and the targets are reported missed.
    assert report["overall"]["identity_acc"] < 0.95
    assert not report["targets"]["identity_acc"]["met"]
    # A second run reuses the render instead of rendering again.
    mtime = rendered.stat().st_mtime
    eval_cli(footage, "--model", str(model), "--pipeline", "tiny", "--json", str(out),
          "--device", "cpu")
    assert rendered.stat().st_mtime == mtime
