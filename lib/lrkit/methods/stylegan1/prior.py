"""PULSE's Gaussian prior on StyleGAN-1's W space, and the adaptor the latent search drives.

PULSE (``PULSE.py``) searches a Gaussian space and reaches the synthesis input through
``w = LeakyReLU_0.2(z * sigma + mu)``, per dimension. ``(mu, sigma)`` are the mean and (unbiased) standard deviation
of ``LeakyReLU_5(mapping(z))`` over 10^6 draws ``z ~ N(0, I_512)`` after ``torch.manual_seed(0)``: the slope 5
undoes the mapping net's final LeakyReLU(0.2), so the statistics are those of the last dense layer's
pre-activation, which is close to Gaussian. PULSE saves them as ``gaussian_fit.pt``, a dict ``{"mean": [512],
"std": [512]}`` whose tensors sit on ``cuda:0`` (the copy in its repository does: it does not load on a CPU machine
without a device remap).

PULSE draws all 10^6 x 512 values at once on the GPU (2 GB per activation; user reports of out-of-memory).
:func:`fit_gaussian` streams: it draws ``z`` chunk by chunk from one CPU ``torch.Generator`` seeded with ``seed``
and merges per-chunk float64 moments. torch's CPU normal sampler fills tensors in blocks of 16 values, so as long
as every chunk but the last holds a multiple of 16 values (chunks are rounded to a multiple of 16 rows), the
concatenated chunks are bit-identical to one ``torch.randn(n, d)`` call: the result does not depend on the chunk
size and equals the all-at-once computation up to float rounding. PULSE drew on CUDA, whose generator gives other
numbers for seed 0, so a fit here matches PULSE's file statistically (10^6 samples), not bit for bit.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from lrkit.fsutil import atomic_open
from lrkit.methods.stylegan1.nets import StyleGAN1Mapping, StyleGAN1Synthesis, noise_side
from lrkit.methods.stylegan1.official_files import StyleGAN1FileError, read_tensor_file

__all__ = ["fit_gaussian", "load_gaussian_fit", "save_gaussian_fit", "StyleGAN1LatentGenerator",
           "GAUSSIAN_FIT_FILENAME", "PRIOR_SLOPE", "FIT_SLOPE"]

GAUSSIAN_FIT_FILENAME = "gaussian_fit.pt"
PRIOR_SLOPE = 0.2  # the slope of map_prior's LeakyReLU: the mapping net's own output activation
FIT_SLOPE = 5.0  # 1 / 0.2: LeakyReLU(5) inverts LeakyReLU(0.2) before the statistics are taken
_ROW_BLOCK = 16  # torch's CPU normal sampler works in blocks of 16 values


def _module_device(module: nn.Module) -> torch.device:
    p = next(module.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def fit_gaussian(mapping: StyleGAN1Mapping, n_samples: int = 1_000_000, chunk: int = 65536, seed: int = 0,
                 device: str | torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """PULSE's prior statistics: per-dimension mean and unbiased std of ``LeakyReLU_5(mapping(z))``.

    ``z`` [n_samples, D] ~ N(0, I) from a CPU generator seeded with ``seed``, drawn and mapped ``chunk`` rows at a
    time (rounded up to a multiple of 16 rows; memory ~ a few ``chunk x D`` float32 activations) on ``device``
    (default: the mapping net's). Moments are merged in float64 (Chan et al.'s pairwise update, no cancellation).
    Returns float32 ``(mu [D], sigma [D])`` on ``device``.
    """
    if n_samples < 2:
        raise ValueError(f"n_samples must be >= 2 for a standard deviation, got {n_samples}")
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    device = torch.device(device) if device is not None else _module_device(mapping)
    dim = int(mapping.latent_dim)
    rows = -(-chunk // _ROW_BLOCK) * _ROW_BLOCK
    gen = torch.Generator().manual_seed(seed)
    count = 0
    mean = torch.zeros(dim, dtype=torch.float64, device=device)
    m2 = torch.zeros(dim, dtype=torch.float64, device=device)  # sum of squared deviations from ``mean``
    was_training = mapping.training
    mapping.eval()
    try:
        for start in range(0, n_samples, rows):
            b = min(rows, n_samples - start)
            z = torch.randn(b, dim, generator=gen).to(device)  # [b, D], float32 like PULSE
            x = F.leaky_relu(mapping(z), FIT_SLOPE).double()  # [b, D]
            c_mean = x.mean(0)
            c_m2 = (x - c_mean).pow(2).sum(0)
            total = count + b
            delta = c_mean - mean
            mean += delta * (b / total)
            m2 += c_m2 + delta.pow(2) * (count * b / total)
            count = total
    finally:
        mapping.train(was_training)
    sigma = (m2 / (count - 1)).sqrt()  # torch.std's default (unbiased), as PULSE
    return mean.float(), sigma.float()


def load_gaussian_fit(path: str | os.PathLike, device: str | torch.device = "cpu"
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Read PULSE's ``gaussian_fit.pt`` (``{"mean": [D], "std": [D]}``, stored on cuda:0) -> float32 ``(mu,
    sigma)`` on ``device``. The tensors are remapped to the CPU first, so the file loads on any machine."""
    path = Path(path)
    obj = read_tensor_file(path, "PULSE's gaussian_fit.pt")
    if not isinstance(obj, Mapping) or "mean" not in obj or "std" not in obj:
        keys = sorted(map(str, obj)) if isinstance(obj, Mapping) else type(obj).__name__
        raise StyleGAN1FileError(f"{path} is not PULSE's gaussian_fit.pt: expected a dict with keys 'mean' and "
                                 f"'std', got {keys}")
    mu, sigma = obj["mean"], obj["std"]
    if not (isinstance(mu, torch.Tensor) and isinstance(sigma, torch.Tensor)) or mu.dim() != 1 \
            or mu.shape != sigma.shape:
        shapes = [tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__ for t in (mu, sigma)]
        raise StyleGAN1FileError(f"{path}: 'mean' and 'std' must be 1-D tensors of one length (512 for FFHQ), "
                                 f"got {shapes[0]} and {shapes[1]}")
    mu, sigma = mu.float(), sigma.float()
    if not (torch.isfinite(mu).all() and torch.isfinite(sigma).all() and (sigma > 0).all()):
        raise StyleGAN1FileError(f"{path}: 'mean' / 'std' hold non-finite values or a std <= 0; the fit is broken, "
                                 "fit it again (fit_gaussian)")
    return mu.to(device), sigma.to(device)


def save_gaussian_fit(mu: torch.Tensor, sigma: torch.Tensor, path: str | os.PathLike) -> Path:
    """Write ``{"mean": mu, "std": sigma}`` as PULSE does (but CPU tensors, atomically)."""
    path = Path(path)
    with atomic_open(path, "wb") as fh:
        torch.save({"mean": mu.detach().float().cpu(), "std": sigma.detach().float().cpu()}, fh)
    return path


class StyleGAN1LatentGenerator(nn.Module):
    """StyleGAN-1 as a :class:`lrkit.nets.latent_generator.LatentGenerator` for PULSE's search.

    ``latent_dim`` = 512, ``num_latents`` = 2 * log2(S) - 2 (18 at 1024), ``output_size`` = S;
    ``map_prior(z [B, n, d]) = LeakyReLU_0.2(z * sigma + mu)``; ``synthesize(w [B, n, d], noise)`` -> the synthesis
    output ``[B, 3, S, S]`` (unclamped); ``noise_shapes()`` -> ``(1, s_i, s_i)`` with ``s_i = 2**(i//2+2)``,
    PULSE's per-layer noise tensors without their batch dimension.

    The networks are frozen (``requires_grad_(False)``, eval mode), as PULSE freezes its synthesis net: the search
    optimises only the latents and noise maps, and gradients still flow to both. ``mapping`` may be None (the prior
    came from a file); it is kept only for reference. ``mu`` / ``sigma`` are buffers, so ``.to(device)`` moves them.
    """

    def __init__(self, mapping: StyleGAN1Mapping | None, synthesis: StyleGAN1Synthesis, mu: torch.Tensor,
                 sigma: torch.Tensor) -> None:
        super().__init__()
        d = int(synthesis.latent_dim)
        if tuple(mu.shape) != (d,) or tuple(sigma.shape) != (d,):
            raise ValueError(f"mu and sigma must be [{d}] (the synthesis net's latent width), got "
                             f"{tuple(mu.shape)} and {tuple(sigma.shape)}")
        if mapping is not None and int(mapping.latent_dim) != d:
            raise ValueError(f"mapping latent width {mapping.latent_dim} != synthesis latent width {d}")
        self.synthesis = synthesis.requires_grad_(False).eval()
        self.mapping = mapping.requires_grad_(False).eval() if mapping is not None else None
        dev = _module_device(synthesis)
        self.register_buffer("mu", mu.detach().float().to(dev))
        self.register_buffer("sigma", sigma.detach().float().to(dev))
        self.latent_dim = d
        self.num_latents = int(synthesis.num_layers)
        self.output_size = int(synthesis.resolution)

    def noise_shapes(self) -> list[tuple[int, ...]]:
        return [(1, noise_side(i), noise_side(i)) for i in range(self.num_latents)]

    def map_prior(self, z: torch.Tensor) -> torch.Tensor:
        # z [B, n, d] -> w [B, n, d]; mu / sigma [d] broadcast over batch and layers.
        return F.leaky_relu(z * self.sigma.to(z) + self.mu.to(z), PRIOR_SLOPE)

    def synthesize(self, w: torch.Tensor, noise: list[torch.Tensor] | None = None) -> torch.Tensor:
        return self.synthesis(w, noise)

    def forward(self, z: torch.Tensor, noise: list[torch.Tensor] | None = None) -> torch.Tensor:
        return self.synthesize(self.map_prior(z), noise)
