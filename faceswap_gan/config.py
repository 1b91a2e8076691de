"""Pipeline presets: every setting a run uses, in one typed, plain-sight structure.

A preset is a TOML file with one table per stage ([extract], [model], [train1],
[train2], [train3], [render]). Named presets ship in ``pipelines/`` (installed as the package
``faceswap_gan.pipelines``); a path to any TOML file works too. Keys a preset leaves
out take the defaults below; unknown keys are an error, so a typo never passes silently.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9/3.10 only
    import tomli as tomllib

from faceswap_gan.errors import FaceswapError

DEFAULT_PIPELINE = "debate"
CROP_SIZES = (32, 64, 128, 256)  # the sizes model.size (and so the crops) may take


@dataclass
class ExtractConfig:
    crop_size: int = 0  # side of the aligned crop in pixels; 0 (leave it out): model.size
    padding: float = 0.25  # margin around the face template: 0 tight face, ~0.6 whole head
    detect_every: int = 5  # full detection every N frames; mesh tracking in between
    min_detection_score: float = 0.5
    max_faces: int = 4
    cut_threshold: float = 0.45  # histogram distance between frames that marks a shot cut
    one_euro_min_cutoff: float = 1.0  # Hz; lower = smoother when still
    one_euro_beta: float = 0.05  # speed coefficient; higher = less lag when moving
    one_euro_d_cutoff: float = 1.0
    min_face_size: int = 32  # side of the face oval box in pixels below which it is "too small"
    min_blur: float = 20.0  # variance of the Laplacian of the crop at 64 px; below it "blurred"
    max_yaw: float = 55.0  # degrees; beyond it a face is "extreme pose"
    max_pitch: float = 40.0  # degrees; beyond it a face is "extreme pose"
    detector_model: str = "full"  # MediaPipe detector: "full" range (small faces too) or "short"
    max_lost_frames: int = 12  # a lost track's id is reused if its face comes back within this
    skip_filtered: bool = True  # filtered faces are recorded in alignments but not written as crops
    save_every: int = 1  # write every Nth face of a track as a crop


@dataclass
class ModelConfig:
    size: int = 64  # crop side the networks work at, and so the side extract crops at
    z_dim: int = 100
    embed_dim: int = 10  # learned label embedding concatenated to z
    g_width: int = 64  # "gf": G's last hidden layer has g_width channels, the first 8*g_width
    d_width: int = 64  # D's first conv has d_width channels, doubling per layer
    spectral_norm: bool = False  # in D (ours; the paper uses batch norm)
    g_condition: str = "input"  # how G sees the speaker: "input" (paper) or "heads" (ours)
    g_head_blocks: int = 2  # with "heads": G's last upsampling stages owned by each speaker
    z_bound: str = "none"  # how E's output is kept in G's prior: "none" (paper), "clamp", "tanh"


@dataclass
class Step1Config:
    batch_size: int = 64  # balanced across speakers
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    g_steps_per_d: int = 2
    loss: str = "bce"  # "bce" (paper) or "hinge"
    ema_decay: float = 0.0  # 0 = off; else decay of an EMA copy of G used for sampling
    augment_flip: bool = False
    augment_light: bool = False
    diversity_weight: float = 0.0  # ours: mode-seeking term, so G's face depends on z (0 = off)
    min_spread: float = 0.0  # ours: stop when G's faces vary less than this x the real crops' (0 = off)
    amp: bool = True  # bf16 autocast where the hardware has it (AMX/AVX-512 bf16 CPUs, Ampere+ GPUs)
    channels_last: bool = True  # NHWC memory layout (faster convolutions with oneDNN and cuDNN)
    steps: int = 20000
    time_share: float = 1.0  # `train --minutes N`: this step's share of N (shares are normalised)
    checkpoint_every: int = 500
    preview_every: int = 500
    log_every: int = 50


@dataclass
class Step2Config:
    batch_size: int = 64
    lr: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    steps: int = 30000
    time_share: float = 1.0  # as train1.time_share
    recon_weight: float = 0.0  # ours: weight of |x - G(E(x), c_x)| on real crops
    feature_weight: float = 0.0  # ours: the same reconstruction in D's features
    translate_weight: float = 0.0  # ours: D's class loss on G(E(x), c') for another speaker c'
    prior_weight: float = 0.0  # ours: keep E's pre-bound code where the bound passes a gradient
    max_saturated: float = 1.0  # ours: stop when more of E's code than this sits at +-1 (1 = off)
    amp: bool = True  # as train1.amp
    channels_last: bool = True
    checkpoint_every: int = 500
    preview_every: int = 500
    log_every: int = 50


@dataclass
class Step3Config:
    """Ours: E and G fine-tuned together on real crops (deepfakes' warped-input reconstruction)."""

    steps: int = 0  # 0: no step 3 (the paper's recipe ends at step 2)
    time_share: float = 1.0  # as train1.time_share
    batch_size: int = 32
    lr: float = 1e-4  # E and G
    lr_d: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    warp: float = 1.0  # strength of the random affine + smooth grid warp of E's input (0 = off)
    warp_off: float = 0.2  # the last fraction of the steps sees unwarped input (sharper output)
    l1_weight: float = 1.0  # |G(E(warp(x)), c_x) - x|
    ssim_weight: float = 1.0  # 1 - SSIM of the same
    focus_weight: float = 2.0  # extra loss weight on eyes and mouth (template regions; 0 = off)
    adv_weight: float = 0.1  # D's real/fake loss on translations G(E(x), c')
    class_weight: float = -1.0  # D's class loss on translations (identity); -1: adv_weight's
    cycle_weight: float = 0.0  # latent cycle |E(G(E(x), c')) - E(x)|
    prior_weight: float = 0.0  # as train2.prior_weight
    code_weight: float = 0.0  # ours: E leaves a code discriminator unable to tell the speaker
    expression_weight: float = 0.0  # ours: a translation opens mouth and eyes as its source does
    max_saturated: float = 1.0  # as train2.max_saturated
    ema_decay: float = 0.999  # EMA copies of E and G used for previews and inference; 0 = off
    augment_flip: bool = True
    augment_light: bool = True
    amp: bool = True  # as train1.amp
    channels_last: bool = True
    checkpoint_every: int = 500
    preview_every: int = 500
    log_every: int = 50


# Colour correction of the swapped face (render/color.py): Lab statistics, RGB histograms, none.
COLOR_MODES = ("lab", "hist", "none")


@dataclass
class RenderConfig:
    batch_size: int = 32  # crops per E+G call
    color: str = "lab"  # one of COLOR_MODES
    mask_erode: float = 0.04  # fraction of the face size
    mask_feather: float = 0.08  # fraction of the face size
    seamless: bool = False  # Poisson clone instead of alpha blend
    sharpen: float = 0.0  # unsharp mask on the enlarged face (0: off)
    z_smoothing: float = 0.5  # EMA weight of the previous z per track (0 = off)
    color_smoothing: float = 0.8  # EMA weight of the previous colour statistics
    crf: int = 18
    x264_preset: str = "veryfast"
    # The face mesh runs on every Nth frame (and on every cut, new face or lost track); the
    # frames between take their landmarks interpolated from the two meshes around them.
    mesh_every: int = 2


@dataclass
class Pipeline:
    name: str
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train1: Step1Config = field(default_factory=Step1Config)
    train2: Step2Config = field(default_factory=Step2Config)
    train3: Step3Config = field(default_factory=Step3Config)
    render: RenderConfig = field(default_factory=RenderConfig)
    description: str = ""

    def __post_init__(self) -> None:
        # The crop size has one home, model.size; an extract.crop_size that a preset (or a
        # checkpoint's stored settings) still gives must agree with it (_check).
        if not self.extract.crop_size:
            self.extract = dataclasses.replace(self.extract, crop_size=self.model.size)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_SECTIONS = {
    "extract": ExtractConfig,
    "model": ModelConfig,
    "train1": Step1Config,
    "train2": Step2Config,
    "train3": Step3Config,
    "render": RenderConfig,
}


def available_pipelines() -> list[str]:
    """Names of the presets shipped with the package."""
    root = resources.files("faceswap_gan.pipelines")
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".toml"))


def load_pipeline(name_or_path: str | Path | None = None) -> Pipeline:
    """Load a shipped preset by name, or any preset TOML file by path."""
    name_or_path = str(name_or_path or DEFAULT_PIPELINE)
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise FaceswapError(f"pipeline file not found: {path}")
        text = path.read_text(encoding="utf-8")
        name = path.stem
    else:
        resource = resources.files("faceswap_gan.pipelines") / f"{name_or_path}.toml"
        if not resource.is_file():
            known = ", ".join(available_pipelines())
            raise FaceswapError(f"unknown pipeline '{name_or_path}' (known: {known}, or a .toml path)")
        text = resource.read_text(encoding="utf-8")
        name = name_or_path
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise FaceswapError(f"pipeline '{name}' is not valid TOML: {exc}") from None
    return pipeline_from_dict(name, data)


def legacy_z_bound(data: dict[str, Any]) -> str:
    """model.z_bound of settings written before it existed: the old ``train2.z_clamp``."""
    return "clamp" if (data.get("train2") or {}).get("z_clamp") else "none"


def _migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Settings of older checkpoints and presets in today's keys (FORMATS.md lists them)."""
    train2 = data.get("train2")
    if isinstance(train2, dict) and "z_clamp" in train2:
        model = dict(data.get("model") or {})
        model.setdefault("z_bound", legacy_z_bound(data))
        data = {**data, "model": model, "train2": {k: v for k, v in train2.items() if k != "z_clamp"}}
    return data


def pipeline_from_dict(name: str, data: dict[str, Any]) -> Pipeline:
    """Build a Pipeline from parsed TOML (or a checkpoint's stored settings), checking keys."""
    data = _migrate(dict(data))
    description = str(data.pop("description", ""))
    data.pop("name", None)
    sections: dict[str, Any] = {}
    for key, value in data.items():
        cls = _SECTIONS.get(key)
        if cls is None or not isinstance(value, dict):
            raise FaceswapError(f"pipeline '{name}': unknown section [{key}]")
        known = {f.name: f for f in dataclasses.fields(cls)}
        for k, v in value.items():
            if k not in known:
                raise FaceswapError(f"pipeline '{name}': unknown setting {key}.{k}")
            expected = type(getattr(cls(), k))
            if expected is float and isinstance(v, int) and not isinstance(v, bool):
                value = {**value, k: float(v)}
            elif not isinstance(v, expected):
                raise FaceswapError(
                    f"pipeline '{name}': {key}.{k} must be {expected.__name__}, got {v!r}"
                )
        sections[key] = cls(**value)
    pipeline = Pipeline(name=name, description=description, **sections)
    _check(pipeline)
    return pipeline


def _check(p: Pipeline) -> None:
    size = p.model.size
    if size not in CROP_SIZES:
        choices = ", ".join(str(n) for n in CROP_SIZES[:-1]) + f" or {CROP_SIZES[-1]}"
        raise FaceswapError(f"pipeline '{p.name}': model.size must be {choices}")
    if p.extract.crop_size != size:
        raise FaceswapError(
            f"pipeline '{p.name}': extract.crop_size ({p.extract.crop_size}) must equal "
            f"model.size ({size})"
        )
    if p.model.g_condition not in ("input", "heads"):
        raise FaceswapError(f"pipeline '{p.name}': model.g_condition must be 'input' or 'heads'")
    stages = size.bit_length() - 3  # upsampling stages of G between 4x4 and the crop
    if p.model.g_condition == "heads" and not 1 <= p.model.g_head_blocks <= stages - 1:
        raise FaceswapError(
            f"pipeline '{p.name}': model.g_head_blocks must be within 1..{stages - 1} at {size} px"
        )
    if p.model.z_bound not in ("none", "clamp", "tanh"):
        raise FaceswapError(f"pipeline '{p.name}': model.z_bound must be 'none', 'clamp' or 'tanh'")
    if p.train1.loss not in ("bce", "hinge"):
        raise FaceswapError(f"pipeline '{p.name}': train1.loss must be 'bce' or 'hinge'")
    if p.render.sharpen < 0:
        raise FaceswapError(f"pipeline '{p.name}': render.sharpen must be 0 (off) or more")
    if p.render.mesh_every < 1:
        raise FaceswapError(f"pipeline '{p.name}': render.mesh_every must be 1 or more")
    if p.render.color not in COLOR_MODES:
        raise FaceswapError(f"pipeline '{p.name}': render.color must be one of {', '.join(COLOR_MODES)}")
