"""Step 2 (the paper's recipe): with G frozen, the encoder learns to recover z."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import CPU, write_portrait_crops

from faceswap_gan.config import load_pipeline
from faceswap_gan.models.checkpoint import load_face_model
from faceswap_gan.training.loop import TrainRequest, train
from faceswap_gan.training.previews import read_metrics
from faceswap_gan.training.step2 import z_error
from faceswap_gan.workspace import resolve_workspace


@pytest.mark.slow
def test_step2_lowers_the_z_error(tmp_path: Path) -> None:
    ws = resolve_workspace(tmp_path / "ws")
    write_portrait_crops(ws.faces_dir, size=32, count=10)
    # Enough step-1 steps for G's batch-norm running statistics to leave their initial values,
    # so the eval-mode G that step 2 freezes depends on z.
    train(TrainRequest(ws, 1, ws.model_dir(), load_pipeline("tiny"), steps=30))
    pipeline = load_pipeline("tiny")
    pipeline.train2.recon_weight = 0.0  # the paper's loss only: MSE(E(G(z, c)), z)
    pipeline.train2.lr = 1e-3
    pipeline.train2.batch_size = 16
    pipeline.train2.log_every = 10
    pipeline.train2.checkpoint_every = 1000
    pipeline.train2.preview_every = 1000
    req = TrainRequest(ws, 2, ws.model_dir(), pipeline, steps=1)
    train(req)
    before = load_face_model(ws.model_dir(), CPU)
    err_before = z_error(before.encoder, before.generator, 256, seed=9, device=CPU)
    req.steps = 100
    summary = train(req)
    assert (summary.start_step, summary.end_step) == (1, 100)
    after = load_face_model(ws.model_dir(), CPU)
    # held-out z, E in eval mode (as at render time)
    err_after = z_error(after.encoder, after.generator, 256, seed=9, device=CPU)
    assert err_before > 0.25  # about Var(U[-1, 1]) = 1/3: an untrained E knows nothing of z
    assert err_after < 0.4 * err_before, (err_before, err_after)
    rows = read_metrics(ws.model_dir() / "logs" / "step2" / "metrics.jsonl")
    assert rows[-1]["z_mse"] < 0.5 * rows[1]["z_mse"]


def test_translation_loss_and_the_bounded_code(tmp_path: Path) -> None:
    """Ours: D's class loss on G(E(x), c') is logged and trained; E's code is brought into
    G's prior by tanh (a gradient everywhere), and its saturation is logged."""
    import numpy as np

    from faceswap_gan.models.inference import Translator
    from faceswap_gan.training.data import load_faces

    ws = resolve_workspace(tmp_path / "ws")
    write_portrait_crops(ws.faces_dir, size=32, count=10)
    train(TrainRequest(ws, 1, ws.model_dir(), load_pipeline("tiny"), steps=10))
    pipeline = load_pipeline("tiny")
    assert pipeline.model.z_bound == "tanh"
    pipeline.train2.translate_weight = 1.0
    pipeline.train2.log_every = 1
    train(TrainRequest(ws, 2, ws.model_dir(), pipeline, steps=3))
    rows = read_metrics(ws.model_dir() / "logs" / "step2" / "metrics.jsonl")
    assert all(np.isfinite(r["translate_ce"]) and r["translate_ce"] >= 0 for r in rows)
    assert all(0 <= r["z_saturated"] <= 1 and r["z_spread"] > 0 for r in rows)
    model = load_face_model(ws.model_dir(), CPU)
    translator = Translator(model, CPU, autocast=False)
    faces = load_faces(ws, model.speakers, size=32)
    crops = faces.images.permute(0, 2, 3, 1).numpy()
    raw = model.encoder.raw(torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 127.5 - 1)
    z = translator.encode(crops)
    assert np.abs(z).max() < 1.0
    np.testing.assert_allclose(z, torch.tanh(raw).detach().numpy(), atol=1e-4)


def test_settings_with_the_old_z_clamp_still_load_as_a_clamped_code() -> None:
    """Checkpoints and presets from before model.z_bound said train2.z_clamp = true."""
    from faceswap_gan.config import pipeline_from_dict
    from faceswap_gan.models.checkpoint import spec_from_meta

    old = {"model": {"size": 32}, "train2": {"z_clamp": True, "steps": 5}}
    pipeline = pipeline_from_dict("old", old)
    assert pipeline.model.z_bound == "clamp" and pipeline.train2.steps == 5
    assert pipeline_from_dict("old", {"model": {"size": 32}, "train2": {"z_clamp": False}}).model.z_bound == "none"
    spec = {"size": 32, "z_dim": 8, "n_classes": 2, "embed_dim": 4, "g_width": 8, "d_width": 8,
            "spectral_norm": False}
    assert spec_from_meta({"spec": spec, "pipeline": old}, Path(".")).z_bound == "clamp"
    assert spec_from_meta({"spec": spec}, Path(".")).z_bound == "none"
