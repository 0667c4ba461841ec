"""PSNR and SSIM between paired images (the "traditional SR metrics" of DivSR Table 1), plus the pairing helper
that every paired metric of the kit uses.

Convention (the defaults; each is a keyword argument):

* **Pixel scale.** Images arrive as image sources in [-1, 1] (:mod:`lrkit.metrics.imagesource`) and are mapped to
  the 8-bit scale [0, 255] by ``v = (x + 1) * 127.5``. With ``quantize=True`` (default) values are first clamped to
  [-1, 1] and rounded to the nearest integer level, exactly as :func:`lrkit.data.ops.to_uint8` does, i.e. the
  numbers are those of the saved 8-bit PNG files: a tensor and the folder it was saved to score identically.
  ``data_range=255`` (the peak value of that scale) for both metrics and both colour conventions.
* **Colour.** ``channel="rgb"`` (default): all three RGB channels; PSNR uses the MSE over every pixel and channel,
  SSIM is computed per channel and the three values averaged (scikit-image's ``channel_axis=-1``).
  ``channel="y"``: the ITU-R BT.601 luma of the 8-bit RGB values, as in MATLAB's ``rgb2ycbcr`` and most SR code,
  ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` in [16, 235], kept as float64 (not rounded).
* **Borders.** ``crop_border=0`` (default); SR papers often crop ``scale`` pixels from every edge first.
* **SSIM.** Wang et al. (2004) as implemented by ``skimage.metrics.structural_similarity(im1, im2,
  gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255, channel_axis=-1)``: an 11 x 11
  Gaussian window (sigma 1.5, truncated at 3.5 sigma, separable, normalised to sum 1), population (co)variances,
  K1 = 0.01, K2 = 0.03, C1 = (K1 * 255)^2, C2 = (K2 * 255)^2, and the SSIM map averaged over the pixels at least 5
  px (the window radius) from every edge. scikit-image filters the whole image with 'reflect' padding and then
  discards that 5 px strip, so only windows lying fully inside the image count; this module convolves without
  padding ("valid"), which yields exactly that cropped region. Images must be at least 11 x 11 (after cropping).
* **Aggregation.** One value per image pair; the reported number is the mean over pairs.
* **PSNR.** ``10 * log10(255^2 / MSE)`` per pair, MSE in float64. Identical images have MSE 0 and PSNR ``inf``
  (scikit-image returns inf too); one such pair makes the mean ``inf``. ``psnr_n_identical`` counts them.

Everything is computed in float64 with torch, batched; values equal scikit-image's per image within 1e-6 (the
tests check it). Pairs: by index for tensors and iterables, by relative path (without extension) for two folders.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F

from lrkit.metrics.imagesource import ImageSource, iter_batches, list_images

__all__ = [
    "psnr",
    "ssim",
    "psnr_per_image",
    "ssim_per_image",
    "iter_paired_batches",
    "rebatch",
    "to_pixel_scale",
]

CHANNELS = ("rgb", "y")
# BT.601 luma for 8-bit RGB in [0, 255]: Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255.
_BT601_Y = (65.481, 128.553, 24.966)
_SSIM_SIGMA = 1.5
_SSIM_TRUNCATE = 3.5  # scikit-image's value for gaussian_weights=True: an 11-tap window at sigma 1.5
_SSIM_K1 = 0.01
_SSIM_K2 = 0.03


# ----------------------------------------------------------------------------------------------------------------
# Pairing two image sources
# ----------------------------------------------------------------------------------------------------------------

def rebatch(batches: Iterator[torch.Tensor], batch_size: int) -> Iterator[torch.Tensor]:
    """Re-cut a stream of [B_i, ...] batches into batches of exactly ``batch_size`` (the last may be smaller).

    Iterable sources choose their own batch sizes; pairing two of them needs aligned batches.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    pending: list[torch.Tensor] = []
    n_pending = 0
    for batch in batches:
        pending.append(batch)
        n_pending += len(batch)
        if n_pending >= batch_size:
            merged = torch.cat(pending)
            cut = (len(merged) // batch_size) * batch_size
            for i in range(0, cut, batch_size):
                yield merged[i:i + batch_size]
            pending = [merged[cut:]] if cut < len(merged) else []
            n_pending = len(merged) - cut
    if n_pending:
        yield torch.cat(pending)


def _pairing_keys(folder: Path) -> list[str]:
    """Relative paths without extension, in the order ``list_images`` returns (and ``iter_batches`` loads)."""
    return [p.relative_to(folder).with_suffix("").as_posix() for p in list_images(folder)]


def _check_folder_pairing(a: Path, b: Path, what: tuple[str, str]) -> None:
    ka, kb = _pairing_keys(a), _pairing_keys(b)
    if ka == kb:
        if len(set(ka)) != len(ka):
            dup = sorted(k for k, n in _counts(ka).items() if n > 1)[:5]
            raise ValueError(f"{what[0]}: several files share a name apart from the extension ({dup}); pairing by "
                             "name is ambiguous; keep one file per name")
        return
    sa, sb = set(ka), set(kb)
    only_a, only_b = sorted(sa - sb), sorted(sb - sa)
    if only_a or only_b:
        raise ValueError(
            f"{what[0]} ({a}) and {what[1]} ({b}) do not contain the same file names (pairs are matched by relative "
            f"path without extension): only in {what[0]}: {only_a[:5]}{' ...' if len(only_a) > 5 else ''}; only in "
            f"{what[1]}: {only_b[:5]}{' ...' if len(only_b) > 5 else ''}. Remove the extra files or pass tensors "
            "paired by index"
        )
    raise ValueError(f"{what[0]} and {what[1]} hold the same names but they sort differently (mixed extensions or "
                     "duplicated names); use one extension per folder")


def _counts(keys: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for k in keys:
        out[k] = out.get(k, 0) + 1
    return out


def iter_paired_batches(
    a: ImageSource, b: ImageSource, batch_size: int = 32, what: tuple[str, str] = ("a", "b"),
    same_size: bool = True,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield aligned batches ``(xa [B,3,H,W], xb [B,3,H',W'])`` of two image sources, pair ``i`` with pair ``i``.

    Two folders are paired by relative path without extension (``x.png`` pairs with ``x.jpg``) and must contain
    the same names; any other combination pairs by position (folders in sorted order). Different numbers of
    images, NaN/Inf, and (with ``same_size``) different image sizes are errors.
    """
    if isinstance(a, (str, Path)) and isinstance(b, (str, Path)):
        _check_folder_pairing(Path(a), Path(b), what)
    ia = rebatch(iter_batches(a, batch_size, what[0]), batch_size)
    ib = rebatch(iter_batches(b, batch_size, what[1]), batch_size)
    n = 0
    for xa, xb in itertools.zip_longest(ia, ib):
        if xa is None or xb is None or len(xa) != len(xb):
            # Count what is left to make the message exact.
            na = n + (0 if xa is None else len(xa)) + sum(len(t) for t in ia)
            nb = n + (0 if xb is None else len(xb)) + sum(len(t) for t in ib)
            raise ValueError(f"{what[0]} has {na} images but {what[1]} has {nb}; paired metrics need the same "
                             "number of images in both")
        if same_size and xa.shape != xb.shape:
            raise ValueError(f"{what[0]} images are {tuple(xa.shape[-2:])} but {what[1]} images are "
                             f"{tuple(xb.shape[-2:])}; paired metrics compare images of the same size")
        n += len(xa)
        yield xa, xb


# ----------------------------------------------------------------------------------------------------------------
# Per-image values
# ----------------------------------------------------------------------------------------------------------------

def to_pixel_scale(x: torch.Tensor, quantize: bool = True, channel: str = "rgb") -> torch.Tensor:
    """[N, 3, H, W] in [-1, 1] -> float64 on the 8-bit scale: [N, 3, H, W] in [0, 255] (rgb) or [N, 1, H, W] (y)."""
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {CHANNELS}, got {channel!r}")
    if quantize:
        # lrkit.data.ops.to_uint8's formula in its float32 arithmetic (round half to even), so that a tensor scores
        # exactly like the PNG file it is saved to (float64 arithmetic would round a few values differently).
        v = torch.round((x.to(torch.float32).clamp(-1.0, 1.0) + 1.0) * 127.5).to(torch.float64)
    else:
        v = (x.to(torch.float64) + 1.0) * 127.5
    if channel == "y":
        r, g, b = v[:, 0:1], v[:, 1:2], v[:, 2:3]
        v = 16.0 + (_BT601_Y[0] * r + _BT601_Y[1] * g + _BT601_Y[2] * b) / 255.0
    return v


def _crop(v: torch.Tensor, crop_border: int) -> torch.Tensor:
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    if crop_border == 0:
        return v
    h, w = v.shape[-2:]
    if 2 * crop_border >= min(h, w):
        raise ValueError(f"crop_border={crop_border} removes the whole {h}x{w} image")
    return v[..., crop_border:h - crop_border, crop_border:w - crop_border]


def _gaussian_taps(sigma: float = _SSIM_SIGMA, truncate: float = _SSIM_TRUNCATE) -> torch.Tensor:
    """1-D Gaussian window, float64, normalised to sum 1; radius int(truncate * sigma + 0.5) as scipy.ndimage uses."""
    radius = int(truncate * sigma + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    w = torch.exp(-0.5 * (t / sigma) ** 2)
    return w / w.sum()


def psnr_per_image(
    a: torch.Tensor, b: torch.Tensor, *, data_range: float = 255.0, channel: str = "rgb", quantize: bool = True,
    crop_border: int = 0,
) -> torch.Tensor:
    """PSNR of each pair of a batch ([N, 3, H, W] in [-1, 1]) -> float64 [N]; ``inf`` for identical images."""
    if a.shape != b.shape:
        raise ValueError(f"PSNR needs images of the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    va = _crop(to_pixel_scale(a, quantize, channel), crop_border)
    vb = _crop(to_pixel_scale(b, quantize, channel), crop_border)
    mse = ((va - vb) ** 2).mean(dim=(1, 2, 3))  # [N]
    # 10 log10(R^2 / 0) = +inf, as scikit-image returns (without its divide-by-zero warning).
    return 10.0 * torch.log10(float(data_range) ** 2 / mse)


def ssim_per_image(
    a: torch.Tensor, b: torch.Tensor, *, data_range: float = 255.0, channel: str = "rgb", quantize: bool = True,
    crop_border: int = 0, k1: float = _SSIM_K1, k2: float = _SSIM_K2, sigma: float = _SSIM_SIGMA,
) -> torch.Tensor:
    """SSIM of each pair of a batch ([N, 3, H, W] in [-1, 1]) -> float64 [N] (channel mean for RGB)."""
    if a.shape != b.shape:
        raise ValueError(f"SSIM needs images of the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    x = _crop(to_pixel_scale(a, quantize, channel), crop_border)
    y = _crop(to_pixel_scale(b, quantize, channel), crop_border)
    n, c, h, w = x.shape
    taps = _gaussian_taps(sigma).to(x.device)
    win = len(taps)
    if h < win or w < win:
        raise ValueError(f"SSIM uses an {win}x{win} window; images of {h}x{w} (after crop_border) are too small")
    # The five statistics of every (image, channel) plane filtered in one pass: [5 * N * C, 1, H, W].
    planes = torch.stack([x, y, x * x, y * y, x * y]).reshape(5 * n * c, 1, h, w)
    f = F.conv2d(planes, taps.view(1, 1, win, 1))  # rows, valid: [5NC, 1, H - 10, W]
    f = F.conv2d(f, taps.view(1, 1, 1, win))  # columns, valid: [5NC, 1, H - 10, W - 10]
    ux, uy, uxx, uyy, uxy = f.reshape(5, n, c, h - win + 1, w - win + 1)
    vx = uxx - ux * ux
    vy = uyy - uy * uy
    vxy = uxy - ux * uy
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux ** 2 + uy ** 2 + c1) * (vx + vy + c2))  # [N, C, H', W']
    return s.mean(dim=(2, 3)).mean(dim=1)


# ----------------------------------------------------------------------------------------------------------------
# Metrics
# ----------------------------------------------------------------------------------------------------------------

def psnr(
    a: ImageSource, b: ImageSource, *, data_range: float = 255.0, channel: str = "rgb", quantize: bool = True,
    crop_border: int = 0, batch_size: int = 64, device: str = "cpu",
) -> dict[str, float]:
    """Mean PSNR (dB, higher is better) over image pairs ``(a[i], b[i])``; ``a`` is the reference (ground truth).

    Protocol: the module docstring (8-bit scale [0, 255] after 8-bit rounding, ``data_range=255``, RGB or BT.601
    Y, optional border crop, per-image PSNR averaged over images). Returns ``{"psnr": mean, "psnr_n_identical":
    number of identical pairs (PSNR inf; the mean is then inf), "n_images": N}``.
    """
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {CHANNELS}, got {channel!r}")
    vals = []
    for xa, xb in iter_paired_batches(a, b, batch_size, ("reference images", "test images")):
        vals.append(psnr_per_image(xa.to(device), xb.to(device), data_range=data_range, channel=channel,
                                   quantize=quantize, crop_border=crop_border).cpu())
    v = torch.cat(vals)
    n_inf = int(torch.isinf(v).sum())
    return {"psnr": float(v.mean()) if n_inf == 0 else math.inf, "psnr_n_identical": n_inf, "n_images": len(v)}


def ssim(
    a: ImageSource, b: ImageSource, *, data_range: float = 255.0, channel: str = "rgb", quantize: bool = True,
    crop_border: int = 0, batch_size: int = 16, device: str = "cpu",
) -> dict[str, float]:
    """Mean SSIM (higher is better, 1 for identical images) over image pairs ``(a[i], b[i])``.

    Protocol: the module docstring (Gaussian 11x11 window, sigma 1.5, K1 0.01, K2 0.03, population covariances,
    ``data_range=255`` on the 8-bit scale, RGB channel mean or BT.601 Y, valid region only, per-image SSIM averaged
    over images) = scikit-image's ``structural_similarity(..., gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=255, channel_axis=-1)``. Returns ``{"ssim": mean, "n_images": N}``.
    """
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {CHANNELS}, got {channel!r}")
    vals = []
    for xa, xb in iter_paired_batches(a, b, batch_size, ("reference images", "test images")):
        vals.append(ssim_per_image(xa.to(device), xb.to(device), data_range=data_range, channel=channel,
                                   quantize=quantize, crop_border=crop_border).cpu())
    v = torch.cat(vals)
    return {"ssim": float(v.mean()), "n_images": len(v)}
