"""`faceswap eval --model`: render the clip with a (tiny) trained model, then score it."""

from __future__ import annotations

import json

import pytest
from eval_footage import eval_cli, make_footage


@pytest.fixture(scope="module")
def footage(tmp_path_factory):
    folder = tmp_path_factory.mktemp("footage")
    paths = make_footage(folder, frames=8)
    paths["workspace"] = folder / "workspace"
    return paths


def test_eval_renders_with_a_tiny_model_end_to_end(footage):
    """--model: train the `tiny` preset for a few steps, render the clip with --swap, score it."""
    from render_fixtures import train_tiny_model  # the render tests' tiny-model helper

    model = train_tiny_model(footage["workspace"])
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
