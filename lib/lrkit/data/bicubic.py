"""PULSE's downscaler: a separable bicubic filter applied with stride ``factor`` (what PULSE's loss compares).

PULSE (Menon et al. 2020) scores a 1024 px output against an LR image of side 1024 / f through its own filter,
not through ``torch.nn.functional.interpolate``: the 1-D kernel has ``4 f`` taps, tap ``i`` is the Keys cubic
(a = -0.5) at ``(i - 2 f + 0.5) / f`` (centred between pixels), normalised to sum 1; the image is mirror-padded
(``reflect``) by ``3 f`` pixels per axis (``3 f // 2`` before, the rest after) and filtered rows first, then
columns, each with stride ``f``. The result is not clamped. Written here (not PULSE's module) so it runs on any
device and dtype; :func:`lrkit.data.ops.downscale` (average pooling) is the I2I-LR papers' operator.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["cubic", "bicubic_kernel", "pulse_bicubic_downscale"]


def cubic(t: torch.Tensor, a: float = -0.5) -> torch.Tensor:
    """Keys' cubic convolution weight at offsets ``t`` (float64 tensor, in pixels of the output grid)."""
    s = t.abs()
    inner = (a + 2) * s ** 3 - (a + 3) * s ** 2 + 1  # |t| <= 1
    outer = a * s ** 3 - 5 * a * s ** 2 + 8 * a * s - 4 * a  # 1 < |t| < 2
    return torch.where(s <= 1, inner, torch.where(s < 2, outer, torch.zeros_like(s)))


def bicubic_kernel(factor: int, a: float = -0.5) -> torch.Tensor:
    """The normalised 1-D kernel [4 * factor] (float64)."""
    size = 4 * factor
    offsets = (torch.arange(size, dtype=torch.float64) - size // 2 + 0.5) / factor
    k = cubic(offsets, a)
    return k / k.sum()


def pulse_bicubic_downscale(x: torch.Tensor, factor: int) -> torch.Tensor:
    """[N, C, H, W] -> [N, C, H / factor, W / factor] with PULSE's filter (differentiable, input dtype/device)."""
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
        raise ValueError(f"the bicubic downscale factor must be a positive int, got {factor!r}")
    n, c, h, w = x.shape
    if h % factor or w % factor:
        raise ValueError(f"bicubic downscaling by {factor} needs sides that are multiples of {factor}, got {h}x{w}")
    if factor == 1:
        return x
    size = 4 * factor
    pad = size - factor
    if pad >= min(h, w):
        raise ValueError(f"bicubic downscaling by {factor} mirror-pads {pad} pixels, more than the image's {h}x{w}")
    k = bicubic_kernel(factor).to(device=x.device, dtype=x.dtype)
    before, after = pad // 2, pad - pad // 2
    rows = k.view(1, 1, size, 1).expand(c, 1, size, 1)  # one depthwise filter per channel (groups = C)
    cols = k.view(1, 1, 1, size).expand(c, 1, 1, size)
    y = F.conv2d(F.pad(x, (0, 0, before, after), mode="reflect"), rows, stride=(factor, 1), groups=c)
    return F.conv2d(F.pad(y, (before, after, 0, 0), mode="reflect"), cols, stride=(1, factor), groups=c)
