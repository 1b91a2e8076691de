"""Both training steps on the tiny preset with real portrait crops: outputs, resume, z error."""

from __future__ import annotations

import json

import cv2
import pytest
import torch
from helpers import CPU, write_portrait_crops

from faceswap_gan.config import load_pipeline
from faceswap_gan.models.checkpoint import load_face_model
from faceswap_gan.training.loop import TrainRequest, train
from faceswap_gan.training.previews import read_metrics
from faceswap_gan.workspace import Workspace, resolve_workspace


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    workspace = resolve_workspace(tmp_path_factory.mktemp("train") / "ws")
    write_portrait_crops(workspace.faces_dir, size=32, count=10)
    return workspace


def request(ws: Workspace, model: str, stage: int, steps: int | None = None, pipeline: str | None = "tiny",
            **kw) -> TrainRequest:
    return TrainRequest(workspace=ws, stage=stage, model_dir=ws.model_dir(model),
                        pipeline=load_pipeline(pipeline) if pipeline else None, steps=steps,
                        **kw)


def test_step1_then_step2_write_checkpoints_logs_and_previews(ws: Workspace) -> None:
    s1 = train(request(ws, "basic", 1))
    assert (s1.start_step, s1.end_step) == (0, 4)
    model_dir = ws.model_dir("basic")
    meta = json.loads((model_dir / "step1" / "model.json").read_text())
    assert meta["speakers"] == ["astronaut", "hopper"] and meta["step"] == 4
    assert meta["preset"] == "tiny" and meta["pipeline"]["model"]["size"] == 32
    rows = read_metrics(model_dir / "logs" / "step1" / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert all(r["loss_d"] > 0 and r["g_cls"] > 0 for r in rows)
    grid = cv2.imread(str(model_dir / "logs" / "step1" / "previews" / "step_0000004.png"))
    # a row per speaker, eight z per row; 32 px tiles shown at 64 px with 2 px gaps
    assert grid.shape[:2] == (2 * 66 + 2, 8 * 66 + 2)
    assert (model_dir / "logs" / "step1" / "loss.png").stat().st_size > 1000

    # Step 2 without --pipeline takes step 1's settings (tiny), as the CLI does.
    s2 = train(request(ws, "basic", 2, pipeline=None))
    assert s2.end_step == 4 and "recon_l1" in s2.losses
    meta2 = json.loads((model_dir / "step2" / "model.json").read_text())
    assert meta2["step1_step"] == 4 and meta2["preset"] == "tiny"
    grid2 = cv2.imread(str(model_dir / "logs" / "step2" / "previews" / "step_0000004.png"))
    # two crops per speaker; columns: real, reconstruction, the other speaker
    assert grid2.shape[:2] == (4 * 66 + 2, 3 * 66 + 2)
    model = load_face_model(model_dir, CPU)
    assert model.encoder is not None and model.speakers == ["astronaut", "hopper"]

    # Running the finished command again does nothing and keeps the checkpoint.
    again = train(request(ws, "basic", 1))
    assert (again.start_step, again.end_step) == (4, 4)


def test_resumed_run_matches_an_uninterrupted_one(ws: Workspace) -> None:
    train(request(ws, "straight", 1, steps=6))
    train(request(ws, "resumed", 1, steps=3))
    resumed = train(request(ws, "resumed", 1, steps=6))
    assert resumed.start_step == 3
    a = read_metrics(ws.model_dir("straight") / "logs" / "step1" / "metrics.jsonl")
    b = read_metrics(ws.model_dir("resumed") / "logs" / "step1" / "metrics.jsonl")
    assert [r["step"] for r in b] == [1, 2, 3, 4, 5, 6]
    keys = ["loss_d", "d_adv", "d_cls", "g_adv", "g_cls"]
    for ra, rb in zip(a, b):
        for k in keys:
            assert ra[k] == pytest.approx(rb[k], rel=1e-5, abs=1e-6), (ra["step"], k)
    wa = load_face_model(ws.model_dir("straight"), CPU, need_encoder=False)
    wb = load_face_model(ws.model_dir("resumed"), CPU, need_encoder=False)
    for (k, ta), tb in zip(wa.generator.state_dict().items(), wb.generator.state_dict().values()):
        assert torch.allclose(ta, tb, atol=1e-6), k


def test_step2_is_redone_when_step1_moves_on(ws: Workspace) -> None:
    from faceswap_gan.errors import FaceswapError

    train(request(ws, "moved", 1, steps=2))
    train(request(ws, "moved", 2, steps=2, pipeline=None))
    train(request(ws, "moved", 1, steps=4))  # step 1 continues: the encoder is now stale
    with pytest.raises(FaceswapError, match="run `faceswap train --step 2` again"):
        load_face_model(ws.model_dir("moved"), CPU)
    assert load_face_model(ws.model_dir("moved"), CPU, need_encoder=False).encoder is None
    redo = train(request(ws, "moved", 2, steps=2, pipeline=None))
    assert redo.start_step == 0  # fit again from scratch to the new G
    meta = json.loads((ws.model_dir("moved") / "step2" / "model.json").read_text())
    assert meta["step1_step"] == 4
    assert load_face_model(ws.model_dir("moved"), CPU).encoder is not None
