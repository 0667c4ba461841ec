"""Controlled degradations for metric sanity checks: Gaussian blur and additive Gaussian noise.

Strengths are in pixels (blur sigma) and in 8-bit grey levels (noise std), so a table reads the same at any HR size.
Images are float tensors [N, 3, H, W] in [-1, 1]; outputs are clamped back to [-1, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

KINDS = ("blur", "noise")


def gaussian_blur(x: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """Separable Gaussian blur with reflect padding; radius 3 sigma. ``sigma_px == 0`` returns ``x`` unchanged."""
    if sigma_px < 0:
        raise ValueError(f"blur sigma must be >= 0 pixels, got {sigma_px}")
    if sigma_px == 0:
        return x
    radius = max(1, int(3 * sigma_px + 0.5))  # scipy.ndimage's truncate=3 convention
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma_px) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    pad = min(radius, x.shape[-1] - 1, x.shape[-2] - 1)
    if pad < radius:  # reflect padding cannot exceed the image; fall back to replicate for tiny images
        xp = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    else:
        xp = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    xp = F.conv2d(xp, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)  # horizontal pass
    xp = F.conv2d(xp, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)  # vertical pass
    return xp


def gaussian_noise(x: torch.Tensor, std_levels: float, seed: int = 0) -> torch.Tensor:
    """Add N(0, std) noise, ``std_levels`` in 8-bit grey levels (1 level = 2/255 on [-1, 1]); seeded."""
    if std_levels < 0:
        raise ValueError(f"noise std must be >= 0 grey levels, got {std_levels}")
    g = torch.Generator(device="cpu").manual_seed(seed)
    noise = torch.randn(x.shape, generator=g, dtype=x.dtype).to(x.device)
    return (x + noise * (std_levels * 2.0 / 255.0)).clamp(-1, 1)


def degrade(x: torch.Tensor, kind: str, strength: float, seed: int = 0) -> torch.Tensor:
    if kind == "blur":
        return gaussian_blur(x, strength).clamp(-1, 1)
    if kind == "noise":
        return gaussian_noise(x, strength, seed)
    raise ValueError(f"unknown degradation {kind!r}; use one of {KINDS}")
