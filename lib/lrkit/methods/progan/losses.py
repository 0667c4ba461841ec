"""ProGAN's WGAN-GP losses with the drift term (Gulrajani et al. 2017; Karras et al. 2018, §A.1), pure functions.

Critic: ``E[D(fake)] - E[D(real)] + lambda_gp * E[(||grad_x D(x_hat)||_2 - 1)^2] + drift * E[D(real)^2]`` with
``x_hat = eps * real + (1 - eps) * fake``, ``eps ~ U(0, 1)`` per sample (the gradient norm over all of a sample's
pixels and channels). Generator: ``-E[D(fake)]``. lambda_gp 10 and drift 0.001 are the paper's (and the PyTorch
ProGAN package's) values.

Each returns ``(loss, logs)``: a scalar tensor and a dict of plain floats for the loss log.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["gradient_penalty", "d_wgan_gp", "g_wgan"]


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     eps: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """``E_b[(||d critic(x_hat)_b / d x_hat_b||_2 - 1)^2]`` (unweighted) at ``x_hat = eps real + (1 - eps) fake``.

    ``eps`` broadcasts against the images ([B, 1, 1, 1] for one mix per sample). ``fake`` is detached (the penalty
    trains the critic only). The graph is kept (``create_graph``) so the penalty's gradient reaches the critic."""
    if real.shape != fake.shape:
        raise ValueError(f"gradient_penalty: real and fake differ in shape, {tuple(real.shape)} vs "
                         f"{tuple(fake.shape)}")
    x_hat = (eps * real.detach() + (1.0 - eps) * fake.detach()).requires_grad_(True)
    scores = critic(x_hat)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    norm = grad.flatten(1).norm(2, dim=1)  # [B]
    penalty = (norm - 1.0).pow(2).mean()
    return penalty, {"gp": float(penalty.detach()), "gp_grad_norm": float(norm.detach().mean())}


def d_wgan_gp(real_scores: torch.Tensor, fake_scores: torch.Tensor, penalty: torch.Tensor, lambda_gp: float,
              drift: float) -> tuple[torch.Tensor, dict[str, float]]:
    """The critic's loss ``mean(fake) - mean(real) + lambda_gp penalty + drift mean(real^2)``.

    Logs: ``d_loss`` (the total), ``d_wdist`` (``mean(real) - mean(fake)``, the critic's Wasserstein estimate),
    ``d_real`` / ``d_fake`` (mean scores), ``d_drift`` (``mean(real^2)``, unweighted)."""
    real_mean, fake_mean = real_scores.mean(), fake_scores.mean()
    drift_term = real_scores.pow(2).mean()
    loss = fake_mean - real_mean + float(lambda_gp) * penalty + float(drift) * drift_term
    return loss, {"d_loss": float(loss.detach()), "d_wdist": float((real_mean - fake_mean).detach()),
                  "d_real": float(real_mean.detach()), "d_fake": float(fake_mean.detach()),
                  "d_drift": float(drift_term.detach())}


def g_wgan(fake_scores: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """The generator's loss ``-mean(D(fake))``."""
    loss = -fake_scores.mean()
    return loss, {"g_loss": float(loss.detach())}
