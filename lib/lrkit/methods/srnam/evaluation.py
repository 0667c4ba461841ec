"""How close the degradation GAN came to the known degradation (synthfaces + ``synthlr-v1`` only).

On the embedded data the truth is known: held-out synthfaces HR images (the val split) degraded by the process
itself are the reference LR set. Rows of :func:`degradation_check`, each an SWD (``lrkit.metrics.swd.swd_patch7``,
x 1e3, lower is closer) to that reference:

* the trained generator's G_ema on the same HR images, one noise draw each;
* the same architecture untrained (its initial weights, the same seed): where training started;
* a plain 4 x 4 average-pool downscale of the HR images (no degradation learned at all);
* the process applied to *other* val images (the floor: two samples of the true distribution).

:func:`degradation_curve` scores a run's snapshots (``checkpoints/step_*.pt``) the same way: the distance as
training went on.
"""

from __future__ import annotations

import torch

from lrkit.data.ops import downscale
from lrkit.data.synthetic_lr import SYNTHLR_V1, degrade_images
from lrkit.data.training_sets import open_images
from lrkit.methods.srnam.nets import HR_SIZE, LR_SIZE, DegradationGenerator
from lrkit.metrics.swd import swd_patch7

__all__ = ["degradation_check", "degradation_curve", "VAL_OFFSET"]

VAL_OFFSET = 10_000_000  # process indices of val images: never those of a training image


@torch.no_grad()
def _degrade_with(G: DegradationGenerator, hr: torch.Tensor, seed: int, batch: int = 64) -> torch.Tensor:
    g = torch.Generator().manual_seed(int(seed))
    z = torch.randn(hr.shape[0], G.noise_dim, generator=g)
    dev = next(G.parameters()).device
    return torch.cat([G(hr[i:i + batch].to(dev), z[i:i + batch].to(dev)).clamp(-1, 1).cpu()
                      for i in range(0, hr.shape[0], batch)])


@torch.no_grad()
def degradation_check(G: DegradationGenerator, *, n: int = 500, seed: int = 0, width: int | None = None,
                      noise_dim: int | None = None) -> list[dict]:
    """The rows of the module docstring on ``n`` val HR images (and ``n`` others for the floor). ``G``: the trained
    generator (eval mode); the untrained one is rebuilt with its width and noise size from ``seed``."""
    hr_all = open_images("synthfaces", "val", HR_SIZE, n=2 * n, seed=seed).pool.get(list(range(2 * n)))
    hr, other = hr_all[:n], hr_all[n:]
    truth, _ = degrade_images(hr, torch.arange(n) + VAL_OFFSET, SYNTHLR_V1, seed=seed)
    floor, _ = degrade_images(other, torch.arange(n, 2 * n) + VAL_OFFSET, SYNTHLR_V1, seed=seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        untrained = DegradationGenerator(width or G.width, noise_dim or G.noise_dim).eval()
    rows = []
    for name, lr in (("degradation GAN (G_ema)", _degrade_with(G.eval(), hr, seed + 1)),
                     ("the same net, untrained", _degrade_with(untrained, hr, seed + 1)),
                     ("4x4 average pool (no degradation)", downscale(hr, LR_SIZE, mode="avgpool")),
                     (f"{SYNTHLR_V1.name} on other images (floor)", floor)):
        rows.append({"lr_images": name, **swd_patch7(lr, truth, seed=seed), "n": n})
    return rows


def degradation_curve(checkpoints, *, n: int = 500, seed: int = 0) -> list[dict]:
    """One row per checkpoint (``step``, ``swd`` x 1e3 of its G_ema as in :func:`degradation_check`) on the same
    ``n`` val images, then step 0 (the untrained net) and the reference rows (average pool, floor) for scale."""
    from lrkit.methods.srnam.outputs import load_degradation

    rows, last = [], None
    for path in checkpoints:
        G = load_degradation(path)
        check = degradation_check(G, n=n, seed=seed)
        rows.append({"step": G.step, "lr_images": check[0]["lr_images"], "swd": check[0]["swd"],
                     "checkpoint": str(path)})
        last = check
    if last is None:
        raise ValueError("degradation_curve: no checkpoints given")
    rows.append({"step": 0, "lr_images": last[1]["lr_images"], "swd": last[1]["swd"], "checkpoint": ""})
    rows += [{"step": None, "lr_images": r["lr_images"], "swd": r["swd"], "checkpoint": ""} for r in last[2:]]
    return sorted(rows[:-2], key=lambda r: r["step"]) + rows[-2:]
