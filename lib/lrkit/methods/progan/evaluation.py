"""Does a trained ProGAN make the faces it was trained on? Samples and an offline Fréchet distance.

The check the kit shows for PULSE's generator on synthfaces: ``n`` samples of the EMA generator (full depth,
alpha 1, latents N(0, I) seeded) against the first ``n`` training images, as the Fréchet distance of
EfficientNet-Lite0 features (``fd_efficientnet_lite0``: an offline stand-in named so, never "FID"), next to the
same distance for an *untrained* generator of the same config (its seeded initial weights) and for a second
set of real images (the floor: real vs real). A generator that learned something sits well below the untrained one.
"""

from __future__ import annotations

import pandas as pd
import torch

from lrkit.methods.progan.latent import load_progan
from lrkit.methods.progan.nets import ProganGenerator
from lrkit.methods.progan.task import open_training_set
from lrkit.metrics.efficientnet_fd import fd_efficientnet_lite0

__all__ = ["generator_check"]


@torch.no_grad()
def _samples(G: ProganGenerator, n: int, seed: int, device: str, batch: int = 50) -> torch.Tensor:
    z = torch.randn(n, G.latent_dim, generator=torch.Generator().manual_seed(seed))
    out = [G(z[i:i + batch].to(device), None, 1.0).float().clamp(-1, 1).cpu() for i in range(0, n, batch)]
    return torch.cat(out)


def generator_check(checkpoint, *, n: int = 200, seed: int = 0, device: str = "cpu",
                    data_root=None) -> tuple[pd.DataFrame, torch.Tensor]:
    """(table with one row per generator -- trained, untrained, real images -- and its FD to the first ``n``
    training images, ``n`` trained samples [n, 3, S, S]); ``n`` is capped at half the training set (the real vs
    real row needs a second ``n``)."""
    gen = load_progan(checkpoint, device=device)
    cfg = gen.config
    train = open_training_set(cfg, data_root)
    n = min(n, len(train) // 2)
    if n < 2:
        raise ValueError(f"the training set {train.label} has {len(train)} images; the check needs at least 4")
    real = train.pool.get(list(range(n)))
    real2 = train.pool.get(list(range(n, 2 * n)))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)  # the untrained generator: the config's seeded initial weights
        untrained = ProganGenerator(cfg.depth, cfg.latent_dim, cfg.fmap_base, cfg.fmap_max).to(device)
    sets = {f"ProGAN {cfg.preset} (step {gen.step})": _samples(gen.G, n, seed, device),
            f"ProGAN {cfg.preset}, untrained": _samples(untrained, n, seed, device),
            "real images (the next n)": real2}
    rows = []
    for name, fake in sets.items():
        # cache: the real set is embedded once for the three rows (content-keyed; a re-run reuses all three)
        r = fd_efficientnet_lite0(real, fake, device=device, allow_singular=True)
        rows.append({"generator": name, "fd_efficientnet_lite0": r["fd_efficientnet_lite0"], "n": n,
                     "singular_covariance": r["singular_covariance"]})
    return pd.DataFrame(rows), sets[f"ProGAN {cfg.preset} (step {gen.step})"]
