"""GAN losses shared by the I2I-LR and StarGAN v2 trainers.

All take raw discriminator logits (any shape; averaged over every element) and return ``(loss, logs)`` where
``logs`` holds plain floats for the JSONL loss log. The non-saturating loss with softplus is the ``log D`` form of
the papers' eq. 7 written stably: ``-log sigmoid(l) = softplus(-l)`` and ``-log(1 - sigmoid(l)) = softplus(l)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["d_nonsaturating", "g_nonsaturating", "r1_penalty", "r1_penalty_on_loss", "l1"]


def d_nonsaturating(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """Discriminator side of eq. 7: ``E[softplus(-D(real))] + E[softplus(D(fake))]`` (real and fake averaged
    separately, so unequal counts of reals and fakes weigh the two sides equally)."""
    loss_real = F.softplus(-real_logits).mean()
    loss_fake = F.softplus(fake_logits).mean()
    return loss_real + loss_fake, {
        "d_real": float(loss_real.detach()),
        "d_fake": float(loss_fake.detach()),
        "d_real_logit": float(real_logits.detach().float().mean()),
        "d_fake_logit": float(fake_logits.detach().float().mean()),
    }


def g_nonsaturating(fake_logits: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """Generator side, non-saturating: ``E[softplus(-D(fake))]`` (maximize log D(fake))."""
    loss = F.softplus(-fake_logits).mean()
    return loss, {"g_adv": float(loss.detach())}


def r1_penalty(real_logits: torch.Tensor, real_images: torch.Tensor, gamma: float,
               ) -> tuple[torch.Tensor, dict[str, float]]:
    """R1 (Mescheder et al. 2018): ``gamma / 2 * E_b ||d sum(D(real)) / d real_b||^2``.

    ``real_images`` must have ``requires_grad`` set before D ran on them. The gradient graph is kept
    (``create_graph``) so the penalty trains D. StarGAN v2's ``lambda_reg * 0.5 * ||grad||^2`` is the same
    expression with ``gamma = lambda_reg``; the I2I-LR paper states gamma = 0.5.
    """
    if not real_images.requires_grad:
        raise ValueError("r1_penalty: real_images.requires_grad is False; call real.requires_grad_(True) "
                         "before running the discriminator on it")
    (grad,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True)
    sq = grad.float().pow(2).flatten(1).sum(1)  # [B]: squared gradient norm per image
    loss = 0.5 * float(gamma) * sq.mean()
    return loss, {"r1": float(loss.detach()), "r1_grad_norm": float(sq.detach().sqrt().mean())}


def r1_penalty_on_loss(real_logits: torch.Tensor, real_images: torch.Tensor, gamma: float, groups: int = 1,
                       repeats: int = 1) -> tuple[torch.Tensor, dict[str, float]]:
    """R1 as the public I2I-LR code computes it: on the gradient of the *averaged real softplus loss* rather than
    of the summed logits.

    The batch is split in ``groups`` equal parts along dim 0 (the public code's real halves); for each part ``k``
    with loss ``L_k = mean softplus(-D(real_k))`` (over its images and logit-map positions) the penalty is
    ``gamma / 2 * mean_b ||dL_k / d real_b||^2``, and the result is ``repeats`` times the sum over parts (the
    public code evaluates each half's penalty twice per step). D treats images independently, so one backward
    of ``sum_k L_k`` gives every part's gradient. The gradient is that of the logits times
    ``sigmoid(-D) / n_k``: much smaller than :func:`r1_penalty`'s for the same gamma.
    """
    if not real_images.requires_grad:
        raise ValueError("r1_penalty_on_loss: real_images.requires_grad is False; call real.requires_grad_(True) "
                         "before running the discriminator on it")
    n = real_logits.shape[0]
    if groups < 1 or n % groups:
        raise ValueError(f"r1_penalty_on_loss: {n} real images cannot be split in {groups} equal groups")
    per = F.softplus(-real_logits.float()).reshape(groups, n // groups, -1).mean(dim=(1, 2))  # [groups]
    (grad,) = torch.autograd.grad(per.sum(), real_images, create_graph=True)
    sq = grad.float().pow(2).flatten(1).sum(1).reshape(groups, n // groups)  # [groups, n / groups]
    loss = 0.5 * float(gamma) * float(repeats) * sq.mean(dim=1).sum()
    return loss, {"r1": float(loss.detach()), "r1_grad_norm": float(sq.detach().sqrt().mean())}


def l1(x: torch.Tensor, target: torch.Tensor, name: str = "l1") -> tuple[torch.Tensor, dict[str, float]]:
    """Mean absolute error (the cycle loss of eq. 8 is this with the cycled image and its source)."""
    if x.shape != target.shape:
        raise ValueError(f"{name}: shapes differ, {tuple(x.shape)} vs {tuple(target.shape)}")
    loss = (x - target).abs().mean()
    return loss, {name: float(loss.detach())}
