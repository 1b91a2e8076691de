"""The three networks of Dong et al. (2017): a conditional generator G(z, c), a discriminator D
with a real/fake head and an auxiliary class head, and an encoder E that maps a face to z.

At 64 px with widths 64 these are the paper's networks (DCGAN-style: 5x5 stride-2 convolutions,
batch norm, ReLU in G, LeakyReLU 0.2 in D). Other crop sizes add or remove one stride-2 layer
per factor of two, so every network ends (or starts) at a 4x4 feature map.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from faceswap_gan.config import ModelConfig

# Bumped whenever a change makes old weights unloadable; stored in every checkpoint.
ARCHITECTURE = "dong2017-acgan-v1"


@dataclass(frozen=True)
class NetworkSpec:
    """Everything that fixes the shapes of the weights: two checkpoints with equal specs load
    into each other's networks."""

    size: int
    z_dim: int
    n_classes: int
    embed_dim: int
    g_width: int
    d_width: int
    spectral_norm: bool
    g_condition: str = "input"  # "input" (the paper) or "heads" (per-speaker output blocks)
    g_head_blocks: int = 0  # with "heads": upsampling stages per speaker before to-RGB
    z_bound: str = "none"  # how E's output is kept in G's prior [-1, 1]: see Z_BOUNDS
    architecture: str = ARCHITECTURE

    @classmethod
    def from_config(cls, model: ModelConfig, n_classes: int) -> NetworkSpec:
        return cls(
            size=model.size, z_dim=model.z_dim, n_classes=n_classes, embed_dim=model.embed_dim,
            g_width=model.g_width, d_width=model.d_width, spectral_norm=model.spectral_norm,
            g_condition=model.g_condition,
            g_head_blocks=model.g_head_blocks if model.g_condition == "heads" else 0,
            z_bound=model.z_bound,
        )

    def to_dict(self) -> dict:
        return asdict(self)


# How E's last linear layer is brought into G's prior U[-1, 1]:
# - "none" (the paper): not at all;
# - "clamp" (the first step-3 recipe): a hard clamp, which passes no gradient to a component
#   once it is outside, so components die at +-1 and stay there (measured: 94-100%);
# - "tanh" (ours): a smooth squashing that always passes a gradient; with training's prior
#   penalty on the pre-squash value (losses.z_prior) components stay away from +-1.
Z_BOUNDS = ("none", "clamp", "tanh")


def bound_z(raw: torch.Tensor, bound: str) -> torch.Tensor:
    """E's pre-bound output -> z by the model's rule (one of Z_BOUNDS)."""
    if bound == "tanh":
        return torch.tanh(raw)
    if bound == "clamp":
        return raw.clamp(-1.0, 1.0)
    return raw


# A code component at or beyond this |z| counts as saturated: pinned to the edge of the prior,
# where a bound passes (nearly) no gradient. U[-1, 1] itself puts 1% of components there.
SATURATED = 0.99


def code_stats(z: torch.Tensor) -> dict[str, float]:
    """Is the code alive: the share of saturated components (``z_saturated``), and each
    component's spread across the faces of the batch (``z_spread``, mean std)."""
    z = z.detach().float()
    return {"z_saturated": (z.abs() >= SATURATED).float().mean().item(),
            "z_spread": z.std(dim=0).mean().item() if len(z) > 1 else float("nan")}


def _n_stride2(size: int) -> int:
    """Stride-2 layers between a 4x4 map and a size x size image."""
    n = int(math.log2(size)) - 2
    if n < 1 or 4 * 2**n != size:
        raise ValueError(f"crop size must be a power of two >= 8, got {size}")
    return n


def _conv_channels(width: int, n: int) -> list[int]:
    """D/E trunk widths: width, 2*width, ... capped at 8*width (the paper's 64..512 at 64 px)."""
    return [width * min(2**i, 8) for i in range(n)]


def _up_stage(c_in: int, c_out: int) -> list[nn.Module]:
    """One 5x5 stride-2 transposed conv doubling the map, batch norm, ReLU."""
    return [
        nn.ConvTranspose2d(c_in, c_out, 5, 2, padding=2, output_padding=1),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    ]


def _to_rgb(c_in: int) -> list[nn.Module]:
    """The last stride-2 transposed conv, to three channels in [-1, 1]."""
    return [nn.ConvTranspose2d(c_in, 3, 5, 2, padding=2, output_padding=1), nn.Tanh()]


class Generator(nn.Module):
    """G(z, c): dense to 4x4, stride-2 transposed convs, tanh.

    How the speaker enters (``spec.g_condition``):
    - ``"input"`` (the paper): a learned label embedding concatenated to z; one decoder draws
      every speaker, so whatever z carries of the source face survives a translation.
    - ``"heads"`` (ours): z alone feeds a shared trunk; the last ``g_head_blocks`` upsampling
      stages and the to-RGB layer belong to each speaker, as the per-identity decoders of
      deepfakes. Identity is drawn by speaker-specific layers that never see another face.
    """

    def __init__(self, spec: NetworkSpec) -> None:
        super().__init__()
        n = _n_stride2(spec.size)
        # G mirrors D: its hidden widths are D's widths in reverse (8gf, 4gf, 2gf, gf at 64 px).
        widths = list(reversed(_conv_channels(spec.g_width, n)))
        self.spec = spec
        heads = spec.g_condition == "heads"
        n_head = spec.g_head_blocks if heads else 0
        if not 0 <= n_head <= n - 1:
            raise ValueError(f"g_head_blocks must be within 0..{n - 1} at {spec.size} px, got {n_head}")
        self.embed = None if heads else nn.Embedding(spec.n_classes, spec.embed_dim)
        self.fc = nn.Linear(spec.z_dim + (0 if heads else spec.embed_dim), widths[0] * 16)
        self.fc_bn = nn.BatchNorm2d(widths[0])
        split = len(widths) - n_head  # stages before this index are shared
        shared: list[nn.Module] = []
        for c_in, c_out in zip(widths[:split - 1], widths[1:split]):
            shared += _up_stage(c_in, c_out)
        if heads:
            self.up = nn.Sequential(*shared)
            self.heads = nn.ModuleList(
                nn.Sequential(
                    *[m for c_in, c_out in zip(widths[split - 1:], widths[split:])
                      for m in _up_stage(c_in, c_out)],
                    *_to_rgb(widths[-1]),
                )
                for _ in range(spec.n_classes)
            )
        else:
            self.up = nn.Sequential(*shared, *_to_rgb(widths[-1]))
            self.heads = None
        self._first_width = widths[0]

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = z if self.embed is None else torch.cat([z, self.embed(labels).to(z.dtype)], dim=1)
        h = self.fc(h).view(z.shape[0], self._first_width, 4, 4)
        h = self.up(torch.relu(self.fc_bn(h)))
        if self.heads is None:
            return h
        # Each speaker's head draws its own faces; the batch is put back in its order.
        parts, order = [], []
        for label, head in enumerate(self.heads):
            index = (labels == label).nonzero(as_tuple=True)[0]
            if index.numel():
                parts.append(head(h[index]))
                order.append(index)
        order_all = torch.cat(order)
        return torch.cat(parts)[torch.argsort(order_all)]


def _trunk(spec: NetworkSpec, width: int, spectral: bool) -> nn.Sequential:
    """5x5 stride-2 convs from the image down to 4x4, LeakyReLU 0.2, batch norm from the 2nd layer
    (or spectral norm on every conv and no batch norm, our option for D)."""
    n = _n_stride2(spec.size)
    widths = _conv_channels(width, n)
    layers: list[nn.Module] = []
    c_in = 3
    for i, c_out in enumerate(widths):
        conv = nn.Conv2d(c_in, c_out, 5, 2, padding=2)
        if spectral:
            layers.append(nn.utils.parametrizations.spectral_norm(conv))
        else:
            layers.append(conv)
            if i > 0:
                layers.append(nn.BatchNorm2d(c_out))
        layers.append(nn.LeakyReLU(0.2, inplace=True))
        c_in = c_out
    layers.append(nn.Flatten())
    return nn.Sequential(*layers)


def trunk_features(spec: NetworkSpec, width: int) -> int:
    n = _n_stride2(spec.size)
    return _conv_channels(width, n)[-1] * 16


class Discriminator(nn.Module):
    """D(x) -> (real/fake logit (N,), class logits (N, n_classes))."""

    def __init__(self, spec: NetworkSpec) -> None:
        super().__init__()
        self.spec = spec
        self.trunk = _trunk(spec, spec.d_width, spec.spectral_norm)
        feats = trunk_features(spec, spec.d_width)
        self.adv_head = nn.Linear(feats, 1)
        self.class_head = nn.Linear(feats, spec.n_classes)
        if spec.spectral_norm:
            self.adv_head = nn.utils.parametrizations.spectral_norm(self.adv_head)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(x)
        return self.adv_head(h).squeeze(1), self.class_head(h)


class Encoder(nn.Module):
    """E(x) -> z: D's trunk (own weights, always batch norm), a linear layer, and the model's
    bound into G's prior (``spec.z_bound``)."""

    def __init__(self, spec: NetworkSpec) -> None:
        super().__init__()
        self.spec = spec
        self.trunk = _trunk(spec, spec.d_width, spectral=False)
        self.to_z = nn.Linear(trunk_features(spec, spec.d_width), spec.z_dim)

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        """The linear layer's output, before the bound (what training's prior penalty sees)."""
        return self.to_z(self.trunk(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return bound_z(self.raw(x), self.spec.z_bound)


class CodeDiscriminator(nn.Module):
    """C(z) -> speaker logits: which speaker a code came from (ours, step 3). E is trained to
    leave it guessing, so a code carries pose and expression but not who the face is, and
    each speaker's output blocks see the same codes in training as at swap time (the idea of
    DeepFaceLab's "true face" code discriminator)."""

    def __init__(self, spec: NetworkSpec, width: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(spec.z_dim, width), nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(width, width), nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(width, spec.n_classes),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: conv and linear weights N(0, 0.02), batch-norm scales N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            weight = m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
            nn.init.normal_(weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 1.0)


def build_networks(
    spec: NetworkSpec, encoder: bool = False, generator: torch.Generator | None = None
) -> tuple[Generator, Discriminator, Encoder | None]:
    """G, D (and E) freshly initialised; pass a seeded torch.Generator for reproducible weights."""
    with _seeded(generator):
        g, d = Generator(spec), Discriminator(spec)
        init_weights(g)
        init_weights(d)
        e = None
        if encoder:
            e = Encoder(spec)
            init_weights(e)
    return g, d, e


class _seeded:
    """Draw initial weights from a given generator without touching the global RNG for long."""

    def __init__(self, generator: torch.Generator | None) -> None:
        self.generator = generator

    def __enter__(self) -> None:
        if self.generator is not None:
            self._state = torch.random.get_rng_state()
            torch.random.set_rng_state(self.generator.get_state())

    def __exit__(self, *exc: object) -> None:
        if self.generator is not None:
            self.generator.set_state(torch.random.get_rng_state())
            torch.random.set_rng_state(self._state)
