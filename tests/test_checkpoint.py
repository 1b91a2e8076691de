"""Checkpoints round-trip exactly; bad files are clear errors; the inference API and export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import CPU, write_portrait_crops

from faceswap_gan.config import load_pipeline
from faceswap_gan.errors import FaceswapError
from faceswap_gan.models.checkpoint import (
    export_inference_model,
    load_face_model,
    read_stage,
    restore_optimizer,
)
from faceswap_gan.models.inference import Translator
from faceswap_gan.training.data import load_faces
from faceswap_gan.training.loop import TrainRequest, train
from faceswap_gan.training.step1 import Step1Trainer
from faceswap_gan.workspace import Workspace, resolve_workspace

pytestmark = pytest.mark.slow  # every test reads the model the module fixture trains


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    ws = resolve_workspace(tmp_path_factory.mktemp("ckpt") / "ws")
    write_portrait_crops(ws.faces_dir, size=32, count=8)
    pipeline = load_pipeline("tiny")
    pipeline.train1.ema_decay = 0.9  # exercise the EMA copy of G too
    train(TrainRequest(ws, 1, ws.model_dir(), pipeline, steps=3))
    train(TrainRequest(ws, 2, ws.model_dir(), None, steps=2))
    return ws


def test_checkpoint_round_trips_exactly(trained: Workspace) -> None:
    ckpt = read_stage(trained.model_dir(), 1)
    assert ckpt.meta["step"] == 3 and ckpt.meta["format"] == "faceswap_gan.checkpoint"
    assert {"generator.fc.weight", "generator_ema.fc.weight", "discriminator.adv_head.weight"} <= set(ckpt.weights)
    pipeline = load_pipeline("tiny")
    pipeline.train1.ema_decay = 0.9
    from faceswap_gan.models.networks import NetworkSpec

    faces = load_faces(trained, ["astronaut", "hopper"], 32)
    t = Step1Trainer(NetworkSpec(**ckpt.meta["spec"]), pipeline, faces, CPU, seed=123)
    t.load(ckpt, trained.model_dir())
    # weights, buffers (batch-norm statistics) and optimizer state come back bit for bit
    for k, v in t.weights().items():
        assert torch.equal(v, ckpt.weights[k]), k
    tensors, info = t.train_state()
    assert set(tensors) == set(ckpt.state)
    for k, v in tensors.items():
        assert torch.equal(v, ckpt.state[k]), k
    assert info["opt_g"]["param_groups"][0]["lr"] == pytest.approx(2e-4)
    fresh = torch.optim.Adam(t.g.parameters())
    restore_optimizer("opt_g", fresh, ckpt.state, ckpt.meta["optimizers"]["opt_g"])
    assert torch.equal(fresh.state_dict()["state"][0]["exp_avg"], ckpt.state["opt_g.0.exp_avg"])
    # load_face_model serves the EMA generator, in eval mode
    model = load_face_model(trained.model_dir(), CPU)
    assert torch.equal(model.generator.fc.weight, ckpt.weights["generator_ema.fc.weight"])
    assert not model.generator.training and model.encoder is not None
    assert (model.size, model.z_dim, model.speakers) == (32, 16, ["astronaut", "hopper"])


def test_translator_and_export(trained: Workspace, tmp_path: Path) -> None:
    model = load_face_model(trained.model_dir(), CPU)
    tr = Translator(model, CPU, autocast=False, batch_size=3)
    faces = load_faces(trained, ["astronaut", "hopper"], 32)
    crops = faces.images[:5].permute(0, 2, 3, 1).numpy()
    z = tr.encode(crops)
    assert z.shape == (5, 16) and z.dtype == np.float32
    out = tr.translate(crops, tr.label_of("hopper"))
    assert out.shape == (5, 32, 32, 3) and out.dtype == np.uint8
    assert np.array_equal(out, tr.generate(z, np.full(5, 1)))
    probs = tr.classify(crops)
    assert probs.shape == (5, 2) and np.allclose(probs.sum(1), 1, atol=1e-5)
    with pytest.raises(FaceswapError, match="knows: astronaut, hopper"):
        tr.label_of("nobody")
    with pytest.raises(FaceswapError, match="uint8 RGB of shape"):
        tr.encode(np.zeros((2, 64, 64, 3), np.uint8))
    # bf16 autocast stays close to fp32
    amp = Translator(model, CPU, autocast=True).translate(crops, 1)
    assert np.abs(amp.astype(int) - out.astype(int)).mean() < 4

    exported = export_inference_model(trained.model_dir(), tmp_path / "model.safetensors")
    assert exported.stat().st_size < 2_000_000
    small = load_face_model(exported, CPU)
    assert small.speakers == model.speakers and small.meta["format"] == "faceswap_gan.inference"
    out16 = Translator(small, CPU, autocast=False).translate(crops, 1)
    assert np.abs(out16.astype(int) - out.astype(int)).mean() < 2  # fp16 weights


def test_bad_checkpoints_are_clear_errors(trained: Workspace, tmp_path: Path) -> None:
    with pytest.raises(FaceswapError, match="no model at .*faceswap train --step 1"):
        load_face_model(tmp_path / "nothing", CPU)
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(trained.model_dir(), copy)
    # step 1 without step 2: fine unless an encoder is needed
    shutil.rmtree(copy / "step2")
    assert load_face_model(copy, CPU, need_encoder=False).encoder is None
    with pytest.raises(FaceswapError, match="faceswap train --step 2"):
        load_face_model(copy, CPU)
    # another architecture
    meta = json.loads((copy / "step1" / "model.json").read_text())
    meta["architecture"] = "somebody-elses-gan"
    (copy / "step1" / "model.json").write_text(json.dumps(meta))
    with pytest.raises(FaceswapError, match="another architecture"):
        load_face_model(copy, CPU, need_encoder=False)
    meta["architecture"] = "dong2017-acgan-v1"
    meta["spec"]["g_width"] = 16  # weights no longer fit
    (copy / "step1" / "model.json").write_text(json.dumps(meta))
    with pytest.raises(FaceswapError, match="another architecture"):
        load_face_model(copy, CPU, need_encoder=False)
    # corrupt weights and corrupt metadata
    shutil.rmtree(copy)
    shutil.copytree(trained.model_dir(), copy)
    weights = copy / "step1" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])
    with pytest.raises(FaceswapError, match="corrupt checkpoint"):
        load_face_model(copy, CPU)
    (copy / "step1" / "model.json").write_text("{not json")
    with pytest.raises(FaceswapError, match="corrupt checkpoint"):
        load_face_model(copy, CPU)
    bogus = tmp_path / "bogus.safetensors"
    bogus.write_bytes(b"\x00" * 64)
    with pytest.raises(FaceswapError, match="corrupt checkpoint"):
        load_face_model(bogus, CPU)


def test_interrupted_swap_is_recovered(trained: Workspace, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "m"
    shutil.copytree(trained.model_dir(), copy)
    # a crash between the two renames leaves only the old folder
    (copy / "step1").rename(copy / ".step1.old")
    assert load_face_model(copy, CPU).speakers == ["astronaut", "hopper"]
    assert (copy / "step1" / "model.json").is_file()
