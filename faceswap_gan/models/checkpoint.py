"""Checkpoints on disk: safetensors for every tensor, JSON for everything else, never pickle.

A model folder (``workspace/models/<name>/``) holds one folder per training step::

    step1/  model.safetensors         generator.*, discriminator.*, generator_ema.* (if EMA on)
            train_state.safetensors   optimizer tensors: <optimizer>.<param index>.<key>
            model.json                metadata (format, version, spec, speakers, pipeline, step...)
    step2/  model.safetensors         encoder.*
            train_state.safetensors
            model.json                as step 1, plus step1_step: the step-1 checkpoint E was fit to
    step3/  model.safetensors         generator.*, encoder.*, discriminator.*, *_ema.* (ours)
            train_state.safetensors
            model.json                plus step1_step and step2_step: what step 3 started from
    logs/step1/ .. logs/step3/        metrics.jsonl, loss.png, previews/ (written by the trainer)

A step folder is written whole into a temporary sibling and swapped in by two renames, so a
crash leaves either the old or the new checkpoint, never a mix. ``export_inference_model``
writes G, E and D into one safetensors file whose header metadata carries model.json;
``load_face_model`` accepts a model folder or such a file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from faceswap_gan import __version__
from faceswap_gan.config import ExtractConfig, legacy_z_bound
from faceswap_gan.errors import FaceswapError
from faceswap_gan.fileio import atomic_path, output_lock, usual_modes, write_error, writing
from faceswap_gan.models.networks import (
    ARCHITECTURE,
    Discriminator,
    Encoder,
    Generator,
    NetworkSpec,
)

CHECKPOINT_FORMAT = "faceswap_gan.checkpoint"
INFERENCE_FORMAT = "faceswap_gan.inference"
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
STATE_FILE = "train_state.safetensors"
META_FILE = "model.json"


@dataclass
class FaceModel:
    """The trained networks, ready for inference (eval mode), and what they were trained on."""

    generator: Generator
    encoder: Encoder | None
    discriminator: Discriminator
    speakers: list[str]
    size: int
    z_dim: int
    meta: dict[str, Any] = field(default_factory=dict)
    gate: Any = None  # models.gate.SpeakerGate: who is a speaker; None: every face is one

    @property
    def padding(self) -> float:
        """The crop padding the model was trained on (its pipeline's extract.padding)."""
        return _stored_padding(self.meta)

    def label_of(self, speaker: str) -> int:
        """The class index of a speaker; an unknown name lists the known ones."""
        if speaker not in self.speakers:
            raise FaceswapError(
                f"unknown speaker '{speaker}' (this model knows: {', '.join(self.speakers)})"
            )
        return self.speakers.index(speaker)


def _stored_padding(meta: dict) -> float:
    stored = (meta.get("pipeline") or {}).get("extract") or {}
    return float(stored.get("padding", ExtractConfig.padding))


def _check_consistent(meta: dict, spec: NetworkSpec, tensors: dict[str, torch.Tensor],
                      generator: str, where: Path) -> list[str]:
    """The model's speakers, checked against its weights: one name per class of the spec, of
    the discriminator's class head and (per-speaker G) of the generator's heads, each a name
    extract gives (``faces.assign.check_speaker_name``), none twice. Render picks a speaker's
    head by its place in this list, so an edited list would swap to a head that is not there,
    or to another speaker's. ``generator``: the prefix G's weights are loaded from."""
    from faceswap_gan.faces.assign import check_speaker_name

    def inconsistent(why: str) -> FaceswapError:
        return FaceswapError(f"this model is inconsistent: {where}: {why}; export or train it again")

    speakers = meta.get("speakers")
    if not isinstance(speakers, list) or not all(isinstance(n, str) for n in speakers):
        raise inconsistent("its speakers are not a list of names")
    counts = {"network spec": spec.n_classes}
    class_head = tensors.get("discriminator.class_head.weight")
    if class_head is not None:  # a missing one is load_module's "another architecture"
        counts["discriminator classes"] = int(class_head.shape[0])
    if spec.g_condition == "heads":
        pattern = re.compile(rf"^{re.escape(generator)}\.heads\.(\d+)\.")
        found = (pattern.match(k) for k in tensors)
        counts["generator heads"] = len({m.group(1) for m in found if m})
    if any(n != len(speakers) for n in counts.values()):
        listed = ", ".join(repr(n) for n in speakers)
        held = ", ".join(f"{what} {n}" for what, n in counts.items())
        raise inconsistent(f"it names {len(speakers)} speakers ({listed}); its weights: {held}")
    for name in speakers:
        try:
            ok = check_speaker_name(name) == name
        except FaceswapError:
            ok = False
        if not ok:
            raise inconsistent(f"{name!r} is not a speaker name")
    if len(set(speakers)) != len(speakers):
        raise inconsistent("it names a speaker twice")
    try:
        padding = _stored_padding(meta)
    except (AttributeError, TypeError, ValueError):
        padding = float("nan")
    if not 0 <= padding <= 2:  # as faces/align.py allows; NaN fails too
        raise inconsistent("its crop padding is not a number from 0 to 2")
    return list(speakers)


@dataclass
class StageCheckpoint:
    """One step folder as read from disk."""

    meta: dict[str, Any]
    weights: dict[str, torch.Tensor]
    state: dict[str, torch.Tensor]


def stage_dir(model_dir: Path, step: int) -> Path:
    return Path(model_dir) / f"step{step}"


def logs_dir(model_dir: Path, step: int) -> Path:
    return Path(model_dir) / "logs" / f"step{step}"


def base_meta(spec: NetworkSpec, speakers: list[str], stage: int, step: int) -> dict[str, Any]:
    return {
        "format": CHECKPOINT_FORMAT,
        "version": FORMAT_VERSION,
        "stage": stage,
        "architecture": spec.architecture,
        "spec": spec.to_dict(),
        "speakers": list(speakers),
        "size": spec.size,
        "z_dim": spec.z_dim,
        "step": step,
        "code_version": __version__,
        "torch_version": torch.__version__,
    }


def module_tensors(prefix: str, module: nn.Module) -> dict[str, torch.Tensor]:
    """A module's parameters and buffers as contiguous CPU tensors under ``prefix.``."""
    return {f"{prefix}.{k}": v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def ema_or(name: str, tensors: dict[str, torch.Tensor]) -> str:
    """The prefix to load ``name`` from: its EMA copy (``<name>_ema``, what previews and
    inference use) when the tensors hold one, else ``name`` itself."""
    return f"{name}_ema" if any(k.startswith(f"{name}_ema.") for k in tensors) else name


def load_module(module: nn.Module, prefix: str, tensors: dict[str, torch.Tensor], where: Path) -> None:
    own = {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    try:
        module.load_state_dict(own, strict=True)
    except RuntimeError:
        raise FaceswapError(
            f"checkpoint of another architecture at {where}: its {prefix} weights do not fit "
            f"this network (was the pipeline's [model] section changed?)"
        ) from None


def optimizer_tensors(name: str, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer's state into tensors (for safetensors) and JSON-able settings."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, pstate in sd["state"].items():
        for key, value in pstate.items():
            if torch.is_tensor(value):
                tensors[f"{name}.{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[key] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def restore_optimizer(
    name: str, optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], info: dict
) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        opt, pid, sub = key.split(".", 2)
        if opt == name:
            state.setdefault(int(pid), {})[sub] = value
    for pid, scalars in info.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(scalars)
    optimizer.load_state_dict({"state": state, "param_groups": info["param_groups"]})


def _tmp_prefix(step_folder: str) -> str:
    """The start of the name of a step folder being written (``.step1.tmp-XXXXXXXX``)."""
    return f".{step_folder}.tmp-"


def save_stage(
    directory: Path, weights: dict[str, torch.Tensor], state: dict[str, torch.Tensor], meta: dict
) -> None:
    """Write a step folder atomically: build it beside the old one, then swap by renames.

    A disk that refuses the write is a ``fileio.WriteError`` naming the step folder; the
    previous checkpoint is kept and the half-written one removed."""
    directory = Path(directory)
    with writing(directory):
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=_tmp_prefix(directory.name), dir=directory.parent))
    try:
        with writing(directory):
            header = {"format": str(meta["format"]), "step": str(meta["step"])}
            _save_tensors(weights, tmp / WEIGHTS_FILE, header, directory)
            _save_tensors(state, tmp / STATE_FILE, header, directory)
            (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
            usual_modes(tmp)  # readable by others, as any tool's output (mkdtemp, safetensors: 0700/0600)
            old = directory.parent / f".{directory.name}.old"
            if old.exists():
                shutil.rmtree(old)
            if directory.exists():
                os.replace(directory, old)
            os.replace(tmp, directory)
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _save_tensors(tensors: dict[str, torch.Tensor], path: Path, header: dict[str, str],
                  directory: Path) -> None:
    try:
        save_file(tensors, str(path), metadata=header)
    except SafetensorError as exc:
        # safetensors reports the system's error as text: "... I/O error: ... (os error 28)"
        found = re.search(r"os error (\d+)", str(exc))
        if found is None:
            raise
        raise write_error(directory, int(found.group(1))) from None


def remove_stale_stage_temporaries(model_dir: Path) -> int:
    """Remove what runs killed while saving a checkpoint of this model left: half-written step
    folders (``.stepN.tmp-*``) and the old copy of a step whose swap had finished
    (``.stepN.old`` beside a ``stepN``; one without it is the checkpoint, see ``_recover``).

    Only while no other run can be saving into ``model_dir``: under ``model_lock``. Returns
    how many were removed."""
    model_dir = Path(model_dir)
    removed = 0
    for step in (1, 2, 3):
        name = stage_dir(model_dir, step).name
        stale = list(model_dir.glob(f"{_tmp_prefix(name)}*"))
        old = model_dir / f".{name}.old"
        if old.is_dir() and (model_dir / name / META_FILE).is_file():
            stale.append(old)
        for path in stale:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
                removed += 1
    return removed


@contextmanager
def model_lock(model_dir: Path) -> Iterator[None]:
    """Hold the claim on training ``model_dir`` (``fileio.output_lock`` on its name: a second
    run on the same model fails with a clear message), and on entry remove the stale step
    temporaries killed runs left (``remove_stale_stage_temporaries``). Take it on the main
    rank only: the other ranks of a torchrun never save."""
    model_dir = Path(model_dir)
    with output_lock(model_dir):
        remove_stale_stage_temporaries(model_dir)
        yield


def _recover(directory: Path) -> None:
    """Finish a swap a crash interrupted between its two renames."""
    old = directory.parent / f".{directory.name}.old"
    if not directory.exists() and old.is_dir():
        os.replace(old, directory)


def has_stage(model_dir: Path, step: int) -> bool:
    d = stage_dir(model_dir, step)
    _recover(d)
    return (d / META_FILE).is_file()


def read_meta(directory: Path) -> dict[str, Any]:
    try:
        meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FaceswapError(f"incomplete checkpoint at {directory}: {META_FILE} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise FaceswapError(f"corrupt checkpoint at {directory}: {META_FILE} is not valid JSON") from None
    check_meta(meta, directory, CHECKPOINT_FORMAT)
    return meta


def check_meta(meta: Any, where: Path, fmt: str) -> None:
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        raise FaceswapError(f"corrupt checkpoint at {where}: not a faceswap_gan {fmt.split('.')[-1]} file")
    if not isinstance(meta.get("version", 0), int) or not isinstance(meta.get("step"), int):
        raise FaceswapError(f"corrupt checkpoint at {where}: its version or step is not a number")
    if meta.get("version", 0) > FORMAT_VERSION:
        raise FaceswapError(
            f"checkpoint at {where} has format version {meta.get('version')}; this faceswap_gan "
            f"reads up to {FORMAT_VERSION} (upgrade faceswap_gan)"
        )
    if meta.get("architecture") != ARCHITECTURE:
        raise FaceswapError(
            f"checkpoint of another architecture at {where}: {meta.get('architecture')!r} "
            f"(this faceswap_gan builds {ARCHITECTURE!r})"
        )


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except FileNotFoundError:
        raise FaceswapError(f"incomplete checkpoint: {path} is missing") from None
    except (SafetensorError, OSError, ValueError) as exc:
        raise FaceswapError(f"corrupt checkpoint {path}: {exc}") from None


def read_stage(model_dir: Path, step: int, with_state: bool = True) -> StageCheckpoint:
    directory = stage_dir(model_dir, step)
    _recover(directory)
    meta = read_meta(directory)
    weights = _load_tensors(directory / WEIGHTS_FILE)
    state = _load_tensors(directory / STATE_FILE) if with_state else {}
    return StageCheckpoint(meta, weights, state)


def spec_from_meta(meta: dict, where: Path) -> NetworkSpec:
    try:
        fields = dict(meta["spec"])
        if "z_bound" not in fields:  # written before E carried its bound: train2.z_clamp said it
            fields["z_bound"] = legacy_z_bound(meta.get("pipeline") or {})
        return NetworkSpec(**fields)
    except (KeyError, TypeError):
        raise FaceswapError(f"corrupt checkpoint at {where}: no valid network spec in its metadata") from None


def _finish(model: FaceModel, device: torch.device) -> FaceModel:
    for net in (model.generator, model.encoder, model.discriminator):
        if net is not None:
            net.to(device).eval().requires_grad_(False)
    return model


def load_face_model(path: Path, device: torch.device, need_encoder: bool = True) -> FaceModel:
    """Load a model folder (workspace/models/<name>), one of its step folders, or an exported
    inference .safetensors file. G is step 1's EMA copy when training kept one; a step 3 fit
    to the present steps 1 and 2 replaces G, E and D with its own."""
    path = Path(path)
    if path.is_file() or path.suffix == ".safetensors":
        return _load_inference_file(path, device, need_encoder)
    if path.name in ("step1", "step2", "step3") and not (path / "step1").exists():
        path = path.parent
    if not has_stage(path, 1):
        raise FaceswapError(f"no model at {path}; run `faceswap train --step 1` first")
    s1 = read_stage(path, 1, with_state=False)
    where = stage_dir(path, 1)
    spec = spec_from_meta(s1.meta, where)
    speakers = _check_consistent(s1.meta, spec, s1.weights, ema_or("generator", s1.weights), where)
    g, d = Generator(spec), Discriminator(spec)
    load_module(g, ema_or("generator", s1.weights), s1.weights, where)
    load_module(d, "discriminator", s1.weights, where)
    meta = dict(s1.meta)
    encoder = None
    if has_stage(path, 2):
        s2 = read_stage(path, 2, with_state=False)
        if s2.meta.get("spec") != s1.meta.get("spec"):
            raise FaceswapError(f"checkpoint of another architecture at {stage_dir(path, 2)}: "
                                "its encoder was trained for a different step-1 model")
        stale = s2.meta.get("step1_step") != s1.meta["step"]
        if stale and need_encoder:
            raise FaceswapError(
                f"the encoder at {stage_dir(path, 2)} was fit to step 1 at step "
                f"{s2.meta.get('step1_step')}, but step 1 is now at step {s1.meta['step']}; "
                "run `faceswap train --step 2` again"
            )
        if not stale:  # a stale encoder is never handed out
            encoder = Encoder(spec)
            load_module(encoder, "encoder", s2.weights, stage_dir(path, 2))
            meta["encoder"] = s2.meta
            if has_stage(path, 3):
                s3_meta = _load_step3(path, s1.meta, s2.meta, g, encoder, d, need_encoder)
                if s3_meta is None:  # stale: keep neither step 3 nor a mix of steps
                    encoder = None
                    del meta["encoder"]
                else:
                    meta["encoder"] = s3_meta
    elif need_encoder:
        raise FaceswapError(f"no encoder at {path}; run `faceswap train --step 2` first")
    model = FaceModel(g, encoder, d, speakers, spec.size, spec.z_dim, meta)
    from faceswap_gan.models.gate import load_gate

    model.gate = _matching_gate(load_gate(path), model)
    return _finish(model, device)


def _matching_gate(gate: Any, model: FaceModel) -> Any:
    """The gate when it was fit to this model's speakers, else None (fit it again)."""
    if gate is None or list(gate.speakers) != list(model.speakers) or gate.size != model.size:
        return None
    return gate


def _load_step3(path: Path, meta1: dict, meta2: dict, g: Generator, e: Encoder,
                d: Discriminator, need_encoder: bool) -> dict | None:
    """Step 3's fine-tuned G, E and D (EMA copies when kept) replace steps 1 and 2's in place.

    A step 3 trained from older steps 1 or 2 is never mixed with newer ones: an error when an
    encoder is needed, else no encoder."""
    where = stage_dir(path, 3)
    s3 = read_stage(path, 3, with_state=False)
    if s3.meta.get("step1_step") != meta1["step"] or s3.meta.get("step2_step") != meta2["step"]:
        if need_encoder:
            raise FaceswapError(
                f"step 3 at {where} was trained from older steps 1 or 2; "
                "run `faceswap train --step 3` again"
            )
        return None
    load_module(g, ema_or("generator", s3.weights), s3.weights, where)
    load_module(e, ema_or("encoder", s3.weights), s3.weights, where)
    load_module(d, "discriminator", s3.weights, where)
    return s3.meta


def export_inference_model(model_dir: Path, out_file: Path, dtype: torch.dtype = torch.float16) -> Path:
    """One small safetensors file with G (EMA if kept), E and D, metadata in its header."""
    model = load_face_model(Path(model_dir), torch.device("cpu"), need_encoder=False)
    tensors: dict[str, torch.Tensor] = {}
    for prefix, net in (("generator", model.generator), ("encoder", model.encoder),
                        ("discriminator", model.discriminator)):
        if net is None:
            continue
        for k, v in module_tensors(prefix, net).items():
            tensors[k] = v.to(dtype) if v.is_floating_point() else v
    meta = dict(model.meta)
    meta.update(format=INFERENCE_FORMAT, version=FORMAT_VERSION, source=str(model_dir),
                has_encoder=model.encoder is not None)
    header = {"faceswap_gan": json.dumps(meta)}
    if model.gate is not None:  # the speaker gate travels with the model (models/gate.py)
        from faceswap_gan.models.gate import HEADER_KEY

        for k, v in model.gate.to_tensors().items():
            tensors[f"gate.{k}"] = torch.from_numpy(v)
        header[HEADER_KEY] = json.dumps(model.gate.to_json())
    out_file = Path(out_file)
    with atomic_path(out_file) as tmp:
        save_file(tensors, str(tmp), metadata=header)
    return out_file


def _load_inference_file(path: Path, device: torch.device, need_encoder: bool) -> FaceModel:
    from faceswap_gan.models.gate import HEADER_KEY as GATE_KEY

    if not path.is_file():
        raise FaceswapError(f"no model at {path}; run `faceswap train --step 1` first")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
        meta = json.loads(header["faceswap_gan"])
        gate_meta = json.loads(header[GATE_KEY]) if GATE_KEY in header else None
    except (SafetensorError, OSError, ValueError, KeyError):
        raise FaceswapError(f"corrupt checkpoint {path}: not a faceswap_gan inference file") from None
    check_meta(meta, path, INFERENCE_FORMAT)
    tensors = {k: v.float() if v.is_floating_point() else v for k, v in _load_tensors(path).items()}
    spec = spec_from_meta(meta, path)
    speakers = _check_consistent(meta, spec, tensors, "generator", path)
    g, d = Generator(spec), Discriminator(spec)
    load_module(g, "generator", tensors, path)
    load_module(d, "discriminator", tensors, path)
    encoder = None
    if any(k.startswith("encoder.") for k in tensors):
        encoder = Encoder(spec)
        load_module(encoder, "encoder", tensors, path)
    elif need_encoder:
        raise FaceswapError(f"the model file {path} has no encoder; export it after `faceswap train --step 2`")
    model = FaceModel(g, encoder, d, speakers, spec.size, spec.z_dim, meta)
    if gate_meta is not None:
        from faceswap_gan.models.gate import SpeakerGate

        gate_tensors = {k[len("gate."):]: v.numpy() for k, v in tensors.items()
                        if k.startswith("gate.")}
        model.gate = _matching_gate(SpeakerGate.from_parts(gate_meta, gate_tensors, path), model)
    return _finish(model, device)
