"""Ours: a swap follows its source only while E's code is alive and G depends on it.

Mode seeking in step 1, a tanh-bounded code with a prior penalty, a speaker-blind code
(code discriminator) and a latent cycle in step 3, the checks that stop a dead code, training
by time, and the measure of following in eval.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import run_cli, write_face_folders, write_portrait_crops

from faceswap_gan.config import load_pipeline
from faceswap_gan.errors import FaceswapError
from faceswap_gan.evaluation.evaluate import FaceScore
from faceswap_gan.evaluation.report import mouth_correlation
from faceswap_gan.models.checkpoint import read_meta, read_stage, stage_dir
from faceswap_gan.models.networks import code_stats
from faceswap_gan.training import losses
from faceswap_gan.training.loop import TrainRequest, pending_stages, time_budgets, train
from faceswap_gan.training.previews import read_metrics
from faceswap_gan.workspace import Workspace, resolve_workspace


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    workspace = resolve_workspace(tmp_path / "ws")
    write_portrait_crops(workspace.faces_dir, size=32, count=12)
    return workspace


def test_mode_seeking_and_spread_tell_a_collapsed_generator_from_a_live_one() -> None:
    rng = torch.Generator().manual_seed(0)
    z = torch.rand(16, 8, generator=rng) * 2 - 1
    labels = torch.tensor([0, 1] * 4 * 2)
    one_face = torch.rand(1, 3, 16, 16, generator=rng).expand(16, 3, 16, 16) * 2 - 1
    varied = torch.rand(16, 3, 16, 16, generator=rng) * 2 - 1
    collapsed = one_face + 0.01 * (torch.rand(16, 3, 16, 16, generator=rng) - 0.5)
    assert losses.mode_seeking(collapsed, z) > 20 * losses.mode_seeking(varied, z)
    assert losses.spread(collapsed, labels) < 0.05 * losses.spread(varied, labels)
    # A code pinned at the edges is saturated; a uniform one is not, and spreads.
    pinned = code_stats(torch.sign(torch.randn(64, 8, generator=rng)))
    uniform = code_stats(torch.rand(64, 8, generator=rng) * 1.9 - 0.95)
    assert pinned["z_saturated"] == 1.0 and uniform["z_saturated"] == 0.0
    assert uniform["z_spread"] > 0.4
    # The prior penalty is zero inside the limit and grows outside it.
    assert losses.z_prior(torch.full((4, 8), 1.9)) == 0
    assert losses.z_prior(torch.full((4, 8), 3.0)) > losses.z_prior(torch.full((4, 8), 2.5)) > 0


@pytest.mark.slow
def test_step3_keeps_the_code_alive_and_learns_a_speaker_blind_code(ws: Workspace) -> None:
    p = load_pipeline("tiny")
    p.train3.log_every = 5
    model_dir = ws.model_dir()
    for stage, steps in ((1, 10), (2, 10), (3, 40)):
        train(TrainRequest(ws, stage, model_dir, p, steps=steps))
    rows = read_metrics(model_dir / "logs" / "step1" / "metrics.jsonl")
    assert all(r["g_spread"] > 0 and r["real_spread"] > 0 and r["g_diversity"] > 0 for r in rows)
    rows = read_metrics(model_dir / "logs" / "step3" / "metrics.jsonl")
    assert all(r["z_saturated"] < 0.2 for r in rows), [r["z_saturated"] for r in rows]
    assert all(0 <= r["code_acc"] <= 1 and r["cycle"] >= 0 for r in rows)
    s3 = read_stage(model_dir, 3)
    assert any(k.startswith("code_discriminator.") for k in s3.weights)
    assert "opt_code" in s3.meta["optimizers"]
    # Resuming restores the code discriminator with the rest.
    again = train(TrainRequest(ws, 3, model_dir, None, steps=42))
    assert (again.start_step, again.end_step) == (40, 42)


@pytest.mark.slow
def test_a_dead_code_stops_step2_with_its_checkpoint_kept(ws: Workspace) -> None:
    """The first step-3 recipe's failure: a hard clamp, no prior penalty, and E's outputs
    leave [-1, 1] for good. The check stops the run and says so."""
    p = load_pipeline("tiny")
    p.model.z_bound = "clamp"
    p.train2.prior_weight = 0.0
    p.train2.lr = 0.05  # drives E's outputs far outside the prior within a few steps
    p.train2.max_saturated = 0.5
    p.train2.log_every = 2
    model_dir = ws.model_dir()
    train(TrainRequest(ws, 1, model_dir, p, steps=4))
    with pytest.raises(FaceswapError, match=r"code components sit at \+-1"):
        train(TrainRequest(ws, 2, model_dir, p, steps=40))
    saved = read_meta(stage_dir(model_dir, 2))
    assert 0 < saved["step"] < 40


@pytest.mark.slow
def test_train_by_minutes_splits_the_time_and_resumes(ws: Workspace, capsys) -> None:
    p = load_pipeline("debate")
    budgets = time_budgets(p, 10)
    assert sum(budgets.values()) == pytest.approx(600)
    assert budgets[3] > budgets[1] > budgets[2]  # the preset's time_share: 0.7, 0.2, 0.1
    assert time_budgets(p, 10, [3]) == {3: pytest.approx(600)}

    args = ["train", "--workspace", str(ws.root), "--pipeline", "tiny", "--minutes", "0.1"]
    code, out = run_cli(args, capsys)
    assert code == 0, out
    tiny = load_pipeline("tiny")
    for stage, seconds in time_budgets(tiny, 0.1).items():
        meta = read_meta(stage_dir(ws.model_dir(), stage))
        assert meta["train_seconds"] >= 0.98 * seconds and meta["budget_seconds"] == pytest.approx(seconds, abs=1e-2)
        assert meta["step"] > 0
    assert pending_stages(ws.model_dir(), tiny, time_budgets(tiny, 0.1)) == []
    code, out = run_cli(args, capsys)
    assert code == 0 and "every step" in out and "--minutes" in out
    # More minutes continue each step where it stopped.
    assert pending_stages(ws.model_dir(), tiny, time_budgets(tiny, 0.2)) == [1, 2, 3]
    code, out = run_cli([*args[:-1], "x"], capsys)
    assert code != 0 and "Traceback" not in out
    code, out = run_cli([*args, "--steps", "3", "--step", "1"], capsys)
    assert code == 1 and "--minutes" in out


@pytest.mark.slow
def test_expression_term_fits_keypoints_from_the_alignments(tmp_path: Path) -> None:
    """Crops extract wrote (with their meshes in the alignments) give step 3 a keypoint
    regressor; its error falls, and the translations' expression error is logged."""
    from faceswap_gan.training.data import load_faces
    from faceswap_gan.training.expression import KEYPOINTS, crop_keypoints, expression

    ws = resolve_workspace(tmp_path / "ws")
    write_face_folders(ws.root)
    faces = load_faces(ws, ws.speakers(), 32)
    points = crop_keypoints(ws, faces.files, 32)
    assert points.shape == (len(faces.files), len(KEYPOINTS), 2) and not torch.isnan(points).any()
    assert 0.2 < float(points.min()) and float(points.max()) < 0.8  # eyes and mouth mid-crop
    opening = expression(points)
    assert (opening >= 0).all() and (opening[:, 1:] > 0.1).all()  # both portraits' eyes are open
    p = load_pipeline("tiny")
    p.train3.expression_weight = 1.0
    p.train3.log_every = 1
    model_dir = ws.model_dir()
    for stage, steps in ((1, 2), (2, 2), (3, 30)):
        train(TrainRequest(ws, stage, model_dir, p, steps=steps))
    rows = read_metrics(model_dir / "logs" / "step3" / "metrics.jsonl")
    assert np.mean([r["keypoint_l1"] for r in rows[-5:]]) < 0.5 * np.mean([r["keypoint_l1"] for r in rows[:3]])
    assert all(r["expression"] >= 0 for r in rows)
    assert any(k.startswith("keypoint_regressor.") for k in read_stage(model_dir, 3).weights)


def _faces(ref: np.ndarray, swap: np.ndarray, track: int) -> list[FaceScore]:
    return [FaceScore(frame=i, speaker="b", found=True, track=track, ref_mouth=float(r),
                      swap_mouth=float(s)) for i, (r, s) in enumerate(zip(ref, swap))]


def test_mouth_correlation_follows_movement_not_level() -> None:
    t = np.linspace(0, 6 * math.pi, 60)
    ref = 0.1 + 0.05 * np.sin(t)
    rng = np.random.default_rng(0)
    # Two shots of the same movement; the second swap sits at another level: still following.
    follows = _faces(ref, ref + 0.005 * rng.standard_normal(60), 0) + \
        _faces(ref, ref + 0.2 + 0.005 * rng.standard_normal(60), 1)
    assert mouth_correlation(follows) > 0.95
    ignores = _faces(ref, 0.1 + 0.005 * rng.standard_normal(60), 0)
    assert abs(mouth_correlation(ignores)) < 0.3
    opposite = _faces(ref, 0.2 - ref, 0)
    assert mouth_correlation(opposite) < -0.99
    assert math.isnan(mouth_correlation(_faces(ref[:3], ref[:3], 0)))  # too short to say

