"""Ours: per-speaker output blocks in G and step 3 (E and G fine-tuned on warped real crops)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import CPU, run_cli, write_portrait_crops

from faceswap_gan.config import ModelConfig, load_pipeline
from faceswap_gan.errors import FaceswapError
from faceswap_gan.faces.align import crop_template
from faceswap_gan.models.checkpoint import load_face_model
from faceswap_gan.models.inference import Translator
from faceswap_gan.models.networks import NetworkSpec, build_networks
from faceswap_gan.training.data import load_faces
from faceswap_gan.training.loop import TrainRequest, pending_stages, train
from faceswap_gan.training.losses import ssim_map
from faceswap_gan.training.previews import read_metrics
from faceswap_gan.training.step3 import focus_weight_map
from faceswap_gan.training.warp import random_warp
from faceswap_gan.workspace import Workspace, resolve_workspace


def heads_spec(n_classes: int = 3, head_blocks: int = 1) -> NetworkSpec:
    config = ModelConfig(size=32, z_dim=8, g_width=8, d_width=8, g_condition="heads",
                         g_head_blocks=head_blocks)
    return NetworkSpec.from_config(config, n_classes)


def test_each_speaker_is_drawn_by_its_own_head() -> None:
    g, _, _ = build_networks(heads_spec(), generator=torch.Generator().manual_seed(1))
    g.eval()
    assert g.embed is None and len(g.heads) == 3  # the trunk never sees the label
    z = torch.rand(6, 8) * 2 - 1
    labels = torch.tensor([2, 0, 1, 0, 2, 1])
    mixed = g(z, labels)
    # A mixed batch comes back in its own order, each face from its speaker's head.
    for i in range(6):
        alone = g(z[i:i + 1], labels[i:i + 1])
        torch.testing.assert_close(mixed[i:i + 1], alone, atol=1e-5, rtol=0)
    # Changing speaker 1's head changes speaker 1's faces only.
    with torch.no_grad():
        for p in g.heads[1].parameters():
            p.add_(0.5)
    changed = g(z, labels)
    ones = labels == 1
    assert not torch.allclose(changed[ones], mixed[ones])
    torch.testing.assert_close(changed[~ones], mixed[~ones])


def test_head_blocks_must_fit_the_size() -> None:
    from faceswap_gan.config import pipeline_from_dict

    with pytest.raises(FaceswapError, match="g_head_blocks"):
        pipeline_from_dict("x", {"extract": {"crop_size": 32}, "model": {
            "size": 32, "g_condition": "heads", "g_head_blocks": 3}})
    with pytest.raises(FaceswapError, match="g_condition"):
        pipeline_from_dict("x", {"model": {"g_condition": "label"}})


def test_warp_is_seeded_and_off_at_zero() -> None:
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    assert random_warp(x, torch.Generator().manual_seed(0), 0.0) is x
    a = random_warp(x, torch.Generator().manual_seed(3), 1.0)
    b = random_warp(x, torch.Generator().manual_seed(3), 1.0)
    torch.testing.assert_close(a, b)
    assert (a - x).abs().mean() > 0.05  # it moves the pixels
    smooth = torch.linspace(-1, 1, 32).expand(1, 3, 32, 32)
    warped = random_warp(smooth, torch.Generator().manual_seed(4), 1.0)
    assert (warped - smooth).abs().mean() < 0.15  # but only a little: a face stays a face


def test_ssim_and_focus_map() -> None:
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    torch.testing.assert_close(ssim_map(x, x), torch.ones(2, 1, 32, 32), atol=1e-4, rtol=0)
    noisy = (x + 0.3 * torch.randn_like(x)).clamp(-1, 1)
    assert ssim_map(x, noisy).mean() < 0.9
    w = focus_weight_map(64, 0.25, 2.0)[0, 0].numpy()
    t = crop_template(64, 0.25)
    eye = np.round(t[:2].mean(0)).astype(int)
    assert w[eye[1], eye[0]] > 2.5 and w.min() == pytest.approx(1.0, abs=0.01)
    assert focus_weight_map(64, 0.25, 0.0).eq(1).all()


def _heads_pipeline(steps3: int):
    p = load_pipeline("tiny")
    assert p.model.g_condition == "heads"  # tiny is the default recipe, made small
    p.train3.steps = steps3
    for cfg in (p.train1, p.train2, p.train3):  # previews and loss curves cost more than steps
        cfg.log_every, cfg.checkpoint_every, cfg.preview_every = 5, 1000, 1000
    return p


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    workspace = resolve_workspace(tmp_path_factory.mktemp("step3") / "ws")
    write_portrait_crops(workspace.faces_dir, size=32, count=12)
    return workspace


@pytest.mark.slow
def test_step3_learns_to_swap_identity(ws: Workspace) -> None:
    """After step 3, a translation looks like the target speaker's crops, not the source's."""
    p = _heads_pipeline(steps3=150)
    p.train3.lr = 1e-3
    p.train3.warp_off = 0.3
    p.train3.ema_decay = 0.0  # an EMA of 0.999 barely moves in 150 steps
    model_dir = ws.model_dir("swap")
    for stage, steps in ((1, 20), (2, 10), (3, None)):
        train(TrainRequest(ws, stage, model_dir, p, steps=steps))
    rows = read_metrics(model_dir / "logs" / "step3" / "metrics.jsonl")
    assert rows[-1]["recon_l1"] < 0.6 * rows[0]["recon_l1"]
    model = load_face_model(model_dir, CPU)
    assert model.meta["encoder"]["stage"] == 3
    faces = load_faces(ws, model.speakers, size=32)
    crops = faces.images.permute(0, 2, 3, 1).numpy()
    labels = faces.labels.numpy()
    means = [crops[labels == c].astype(np.float32).mean(0) for c in (0, 1)]
    out = Translator(model, CPU, autocast=False).translate(crops, 1 - labels).astype(np.float32)
    to_target = [np.abs(o - means[1 - c]).mean() for o, c in zip(out, labels)]
    to_source = [np.abs(o - means[c]).mean() for o, c in zip(out, labels)]
    assert np.mean(np.less(to_target, to_source)) >= 0.9, (np.mean(to_target), np.mean(to_source))
    assert np.mean(to_target) < 0.8 * np.mean(to_source)


@pytest.mark.slow
def test_step3_resumes_goes_stale_and_runs_from_the_cli(ws: Workspace, capsys) -> None:
    p = _heads_pipeline(steps3=4)
    model_dir = ws.model_dir("cli")
    assert pending_stages(model_dir, p) == [1, 2, 3]
    for stage in (1, 2):
        train(TrainRequest(ws, stage, model_dir, p))
    assert pending_stages(model_dir, p) == [3]
    first = train(TrainRequest(ws, 3, model_dir, p, steps=2))
    again = train(TrainRequest(ws, 3, model_dir, None))
    assert (first.end_step, again.start_step, again.end_step) == (2, 2, 4)
    assert pending_stages(model_dir, None) == []
    # Step 2 trained further: step 3 no longer fits it and is never mixed in.
    train(TrainRequest(ws, 2, model_dir, None, steps=6))
    with pytest.raises(FaceswapError, match="--step 3"):
        load_face_model(model_dir, CPU)
    assert pending_stages(model_dir, None) == [3]
    # `faceswap train` with no --step runs what is left; then there is nothing to do.
    args = ["train", "--workspace", str(ws.root), "--model", "cli"]
    code, out = run_cli(args, capsys)
    assert code == 0 and "step 3" in out, out
    assert load_face_model(model_dir, CPU).meta["encoder"]["step2_step"] == 6
    code, out = run_cli(args, capsys)
    assert code == 0 and "every step" in out
    code, out = run_cli([*args, "--steps", "5"], capsys)
    assert code == 1 and "--steps needs --step" in out


def test_paper_preset_has_no_step3_and_no_heads() -> None:
    p = load_pipeline("paper")
    assert p.model.g_condition == "input" and p.train3.steps == 0
    d = load_pipeline("debate")
    assert d.model.g_condition == "heads" and d.train3.steps > 0


def test_old_checkpoints_without_the_new_spec_fields_still_load(tmp_path: Path) -> None:
    """A step-1 checkpoint written before g_condition existed resumes and loads as "input"."""
    import json

    ws = resolve_workspace(tmp_path / "ws")
    write_portrait_crops(ws.faces_dir, size=32, count=4)
    p = load_pipeline("tiny")
    p.model.g_condition = "input"
    train(TrainRequest(ws, 1, ws.model_dir(), p, steps=1))
    meta_path = ws.model_dir() / "step1" / "model.json"
    meta = json.loads(meta_path.read_text())
    for key in ("g_condition", "g_head_blocks"):
        meta["spec"].pop(key)
        meta["pipeline"]["model"].pop(key)
    meta_path.write_text(json.dumps(meta))
    summary = train(TrainRequest(ws, 1, ws.model_dir(), None, steps=2))
    assert summary.end_step == 2
    assert load_face_model(ws.model_dir(), CPU, need_encoder=False).generator.embed is not None
