"""SR-NAM's landmark-heatmap metric (eq. 7) on the heatmaps of FAN itself: the network the paper names.

Eq. 7 (``lrkit.metrics.landmarks`` has it in full) compares the landmark heatmaps of a generated HR image with those
of the original HR image: ``1/N sum_n sum_{i,j} (M^_{ij}^n - M_{ij}^n)^2``. The paper's example localiser is FAN
(Bulat & Tzimiropoulos), which outputs 64 x 64 heatmaps; the kit's FAN is StarGAN v2's 98-landmark (WFLW) one
(``lrkit.nets.fan``, weights ``stargan2_wing``). Protocol of the name ``landmark_heatmap_fan``:

1. Each image [3, H, W] in [-1, 1] -> bilinear resize to 256 px -> [0, 1] -> FAN -> its 98 heatmaps [98, 64, 64]
   as FAN outputs them (no normalisation, no thresholding, the boundary channel dropped): ``M^n``, N = 98.
2. Per pair, eq. 7: the squared difference summed over the 64 x 64 grid, averaged over the 98 landmarks.
3. The mean over all pairs (no detection step: FAN answers on every image). Lower is better.

Without the FAN weights the metric is unavailable (``lrkit.weights.WeightsUnavailable``), never replaced by the
dlib stand-in, which is its own metric with its own name.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from lrkit.metrics.imagesource import ImageSource, iter_batches

__all__ = ["landmark_heatmap_fan", "load_fan", "heatmap_eq7"]


def load_fan(weights: str | os.PathLike | None = None, device: str = "cpu"):
    """(FAN in eval mode on ``device``, ResolvedWeights): ``weights`` or the registered ``stargan2_wing`` file."""
    from lrkit import weights as W
    from lrkit.nets.fan import load_wing

    resolved = W.resolve("stargan2_wing", weights)
    return load_wing(resolved.path).to(device).eval().requires_grad_(False), resolved


def heatmap_eq7(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Eq. 7 per pair: heatmaps [B, N, R, R] x 2 -> [B] (sum over the grid of squared differences, mean over N)."""
    if a.shape != b.shape or a.dim() != 4:
        raise ValueError(f"heatmaps must both be [B, N, R, R] of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    return (a.double() - b.double()).pow(2).sum((-2, -1)).mean(-1)


@torch.no_grad()
def landmark_heatmap_fan(outputs: ImageSource, references: ImageSource, *, weights: str | os.PathLike | None = None,
                         batch_size: int = 16, device: str = "cpu", fan=None) -> dict[str, float]:
    """Eq. 7 between each output and its paired reference (by index) on FAN's heatmaps (module docstring).
    Returns ``landmark_heatmap_fan`` and ``n_pairs``. ``fan``: an already loaded FAN (tests), else ``weights``."""
    from lrkit.nets.fan import fan_heatmaps

    if fan is None:
        fan, _ = load_fan(weights, device)
    values = []
    outs, refs = iter_batches(outputs, batch_size, "outputs"), iter_batches(references, batch_size, "references")
    for a in outs:
        b = next(refs, None)
        if b is None or len(b) != len(a):
            raise ValueError("landmark_heatmap_fan pairs outputs with references by index: pass the same number of "
                             "images in the same order")
        values.append(heatmap_eq7(fan_heatmaps(fan, a.to(device)), fan_heatmaps(fan, b.to(device))).cpu())
    if next(refs, None) is not None:
        raise ValueError("landmark_heatmap_fan: more references than outputs; pass the same number of images")
    v = torch.cat(values).numpy() if values else np.zeros(0)
    return {"landmark_heatmap_fan": float(v.mean()) if len(v) else float("nan"), "n_pairs": int(len(v))}
