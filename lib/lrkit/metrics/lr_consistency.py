"""LR consistency: does a generated HR image, downscaled, reproduce its LR target? (I2I-LR eq. 1-2.)

I2I-LR defines the set of acceptable outputs for an LR target ``y`` as the HR images ``X`` with
``|| DS(X) - y ||_p <= eps`` (eq. 1-2), ``p = 1``, ``eps`` "close to zero", DS = average pooling (Sec. 4).
The paper gives no value of eps and reports no such number; this metric measures the quantity of eq. 1 so that it
can be reported and thresholded.

Protocol:

1. Each output is quantized to 8 bits first (round half to even, clamped to [-1, 1], exactly
   :func:`lrkit.data.ops.to_uint8`): what a saved PNG contains, so a tensor and its saved file score the same.
2. DS = :func:`lrkit.data.ops.downscale` to the target's size, ``mode="avgpool"`` (exact mean of each f x f
   block; ``"bicubic"`` for ablations), computed in float64 on the 8-bit levels. The result is not rounded, unless
   ``quantize_ds=True``: then it is rounded to the nearest 8-bit level, as I2I-LR's eq. 5 does with the
   downscaled output before comparing it with the target (``|y - round(DS(G(X)))|``).
3. Targets: LR images (size ``lr_size``, or smaller than the outputs when ``lr_size`` is None), quantized to 8 bits
   (a no-op for images read from files); or HR images of the outputs' size, turned into the LR target by
   :func:`lrkit.data.ops.make_lr` (``downscale`` with the same ``mode``, then 8-bit quantization: the LR images
   the data pipeline stores). HR targets need ``lr_size``.
4. Errors are absolute differences in 8-bit grey levels (0..255 scale; one level = 2/255 in [-1, 1] units) over
   the 3 x m x n LR values. The per-image error is their **mean**: the L1 norm of eq. 1 (p = 1) divided by the
   number of LR values, so ``error <= eps`` is eq. 1 with ``eps_L1 = eps * 3 m n`` grey levels, or
   ``eps * 3 m n * 2/255`` in [-1, 1] units.

Returned (grey levels): ``lr_error_mean`` = mean over images of the per-image error; ``lr_error_max`` = the largest
per-image error (the worst image); ``lr_error_pixel_max`` = the largest single LR value difference over all
images; ``lr_within_eps_<eps>`` for each of ``epsilon_levels`` = fraction of images with per-image error
``<= eps``; ``n_images``; ``lr_size``. An output that is exactly an HR image whose LR target was made from it
scores at most 1 level per value (rounding before vs after pooling), typically about 0.25 level on average.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lrkit.data.ops import DOWNSCALE_MODES, downscale, make_lr
from lrkit.metrics.image_quality import iter_paired_batches
from lrkit.metrics.imagesource import ImageSource

__all__ = ["lr_consistency", "lr_errors", "DEFAULT_EPSILON_LEVELS"]

DEFAULT_EPSILON_LEVELS = (0.5, 1.0, 2.0, 4.0)


def _levels(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] floats -> float64 8-bit levels 0..255: lrkit.data.ops.to_uint8's float32 formula (clamp, round half
    to even), so a tensor gives exactly the levels of the PNG it would be saved as."""
    return torch.round((x.to(torch.float32).clamp(-1.0, 1.0) + 1.0) * 127.5).to(torch.float64)


def _target_levels(t: torch.Tensor, out_size: int, lr_size: int | None, mode: str) -> torch.Tensor:
    h, w = t.shape[-2:]
    if h != w:
        raise ValueError(f"LR targets must be square, got {h}x{w}")
    if lr_size is None:
        if h >= out_size:
            raise ValueError(f"targets are {h}x{w} and outputs {out_size}x{out_size}: HR targets need lr_size (the "
                             "LR size to downscale them to), or pass the LR targets themselves")
        return _levels(t)
    if h == lr_size:
        return _levels(t)
    if h == out_size:
        # HR target -> the stored LR image: downscale then 8-bit quantization (make_lr), then levels (exact).
        return _levels(make_lr(t.to(torch.float32), lr_size, mode=mode, quantize_8bit=True))
    raise ValueError(f"targets are {h}x{w}: neither the LR size {lr_size} nor the outputs' size {out_size}")


def lr_errors(
    outputs: torch.Tensor, targets: torch.Tensor, *, lr_size: int | None = None, mode: str = "avgpool",
    quantize_ds: bool = False,
) -> torch.Tensor:
    """Absolute LR errors of one batch -> float64 [B, 3, m, m] in 8-bit grey levels (steps 1-4 of the protocol)."""
    if mode not in DOWNSCALE_MODES:
        raise ValueError(f"unknown downscale mode {mode!r}; use one of {DOWNSCALE_MODES}")
    if outputs.ndim != 4 or targets.ndim != 4 or len(outputs) != len(targets):
        raise ValueError(f"expected batches [B, 3, H, W] of equal length, got {tuple(outputs.shape)} and "
                         f"{tuple(targets.shape)}")
    h, w = outputs.shape[-2:]
    if h != w:
        raise ValueError(f"outputs must be square, got {h}x{w}")
    tgt = _target_levels(targets, h, lr_size, mode)  # [B, 3, m, m]
    ds = downscale(_levels(outputs), tgt.shape[-1], mode=mode)  # DS of the 8-bit output, float64 levels
    if quantize_ds:
        ds = torch.round(ds)
    return (ds - tgt).abs()


def lr_consistency(
    outputs: ImageSource, lr_targets: ImageSource, *, lr_size: int | None = None,
    epsilon_levels: Sequence[float] = DEFAULT_EPSILON_LEVELS, mode: str = "avgpool", quantize_ds: bool = False,
    batch_size: int = 64, device: str = "cpu",
) -> dict[str, float]:
    """How well downscaled outputs match their LR targets (I2I-LR eq. 1, p = 1), in 8-bit grey levels.

    ``outputs[i]`` is compared with ``lr_targets[i]`` (by index; two folders: by file name). Full protocol and the
    returned keys: the module docstring. Lower errors and higher ``lr_within_eps_*`` are better.
    """
    eps = [float(e) for e in epsilon_levels]
    if any(e < 0 for e in eps):
        raise ValueError(f"epsilon_levels must be >= 0 grey levels, got {eps}")
    per_image, pixel_max, m = [], 0.0, None
    for xo, xt in iter_paired_batches(outputs, lr_targets, batch_size, ("outputs", "LR targets"), same_size=False):
        err = lr_errors(xo.to(device), xt.to(device), lr_size=lr_size, mode=mode, quantize_ds=quantize_ds)
        m = err.shape[-1]
        per_image.append(err.mean(dim=(1, 2, 3)).cpu())  # mean over the 3 x m x m LR values: L1 / (3 m m)
        pixel_max = max(pixel_max, float(err.max()))
    e = torch.cat(per_image)
    out: dict[str, float] = {
        "lr_error_mean": float(e.mean()),
        "lr_error_max": float(e.max()),
        "lr_error_pixel_max": pixel_max,
    }
    for level in eps:
        out[f"lr_within_eps_{level:g}"] = float((e <= level).double().mean())
    out["n_images"] = len(e)
    out["lr_size"] = int(m)
    return out
