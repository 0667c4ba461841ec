"""The small interface a pretrained face generator offers to the latent search (PULSE, SR-NAM's search).

A generator maps ``num_latents`` vectors of ``latent_dim`` (one per synthesis layer: 18 for StyleGAN-1 at
1024 px, 1 for ProGAN) plus optional per-sample noise maps to an RGB image of side ``output_size`` in [-1, 1].
The search optimises in a Gaussian space and reaches the generator's input through ``map_prior`` (identity for
ProGAN, whose input is the raw Gaussian; PULSE's lrelu(z * sigma + mu, 0.2) for StyleGAN-1's W space).

A user's own generator satisfies it by having these attributes and methods; nothing has to inherit from
:class:`LatentGenerator` (it is a ``typing.Protocol``). :func:`check_latent_generator` runs one tiny forward
pass and says exactly what does not fit.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

__all__ = ["LatentGenerator", "check_latent_generator"]


@runtime_checkable
class LatentGenerator(Protocol):
    latent_dim: int  # d: width of one latent vector
    num_latents: int  # n: latent vectors per image (18 StyleGAN-1 1024, 1 ProGAN)
    output_size: int  # side of the square output image in pixels

    def noise_shapes(self) -> list[tuple[int, ...]]:
        """Per-sample shapes of the noise inputs, in the order ``synthesize`` takes them ([] when none)."""
        ...

    def map_prior(self, z: torch.Tensor) -> torch.Tensor:
        """Gaussian latents [B, n, d] -> the synthesis input [B, n, d] (differentiable)."""
        ...

    def synthesize(self, w: torch.Tensor, noise: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Synthesis input [B, n, d] (+ noise tensors [B, *shape] or None: the generator's own) ->
        images [B, 3, output_size, output_size] in [-1, 1] (not clamped)."""
        ...


def check_latent_generator(gen, device: str | torch.device = "cpu") -> None:
    """Raise ``TypeError`` naming what ``gen`` lacks or returns wrongly (one batch-of-1 forward pass)."""
    missing = [a for a in ("latent_dim", "num_latents", "output_size", "noise_shapes", "map_prior", "synthesize")
               if not hasattr(gen, a)]
    if missing:
        raise TypeError(f"{type(gen).__name__} is not a latent generator: it lacks {missing} "
                        "(see lrkit.nets.latent_generator.LatentGenerator)")
    n, d, s = int(gen.num_latents), int(gen.latent_dim), int(gen.output_size)
    z = torch.zeros(1, n, d, device=device)
    w = gen.map_prior(z)
    if tuple(w.shape) != (1, n, d):
        raise TypeError(f"{type(gen).__name__}.map_prior returned {tuple(w.shape)} for [1, {n}, {d}]; it must keep "
                        "the shape [B, num_latents, latent_dim]")
    noise = [torch.zeros(1, *shape, device=device) for shape in gen.noise_shapes()] or None
    with torch.no_grad():
        x = gen.synthesize(w, noise)
    if tuple(x.shape) != (1, 3, s, s):
        raise TypeError(f"{type(gen).__name__}.synthesize returned {tuple(x.shape)}; expected [1, 3, {s}, {s}] "
                        "(output_size)")
