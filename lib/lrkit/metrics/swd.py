"""Sliced Wasserstein distance between two sets of small images, on Laplacian-pyramid patches (ProGAN's SWD).

Karras et al. 2018 (§5, app. D) compare generated and real image sets by the sliced Wasserstein distance between
the distributions of 7 x 7 neighbourhoods taken from each level of their Laplacian pyramids. The kit uses it where
no pretrained feature network applies: between 16 px LR sets (the SR-NAM degradation GAN's outputs vs the truly
degraded images of the known ``synthlr`` process). It needs no weights; the protocol, fixed by the name
``swd_patch7``:

* levels: the Laplacian pyramid of each image, from its side down to 8 px (``side, side/2, ..., 8``; the last level
  is the Gaussian one); pyramid filter: 2 x 2 average pool down, nearest up;
* per level and image: ``patches_per_image`` (64) random 7 x 7 x 3 patches (positions seeded, the same positions
  for image i of both sets, so a set is at distance 0 from itself), flattened to 147-d;
* per level, each descriptor channel is normalised by the mean and std of *both* sets' patches together;
* ``repeats`` (4) sets of ``directions`` (128) random unit directions; the patches of each set are projected, sorted,
  and the mean absolute difference of the sorted projections averaged (the 1-D Wasserstein-1 distance per
  direction); the two sets must give the same number of patches per level (equal set sizes);
* result: one value per level (x 1e3, as ProGAN reports) and their mean, ``swd``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["swd_patch7", "sliced_wasserstein", "laplacian_pyramid", "PATCH"]

PATCH = 7


def laplacian_pyramid(x: torch.Tensor, min_side: int = 8) -> list[torch.Tensor]:
    """[N, C, S, S] -> levels from S down to ``min_side`` (the last is the low-pass image itself)."""
    levels = []
    while x.shape[-1] > min_side:
        low = F.avg_pool2d(x, 2)
        levels.append(x - F.interpolate(low, scale_factor=2, mode="nearest"))
        x = low
    levels.append(x)
    return levels


def _positions(level: torch.Tensor, per_image: int, g: torch.Generator) -> torch.Tensor:
    """[N, per_image] flat indices of random 7 x 7 patch corners (row-major over the valid positions)."""
    n, _, h, w = level.shape
    if h < PATCH or w < PATCH:
        raise ValueError(f"swd_patch7: a {h} x {w} level is smaller than the {PATCH} x {PATCH} patches")
    ys = torch.randint(0, h - PATCH + 1, (n, per_image), generator=g)
    xs = torch.randint(0, w - PATCH + 1, (n, per_image), generator=g)
    return ys * (w - PATCH + 1) + xs


def _patches(level: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    n, c, h, w = level.shape
    unfold = F.unfold(level, PATCH)  # [N, C*49, L], L = (h-6)*(w-6) positions, row-major
    out = torch.gather(unfold, 2, idx[:, None, :].expand(-1, unfold.shape[1], -1))  # [N, C*49, per_image]
    return out.permute(0, 2, 1).reshape(-1, c * PATCH * PATCH)


def sliced_wasserstein(pa: torch.Tensor, pb: torch.Tensor, directions: int, repeats: int,
                       g: torch.Generator) -> float:
    """Mean over ``repeats`` x ``directions`` random unit directions of the 1-D Wasserstein-1 distance between the
    projections of the descriptors ``pa`` and ``pb`` [M, D] (equal M: sorted projections, mean |difference|)."""
    if pa.shape != pb.shape:
        raise ValueError(f"sliced_wasserstein needs as many descriptors on both sides, got {tuple(pa.shape)} and "
                         f"{tuple(pb.shape)}")
    dists = []
    for _ in range(repeats):
        d = torch.randn(pa.shape[1], directions, generator=g)
        d = d / d.norm(dim=0, keepdim=True)
        sa, _ = (pa @ d).sort(dim=0)
        sb, _ = (pb @ d).sort(dim=0)
        dists.append((sa - sb).abs().mean())
    return float(torch.stack(dists).mean())


@torch.no_grad()
def swd_patch7(a: torch.Tensor, b: torch.Tensor, *, patches_per_image: int = 64, directions: int = 128,
               repeats: int = 4, seed: int = 0) -> dict[str, float]:
    """SWD between image sets ``a`` and ``b`` [N, 3, S, S] in [-1, 1] (the same N and S): ``{"swd": mean,
    "swd_<side>px": per level}`` (x 1e3; module docstring)."""
    if a.shape != b.shape or a.dim() != 4:
        raise ValueError(f"swd_patch7 compares two sets of one shape [N, 3, S, S], got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    g = torch.Generator().manual_seed(int(seed))
    out = {}
    for la, lb in zip(laplacian_pyramid(a.float().cpu()), laplacian_pyramid(b.float().cpu())):
        idx = _positions(la, patches_per_image, g)  # the same positions in both sets: SWD(a, a) = 0
        pa, pb = _patches(la, idx), _patches(lb, idx)
        both = torch.cat([pa, pb])
        mean, std = both.mean(0), both.std(0).clamp(min=1e-8)
        dist = sliced_wasserstein((pa - mean) / std, (pb - mean) / std, directions, repeats, g)
        out[f"swd_{la.shape[-1]}px"] = dist * 1e3
    out["swd"] = sum(v for k, v in out.items()) / len(out)
    return out
