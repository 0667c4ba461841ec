"""A known random degradation HR -> "real-looking" LR: the offline stand-in for SR-NAM's real LR faces.

SR-NAM trains its degradation GAN on 50,000 real 16 x 16 Widerface faces (REFERENCE_NOTES "SR-NAM"), which are not
downloadable here. The kit's default "real LR" set is therefore synthfaces HR images pushed through a *known*
random process, named ``synthlr-v1`` wherever it appears, with every image's parameters recorded. Because the truth
is known, the kit can also measure how close a trained degradation GAN comes to it (``lrkit.metrics`` distances
between GAN-degraded and truly degraded sets of the same HR images).

The process, per image, with parameters drawn independently per image from a generator seeded by
``(seed, index)`` (so any subset is reproducible and a set of N images is the first N of a larger one):

1. Gaussian blur at HR, sigma ``blur_sigma_hr`` px (a soft lens / motion);
2. area downscale ``hr_size -> lr_size`` (4 x for 64 -> 16);
3. colour cast: per-channel gain ``gain`` and offset ``offset`` (a camera's white balance), on [-1, 1] values;
4. additive Gaussian noise of ``noise_std`` grey levels (sensor noise);
5. JPEG at quality ``jpeg_quality`` (compression), decoded back to uint8.

Noise and JPEG come *after* the downscale so that they survive at 16 px: applied at 64 px, the 4 x 4 average would
divide the noise's std by 4 and wash out the 8 x 8 JPEG blocks. Images are float tensors [N, 3, H, W] in [-1, 1];
the LR output is quantised to uint8 (it went through a JPEG file) and returned in [-1, 1].
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict, dataclass

import numpy as np
import torch
from PIL import Image

from lrkit.data.degrade import gaussian_blur
from lrkit.data.ops import downscale

__all__ = ["SyntheticLRProcess", "SYNTHLR_V1", "sample_params", "apply_process", "degrade_images",
           "PARAM_NAMES"]

# Columns of the per-image parameter table (gain and offset are per channel: r, g, b).
PARAM_NAMES = ("blur_sigma_hr", "gain_r", "gain_g", "gain_b", "offset_r", "offset_g", "offset_b", "noise_std",
               "jpeg_quality")


@dataclass(frozen=True)
class SyntheticLRProcess:
    """The ranges every per-image parameter is drawn from (uniformly; JPEG quality as an integer)."""

    name: str = "synthlr-v1"  # the stand-in's name in every table, figure and fingerprint
    hr_size: int = 64  # SR-NAM's HR side
    lr_size: int = 16  # SR-NAM's (Widerface) LR side
    blur_sigma_hr: tuple[float, float] = (0.5, 2.0)  # HR px: from a sharp lens to a soft one, at 64 px
    gain: tuple[float, float] = (0.8, 1.2)  # per channel: a visible but plausible white-balance error
    offset: tuple[float, float] = (-0.1, 0.1)  # per channel, in [-1, 1] units (+-13 grey levels)
    noise_std: tuple[float, float] = (2.0, 12.0)  # grey levels at 16 px: from a good sensor to a poor one
    jpeg_quality: tuple[int, int] = (20, 80)  # PIL quality: strong to mild block artefacts at 16 px

    def __post_init__(self) -> None:
        if self.hr_size % self.lr_size or self.hr_size <= self.lr_size:
            raise ValueError(f"SyntheticLRProcess: hr_size {self.hr_size} must be a multiple of lr_size "
                             f"{self.lr_size} (an area downscale)")
        for field in ("blur_sigma_hr", "gain", "offset", "noise_std", "jpeg_quality"):
            lo, hi = getattr(self, field)
            if not lo <= hi:
                raise ValueError(f"SyntheticLRProcess.{field} must be a (low, high) range, got {(lo, hi)}")
        if self.blur_sigma_hr[0] < 0 or self.noise_std[0] < 0 or self.gain[0] <= 0:
            raise ValueError("SyntheticLRProcess: blur and noise must be >= 0 and gains > 0")
        if not 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 95:
            raise ValueError(f"SyntheticLRProcess.jpeg_quality must lie in [1, 95], got {self.jpeg_quality}")

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def fingerprint(self) -> str:
        """sha256 of the process's definition (its name and every range)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()


SYNTHLR_V1 = SyntheticLRProcess()


_PARAM_STREAM, _NOISE_STREAM = 0x5EED_1A, 0x5EED_1B  # distinct seed streams: parameters, noise fields


def _image_rng(seed: int, index: int, stream: int = _PARAM_STREAM) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, stream, int(index)]))


def sample_params(process: SyntheticLRProcess, indices, seed: int = 0) -> np.ndarray:
    """float64 [N, len(PARAM_NAMES)]: image ``indices[i]``'s parameters (a pure function of seed and index)."""
    rows = []
    for i in np.asarray(indices, np.int64).tolist():
        r = _image_rng(seed, i)
        rows.append([r.uniform(*process.blur_sigma_hr), *r.uniform(*process.gain, size=3),
                     *r.uniform(*process.offset, size=3), r.uniform(*process.noise_std),
                     float(r.integers(process.jpeg_quality[0], process.jpeg_quality[1] + 1))])
    return np.asarray(rows, np.float64).reshape(-1, len(PARAM_NAMES))


def _jpeg_roundtrip(img: np.ndarray, quality: int) -> np.ndarray:
    """uint8 [H, W, 3] -> the same image through an in-memory JPEG file of ``quality``."""
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


def apply_process(hr: torch.Tensor, params: np.ndarray, process: SyntheticLRProcess, noise_seeds) -> torch.Tensor:
    """HR [N, 3, H, W] in [-1, 1] (H = ``process.hr_size``) and per-image ``params`` [N, 9] -> LR [N, 3, l, l] in
    [-1, 1], quantised to uint8 levels. ``noise_seeds`` [N]: the seed of each image's noise field."""
    if hr.ndim != 4 or hr.shape[1] != 3 or hr.shape[-1] != process.hr_size or hr.shape[-2] != process.hr_size:
        raise ValueError(f"{process.name} degrades [N, 3, {process.hr_size}, {process.hr_size}] images, got "
                         f"{tuple(hr.shape)}")
    params = np.asarray(params, np.float64)
    if params.shape != (hr.shape[0], len(PARAM_NAMES)):
        raise ValueError(f"apply_process: params must be [{hr.shape[0]}, {len(PARAM_NAMES)}], got {params.shape}")
    out = []
    for x, p, s in zip(hr.float(), params, np.asarray(noise_seeds, np.int64).tolist()):
        y = gaussian_blur(x[None], float(p[0]))
        y = downscale(y, process.lr_size, mode="avgpool")[0]  # [3, l, l]
        y = y * torch.tensor(p[1:4], dtype=y.dtype)[:, None, None] + torch.tensor(p[4:7], dtype=y.dtype)[:, None,
                                                                                                           None]
        g = torch.Generator().manual_seed(int(s))
        y = y + torch.randn(y.shape, generator=g) * (float(p[7]) * 2.0 / 255.0)
        u8 = ((y.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
        u8 = _jpeg_roundtrip(u8, int(p[8]))
        out.append(torch.from_numpy(u8.copy()).permute(2, 0, 1).float() / 127.5 - 1.0)
    return torch.stack(out) if out else hr.new_zeros(0, 3, process.lr_size, process.lr_size)


def degrade_images(hr: torch.Tensor, indices, process: SyntheticLRProcess = SYNTHLR_V1,
                   seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """``(LR [N, 3, l, l], params [N, 9])`` for HR images whose dataset indices are ``indices`` (the parameters
    and the noise field are functions of ``(seed, index)`` only: the same image always degrades the same way)."""
    idx = np.asarray(indices, np.int64)
    if idx.shape != (hr.shape[0],):
        raise ValueError(f"degrade_images: {hr.shape[0]} images but {idx.size} indices")
    params = sample_params(process, idx, seed)
    noise_seeds = [int(_image_rng(seed, int(i), _NOISE_STREAM).integers(0, 2 ** 62)) for i in idx]
    return apply_process(hr, params, process, noise_seeds), params
