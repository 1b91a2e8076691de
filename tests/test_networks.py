"""The networks: the paper's layer structure at 64 px, other sizes, any number of speakers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from faceswap_gan.config import ModelConfig, load_pipeline
from faceswap_gan.models.networks import NetworkSpec, build_networks


def test_paper_preset_has_the_papers_layers() -> None:
    spec = NetworkSpec.from_config(load_pipeline("paper").model, n_classes=2)
    g, d, e = build_networks(spec, encoder=True)
    assert (spec.size, spec.z_dim) == (64, 100)
    # G: dense to 4x4x512, four 5x5 stride-2 transposed convs, BN+ReLU between, tanh out.
    assert g.fc.out_features == 4 * 4 * 8 * 64
    tconvs = [m for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [(m.in_channels, m.out_channels) for m in tconvs] == [(512, 256), (256, 128), (128, 64), (64, 3)]
    assert all(m.kernel_size == (5, 5) and m.stride == (2, 2) for m in tconvs)
    assert isinstance(g.up[-1], nn.Tanh)
    # D: four 5x5 stride-2 convs 64/128/256/512, LeakyReLU 0.2, batch norm from the 2nd conv.
    convs = [m for m in d.trunk if isinstance(m, nn.Conv2d)]
    assert [m.out_channels for m in convs] == [64, 128, 256, 512]
    assert all(m.kernel_size == (5, 5) and m.stride == (2, 2) for m in convs)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d.trunk) == 3
    assert not isinstance(d.trunk[1], nn.BatchNorm2d)
    assert all(m.negative_slope == 0.2 for m in d.trunk if isinstance(m, nn.LeakyReLU))
    # E: D's trunk and a linear layer to z.
    assert [m.out_channels for m in e.trunk if isinstance(m, nn.Conv2d)] == [64, 128, 256, 512]
    assert e.to_z.out_features == 100
    z = torch.rand(3, 100) * 2 - 1
    x = g(z, torch.tensor([0, 1, 1]))
    assert x.shape == (3, 3, 64, 64) and x.abs().max() <= 1
    adv, cls = d(x)
    assert adv.shape == (3,) and cls.shape == (3, 2)
    assert e(x).shape == (3, 100)


@pytest.mark.parametrize("size", [32, 64, 128, 256])
def test_sizes_and_many_speakers(size: int) -> None:
    spec = NetworkSpec.from_config(ModelConfig(size=size, z_dim=8, embed_dim=3, g_width=4, d_width=4), 5)
    g, d, e = build_networks(spec, encoder=True)
    labels = torch.arange(5)
    x = g(torch.rand(5, 8), labels)
    assert x.shape == (5, 3, size, size)
    adv, cls = d(x)
    assert adv.shape == (5,) and cls.shape == (5, 5)
    assert e(x).shape == (5, 8)


def test_label_changes_the_output_and_seeded_builds_repeat() -> None:
    spec = NetworkSpec.from_config(ModelConfig(size=32, z_dim=8, embed_dim=4, g_width=8, d_width=8), 3)
    g1, _, _ = build_networks(spec, generator=torch.Generator().manual_seed(5))
    g2, _, _ = build_networks(spec, generator=torch.Generator().manual_seed(5))
    g3, _, _ = build_networks(spec, generator=torch.Generator().manual_seed(6))
    for a, b in zip(g1.state_dict().values(), g2.state_dict().values()):
        assert torch.equal(a, b)
    assert not torch.equal(g1.fc.weight, g3.fc.weight)
    g1.eval()
    z = torch.rand(1, 8).repeat(3, 1)
    out = g1(z, torch.arange(3))
    # Untrained weights give small outputs; compare the label's effect to the output's scale.
    scale = out.abs().mean()
    assert (out[0] - out[1]).abs().mean() > 0.05 * scale
    assert (out[1] - out[2]).abs().mean() > 0.05 * scale


def test_spectral_norm_option_replaces_batch_norm_in_d() -> None:
    spec = NetworkSpec.from_config(ModelConfig(size=32, g_width=8, d_width=8, spectral_norm=True), 2)
    _, d, e = build_networks(spec, encoder=True)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in d.modules())
    convs = [m for m in d.trunk if isinstance(m, nn.Conv2d)]
    assert all(hasattr(m, "parametrizations") for m in convs)
    # The encoder keeps the paper's batch-norm trunk.
    assert any(isinstance(m, nn.BatchNorm2d) for m in e.modules())
    # Spectral norm bounds the largest singular value of each conv's weight near 1.
    d.train()
    for _ in range(20):
        d(torch.rand(4, 3, 32, 32) * 2 - 1)
    w = convs[1].weight.reshape(convs[1].weight.shape[0], -1)
    assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, abs=0.1)
