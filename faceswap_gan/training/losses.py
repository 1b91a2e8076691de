"""The adversarial and auxiliary-class losses of step 1 and the encoder losses of step 2."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def d_adversarial(real_logit: torch.Tensor, fake_logit: torch.Tensor, kind: str) -> torch.Tensor:
    """D's real/fake loss: the paper's BCE, or the hinge loss (ours)."""
    real_logit, fake_logit = real_logit.float(), fake_logit.float()
    if kind == "hinge":
        return F.relu(1.0 - real_logit).mean() + F.relu(1.0 + fake_logit).mean()
    return (
        F.binary_cross_entropy_with_logits(real_logit, torch.ones_like(real_logit))
        + F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit))
    )


def g_adversarial(fake_logit: torch.Tensor, kind: str) -> torch.Tensor:
    """G's loss for fooling D (non-saturating BCE, or hinge's -D(G(z)))."""
    fake_logit = fake_logit.float()
    if kind == "hinge":
        return -fake_logit.mean()
    return F.binary_cross_entropy_with_logits(fake_logit, torch.ones_like(fake_logit))


def class_loss(class_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Auxiliary classifier cross-entropy (D on real crops, G on its fakes)."""
    return F.cross_entropy(class_logits.float(), labels)


def z_error(z_pred: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Step 2's paper loss: MSE between z and E(G(z, c))."""
    return F.mse_loss(z_pred.float(), z.float())


def pixel_recon(x: torch.Tensor, x_rec: torch.Tensor) -> torch.Tensor:
    """|x - G(E(x), c_x)| averaged over pixels (images in [-1, 1])."""
    return (x.float() - x_rec.float()).abs().mean()


def _gaussian_window(size: int, sigma: float, device: torch.device) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(3, 1, size, size).contiguous()


def ssim_map(x: torch.Tensor, y: torch.Tensor, window: int = 7, sigma: float = 1.5) -> torch.Tensor:
    """Per-pixel SSIM (N, 1, H, W) of two [-1, 1] RGB batches, mean over channels.

    Gaussian window (Wang et al. 2004) with a smaller support than the usual 11 px, because
    the crops are 64-128 px and a face's eye is ~10 px across at 64.
    """
    with torch.autocast(x.device.type, enabled=False):  # variances need fp32, not bf16
        return _ssim_map(x, y, window, sigma)


def _ssim_map(x: torch.Tensor, y: torch.Tensor, window: int, sigma: float) -> torch.Tensor:
    x, y = (x.float() + 1) / 2, (y.float() + 1) / 2
    w = _gaussian_window(window, sigma, x.device)
    pad = window // 2
    mu_x = F.conv2d(F.pad(x, [pad] * 4, mode="reflect"), w, groups=3)
    mu_y = F.conv2d(F.pad(y, [pad] * 4, mode="reflect"), w, groups=3)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(t, [pad] * 4, mode="reflect"), w, groups=3)

    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return s.mean(dim=1, keepdim=True)


def weighted_recon(
    x: torch.Tensor, x_rec: torch.Tensor, weight: torch.Tensor, l1: float, ssim: float
) -> tuple[torch.Tensor, dict[str, float]]:
    """Step 3's reconstruction loss: l1 * |x - x_rec| + ssim * (1 - SSIM), both weighted per
    pixel by ``weight`` (1, 1, H, W), normalised to mean 1 so the weights keep their scale."""
    weight = weight / weight.mean()
    l1_term = ((x.float() - x_rec.float()).abs().mean(dim=1, keepdim=True) * weight).mean()
    ssim_term = ((1 - ssim_map(x, x_rec)) * weight).mean()
    return l1 * l1_term + ssim * ssim_term, {"recon_l1": l1_term.item(), "recon_dssim": ssim_term.item()}


def latent_cycle(z_back: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """|E(G(E(x), c')) - E(x)|: a translation keeps the source's code (pose, expression)."""
    return (z_back.float() - z.float()).abs().mean()


def mode_seeking(fake: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Step 1 (ours): 1 / (image distance / code distance) between the two halves of a batch
    drawn for the same speakers (Mao et al. 2019, "Mode seeking GANs"). Small when different
    z give different faces, so G cannot draw one face per speaker whatever z is."""
    half = fake.shape[0] // 2
    d_image = (fake[:half].float() - fake[half:2 * half].float()).abs().mean(dim=(1, 2, 3))
    d_code = (z[:half].float() - z[half:2 * half].float()).abs().mean(dim=1)
    return 1.0 / ((d_image / d_code).mean() + 1e-5)


def spread(images: torch.Tensor, labels: torch.Tensor) -> float:
    """Per-pixel standard deviation across a batch, within each speaker, averaged: how much
    the faces differ. A generator whose output ignores z spreads far less than real crops."""
    values = []
    for c in labels.unique():
        group = images[labels == c].float()
        if len(group) > 1:
            values.append(group.std(dim=0).mean())
    return float(torch.stack(values).mean()) if values else float("nan")


def z_prior(raw: torch.Tensor, limit: float = 2.0) -> torch.Tensor:
    """Keeps E's pre-bound output where the bound still passes a gradient: squared excess of
    |raw| over ``limit`` (tanh(2) = 0.96)."""
    return torch.relu(raw.float().abs() - limit).pow(2).mean()


def code_blind(code_logits: torch.Tensor) -> torch.Tensor:
    """E's loss against the code discriminator: cross-entropy of its prediction with the
    uniform distribution over speakers (minimal, log n, when C cannot tell who a code is)."""
    return -F.log_softmax(code_logits.float(), dim=1).mean()


def expression_error(translated: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """Step 3 (ours): |expression of G(E(x), c') - expression of x| (mouth and eye openings,
    training/expression.py), each in its own units (ratios near 0.1 and 0.3)."""
    return (translated.float() - source.float()).abs().mean()
