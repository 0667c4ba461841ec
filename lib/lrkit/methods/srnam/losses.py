"""SR-NAM's degradation losses (eqs. 1-5), pure functions returning ``(loss, dict_of_floats)``.

``l = alpha * l_pixel + beta * l_GAN`` with ``l_pixel = gamma * L1(F(G(x)), x) + delta * sum_i L1(phi_i(F(G(x))),
phi_i(x))``: F up-scales the 16 px output back to the 64 px input (``DegradationConfig.upscaler``), phi_i are
VGG-19 feature maps. Both readings of the GAN term:

* ``hinge`` (eq. 2 as printed, read as the usual hinge GAN: the printed ``min(0, -1 + D(x))`` is the negative of the
  hinge loss ``max(0, 1 - D(x))`` the critic minimises): critic ``E[relu(1 - D(real))] + E[relu(1 + D(fake))]``,
  generator ``-E[D(fake)]``;
* ``wgan_gp`` (the text: a Wasserstein critic with gradient penalty, lambda 10): critic
  ``E[D(fake)] - E[D(real)] + lambda * E[(||grad D(x_hat)|| - 1)^2]``, generator ``-E[D(fake)]``.

L1 is the mean absolute error (per element), so gamma and delta weigh per-pixel and per-feature averages.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from lrkit.methods.progan.losses import gradient_penalty

__all__ = ["upscale", "pixel_loss", "d_hinge", "d_wgan_gp", "g_adversarial", "gradient_penalty"]


def upscale(lr: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    """F of eqs. 4-5: LR [B, 3, l, l] -> [B, 3, size, size] (bicubic / bilinear without corner alignment, or
    nearest)."""
    if mode == "nearest":
        return F.interpolate(lr, size=(size, size), mode="nearest")
    return F.interpolate(lr, size=(size, size), mode=mode, align_corners=False)


def pixel_loss(lr_fake: torch.Tensor, hr: torch.Tensor, *, gamma: float, delta: float, upscaler: str,
               vgg: Callable[[torch.Tensor], list[torch.Tensor]] | None = None) -> tuple[torch.Tensor, dict]:
    """eq. 3: ``gamma * L1(F(lr_fake), hr) + delta * sum_i L1(phi_i(F(lr_fake)), phi_i(hr))``. ``vgg`` None: the
    perceptual term is off (its weights are missing; the caller says so) and only the L1 term counts."""
    up = upscale(lr_fake, hr.shape[-1], upscaler)
    l1 = (up - hr).abs().mean()
    logs = {"l1": float(l1.detach())}
    loss = gamma * l1
    if vgg is not None and delta > 0:
        with torch.no_grad():
            target = vgg(hr)
        perc = sum((a - b).abs().mean() for a, b in zip(vgg(up), target))
        loss = loss + delta * perc
        logs["vgg"] = float(perc.detach())
    return loss, logs


def d_hinge(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """The critic's hinge loss ``E[relu(1 - D(real))] + E[relu(1 + D(fake))]``."""
    lr_, lf = F.relu(1.0 - real_scores).mean(), F.relu(1.0 + fake_scores).mean()
    return lr_ + lf, {"d_loss": float((lr_ + lf).detach()), "d_real": float(real_scores.detach().mean()),
                      "d_fake": float(fake_scores.detach().mean())}


def d_wgan_gp(real_scores: torch.Tensor, fake_scores: torch.Tensor, penalty: torch.Tensor,
              lambda_gp: float) -> tuple[torch.Tensor, dict[str, float]]:
    """The Wasserstein critic's loss with gradient penalty ``E[D(fake)] - E[D(real)] + lambda * penalty``."""
    wdist = real_scores.mean() - fake_scores.mean()
    loss = -wdist + lambda_gp * penalty
    return loss, {"d_loss": float(loss.detach()), "d_wdist": float(wdist.detach()),
                  "d_real": float(real_scores.detach().mean()), "d_fake": float(fake_scores.detach().mean())}


def g_adversarial(fake_scores: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """The generator's side of both readings: ``-E[D(fake)]``."""
    loss = -fake_scores.mean()
    return loss, {"g_adv": float(loss.detach())}
