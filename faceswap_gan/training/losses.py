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
