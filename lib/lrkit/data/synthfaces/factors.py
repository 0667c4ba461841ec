"""synthfaces: the kit's embedded, procedural stand-in for CelebA-HQ and AFHQ.

Every image is rendered with numpy from a small dictionary of *factors*, which are saved alongside it, so later
notebooks can measure exactly which properties of an image a model kept. Nothing is downloaded; the same
``(variant, split, index, seed)`` always gives the same factors and the same pixels.

Variants and domains
--------------------
* ``"faces"`` (stands in for CelebA-HQ, whose domains are female/male): domains ``longhair`` and ``shorthair``.
* ``"animals"`` (stands in for AFHQ): domains ``cat`` (pointed ears, small muzzle), ``dog`` (floppy ears, long
  light muzzle) and ``wild`` (round ears, broad muzzle, a mane around the head).

Factors (``FACTORS[variant]``)
------------------------------
Each factor is a ``FactorSpec`` with a *group*:

* ``"coarse"`` factors change the image at the scale of an 8x8 average-pooled copy: head pose (yaw moves the
  face and its features sideways, roll rotates the head), position, scale, skin/fur/hair/background colours,
  lighting, and the domain. An 8x8 LR image carries them, so a model conditioned on it can (and should) keep
  them. Moving one of them across its range changes the 8x8 image by ~9-75 levels on average (see the tests);
  ``face_width``, ``cloth_hue`` (faces) and ``marking`` (animals) are subtler coarse factors (~2-5 levels).
* ``"fine"`` factors are identity details that an 8x8 average pool cannot see: eye shape, iris colour, eyebrows,
  glasses, mouth, skin marks, earrings (faces); eye shape, iris colour, nose, whiskers, fur detail, ear tips
  (animals). They are categorical with a few equally likely classes, and span several pixels at 128 px. A model
  conditioned on the 8x8 image has to invent them; their agreement with the ground truth therefore measures what
  is copied rather than inferred.
* ``"nuisance"``: ``texture_seed``, the seed of the noise textures, freckle and mole positions and pattern phases.
  It is needed to re-render an image exactly but is not an identity property.

How the fine factors are kept out of the 8x8 image
--------------------------------------------------
An 8x8 average pool at 128 px averages 16x16 blocks, so a feature changes an LR pixel by (its area in that block)
x (its colour difference) / 256. The fine features are built so that swapping one class for another moves almost
no colour *mass* into or out of any block:

* classes of one factor have the same area and colour (eye openings, lips, brows, noses, whisker length, glasses
  frame length are normalised), so a swap only moves colour by a few pixels; eye shapes additionally get the
  colour sum of the reference shape restored in a thin band straddling the eye outline (``_matched``);
* features that add or remove colour are *balanced* (``_Painter.balance``): the colour a feature adds to its
  window is given back in a band right beside it -- on both sides of a glasses frame, in ~3 px flanks along each
  whisker, in a ring around an ear tip, tuft, mole or earring, over the freckled cheeks -- so its net mass over
  any region larger than ~2 px around it is zero. Balancing is clip-aware, and albedos keep headroom below white;
* iris colours differ only in hue, at equal luminance and modest chroma, over a small area;
* fur stripes/spots are zero-mean sums of waves with a ~4.4 px period that run diagonally to the pixel grid (a
  block average suppresses a diagonal wave in both directions), fade in over one period at the edges, and are
  added to the flat fur colour; no fine-grained texture is multiplied over the finished image (it would beat with
  the patterns into low frequencies).

``tests/test_synthfaces.py`` checks the result at 128 and 256 px: swapping any one fine factor to any other class
changes the 8x8 average pool of the uint8 image by at most 0.5 levels on average over its 8x8x3 values and at most
6 levels at any single value (measured worst cases over 48 images: <= 0.17 and ~5), while at 128 px it changes
>= 10 HR pixels by >= 12 levels. All geometry is defined in continuous coordinates with anti-aliased edges (signed
distance fields evaluated on the pixel grid), so the same factors at 128 and 256 px give the same picture (the
256 px image, 2x2-averaged, is within ~0.7 levels of the 128 px one on average).

Coordinates and units
---------------------
Image coordinates ``(X, Y)`` run over ``[-1, 1]`` (X to the right, Y down; pixel centres at ``(2 i + 1)/S - 1``).
A head is drawn in its own *local* frame ``(x, y)`` whose unit is the half-width of the face (about 0.5 image
units, i.e. 32 px at 128 px): ``(X, Y) = (cx', cy') + s * R(roll) (x, y)``. ``cx``/``cy`` factors are offsets in
fractions of the image side, ``yaw``/``roll``/``light_angle`` are in degrees, colours are in ``[0, 1]``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from lrkit.fsutil import atomic_open, cache_dir

__all__ = [
    "SYNTHFACES_VERSION",
    "VARIANTS",
    "SPLITS",
    "DOMAINS",
    "SIZES",
    "FactorSpec",
    "FACTORS",
    "factor_names",
    "sample_factors",
    "render",
    "generate",
    "SynthSet",
    "SynthFacesDataset",
    "export_folder",
    "read_factors_csv",
]

SYNTHFACES_VERSION = "1"
VARIANTS = ("faces", "animals")
SPLITS = ("train", "val")
DOMAINS: dict[str, tuple[str, ...]] = {"faces": ("longhair", "shorthair"), "animals": ("cat", "dog", "wild")}
SIZES = (32, 64, 128, 256)  # HR sizes render() accepts: powers of two in 32..256

_F32 = np.float32
_VARIANT_ID = {"faces": 1, "animals": 2}
_SPLIT_ID = {"train": 1, "val": 2}
_TEXTURE_SEED_HIGH = 2**31 - 1


# ----------------------------------------------------------------------------------------------------------------
# Factor specifications
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FactorSpec:
    """One factor of variation.

    ``group`` is ``"coarse"`` (visible in an 8x8 average-pooled image), ``"fine"`` (identity detail that is not) or
    ``"nuisance"`` (the texture seed). ``kind`` is ``"categorical"`` (values are ``int`` indices into ``classes``,
    sampled uniformly), ``"continuous"`` (``float`` sampled uniformly in ``[low, high]``, in ``unit``) or
    ``"seed"`` (``int`` in ``[low, high]``).
    """

    name: str
    group: str
    kind: str
    classes: tuple[str, ...] = ()
    low: float = 0.0
    high: float = 1.0
    unit: str = ""
    doc: str = ""

    @property
    def n_classes(self) -> int:
        return len(self.classes)


def _cat(name: str, group: str, classes: Sequence[str], doc: str) -> FactorSpec:
    return FactorSpec(name, group, "categorical", tuple(classes), 0.0, float(len(classes) - 1), "", doc)


def _cont(name: str, low: float, high: float, unit: str, doc: str) -> FactorSpec:
    return FactorSpec(name, "coarse", "continuous", (), float(low), float(high), unit, doc)


_POSE_FACTORS = (
    _cont("yaw", -30.0, 30.0, "deg", "head turn; positive moves eyes, nose and mouth to the image right"),
    _cont("roll", -15.0, 15.0, "deg", "in-plane head tilt; positive turns the head clockwise on screen"),
    _cont("cx", -0.07, 0.07, "frac", "head centre offset, fraction of the image width (positive = right)"),
    _cont("cy", -0.05, 0.05, "frac", "head centre offset, fraction of the image height (positive = down)"),
    _cont("scale", 0.88, 1.12, "", "head size relative to the default (face half-width ~1/4 of the image side)"),
)
_LIGHT_FACTORS = (
    _cont("light_angle", -180.0, 180.0, "deg", "direction the light comes from in the image plane (0 = from the "
          "right, -90 = from above)"),
    _cont("light_strength", 0.0, 0.8, "", "directional light share (0 = flat ambient light)"),
)
_BG_FACTORS = (
    _cont("bg_hue", 0.0, 1.0, "", "background hue (HSV hue, saturation fixed at 0.35)"),
    _cont("bg_value", 0.25, 0.85, "", "background brightness (HSV value)"),
)
_SEED_FACTOR = FactorSpec("texture_seed", "nuisance", "seed", (), 0.0, float(_TEXTURE_SEED_HIGH), "",
                          "seed of the noise texture, freckle/mole positions and stripe phases")

FACTORS: dict[str, tuple[FactorSpec, ...]] = {
    "faces": (
        _cat("domain", "coarse", DOMAINS["faces"], "hair length: long hair falls behind the shoulders"),
        *_POSE_FACTORS,
        _cont("face_width", 0.9, 1.08, "", "face width relative to the default"),
        _cont("skin_tone", 0.0, 1.0, "", "position on a light (0) to deep (1) skin colour ramp"),
        _cont("hair_color", 0.0, 1.0, "", "hair colour ramp: black, dark brown, auburn, blonde, platinum"),
        *_BG_FACTORS,
        _cont("cloth_hue", 0.0, 1.0, "", "hue of the clothing at the bottom of the image"),
        *_LIGHT_FACTORS,
        _cat("eye_shape", "fine", ("round", "almond", "narrow"), "eye opening shape (equal area)"),
        _cat("iris_color", "fine", ("brown", "blue", "green"), "iris colour (equal luminance)"),
        _cat("eyebrow", "fine", ("straight", "arched", "angled"), "eyebrow curve (equal length and thickness)"),
        _cat("glasses", "fine", ("none", "round", "square"), "thin frames, balanced by faint highlights beside them"),
        _cat("mouth", "fine", ("neutral", "smile", "pout"), "lip shape (equal area)"),
        _cat("skin_marks", "fine", ("clear", "freckles", "mole"), "freckles over nose and cheeks, or one mole"),
        _cat("earring", "fine", ("none", "stud", "hoop"), "earrings on both lobes"),
        _SEED_FACTOR,
    ),
    "animals": (
        _cat("domain", "coarse", DOMAINS["animals"], "ear family (pointed/floppy/round) and muzzle family"),
        *_POSE_FACTORS,
        _cont("fur_tone", 0.0, 1.0, "", "fur colour ramp: cream, ginger, tan, grey, brown, black"),
        _cont("marking", 0.0, 1.0, "", "how light the muzzle and chin are (0 = fur colour, 1 = near white)"),
        *_BG_FACTORS,
        *_LIGHT_FACTORS,
        _cat("eye_shape", "fine", ("round", "almond", "narrow"), "eye opening shape (equal area)"),
        _cat("iris_color", "fine", ("amber", "green", "blue"), "iris colour (equal luminance)"),
        _cat("nose_shape", "fine", ("triangle", "heart", "oval"), "nose leather shape (equal area)"),
        _cat("whiskers", "fine", ("sparse", "dense", "curled"), "3 long / 5 short / 3 curled whiskers per side "
             "(equal ink)"),
        _cat("fur_detail", "fine", ("plain", "stripes", "speckles"), "zero-mean fine fur pattern on the head"),
        _cat("ear_tip", "fine", ("plain", "dark", "tufted"), "ear tip detail"),
        _SEED_FACTOR,
    ),
}


def factor_names(variant: str, group: str | None = None) -> tuple[str, ...]:
    """Names of the factors of ``variant`` (optionally only those of ``group``), in ``FACTORS`` order."""
    _check_variant(variant)
    return tuple(f.name for f in FACTORS[variant] if group is None or f.group == group)


# ----------------------------------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------------------------------


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"unknown synthfaces variant {variant!r}; valid variants are {VARIANTS}")


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown synthfaces split {split!r}; valid splits are {SPLITS}")


def _check_size(size: int) -> None:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or int(size) not in SIZES:
        raise ValueError(f"synthfaces size must be a power of two in 32..256, one of {SIZES}; got {size!r}")


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_domains(variant: str, domains: Sequence[str] | None) -> tuple[str, ...]:
    if domains is None:
        return DOMAINS[variant]
    if isinstance(domains, str):
        domains = [domains]
    domains = tuple(domains)
    if not domains:
        raise ValueError(f"domains must not be empty; valid domains of {variant!r} are {DOMAINS[variant]}")
    for d in domains:
        if d not in DOMAINS[variant]:
            raise ValueError(f"unknown domain {d!r} for synthfaces variant {variant!r}; valid domains are "
                             f"{DOMAINS[variant]}")
    if len(set(domains)) != len(domains):
        raise ValueError(f"domains contains duplicates: {list(domains)}")
    return domains


# ----------------------------------------------------------------------------------------------------------------
# Sampling
# ----------------------------------------------------------------------------------------------------------------


def _domain_of(variant: str, seed: int, split: str, index: int) -> int:
    """Domains are assigned in blocks of ``n_domains`` consecutive indices, each block a random permutation.

    So every prefix whose length is a multiple of the number of domains is exactly balanced, and any prefix is
    balanced to within one image per domain, while the order stays unpredictable from the index alone.
    """
    k = len(DOMAINS[variant])
    block, pos = divmod(index, k)
    ss = np.random.SeedSequence([seed, _VARIANT_ID[variant], _SPLIT_ID[split], block, 0xD0D0])
    return int(np.random.default_rng(ss).permutation(k)[pos])


def sample_factors(variant: str, seed: int, split: str, index: int) -> dict[str, float | int]:
    """The factors of image ``index`` of ``(variant, split, seed)``: a dict in ``FACTORS[variant]`` order.

    Categorical factors are ``int`` class indices, continuous ones ``float`` in ``[low, high]``, ``texture_seed``
    an ``int``. Each index has its own random stream (``SeedSequence([seed, variant, split, index])``), so image
    ``i`` never depends on how many images are generated, and ``train``/``val`` streams never coincide.
    """
    _check_variant(variant)
    _check_split(split)
    _check_int("seed", seed, 0)
    _check_int("index", index, 0)
    seed, index = int(seed), int(index)
    rng = np.random.default_rng(np.random.SeedSequence([seed, _VARIANT_ID[variant], _SPLIT_ID[split], index]))
    out: dict[str, float | int] = {}
    for spec in FACTORS[variant]:
        # Draw from the stream for every factor (domain included) so that adding a factor at the end never
        # changes the values of the earlier ones.
        if spec.kind == "categorical":
            value: float | int = int(rng.integers(spec.n_classes))
        elif spec.kind == "continuous":
            value = float(rng.uniform(spec.low, spec.high))
        else:
            value = int(rng.integers(0, _TEXTURE_SEED_HIGH))
        out[spec.name] = value
    out["domain"] = _domain_of(variant, seed, split, index)
    return out


# ----------------------------------------------------------------------------------------------------------------
# Small geometry: signed distances in local units (negative inside). All accept numpy arrays or scalars.
# ----------------------------------------------------------------------------------------------------------------


def _sd_circle(x, y, r):
    return np.sqrt(x * x + y * y) - r


def _sd_ellipse(x, y, a, b):
    """First-order distance to an axis-aligned ellipse: (q - 1) / |grad q| with q the ellipse radius.

    Exact on the axes and within a few per cent elsewhere for aspect ratios below ~3, which is all the
    anti-aliasing needs (the edge ramp is one pixel wide).
    """
    qx, qy = x / a, y / b
    q = np.sqrt(qx * qx + qy * qy)
    g = np.sqrt((qx / a) ** 2 + (qy / b) ** 2)
    lo, hi = (a, b) if a < b else (b, a)
    return (q - 1.0) * np.clip(q / np.maximum(g, 1e-9), lo, hi)


def _sd_segment(x, y, ax, ay, bx, by, r):
    px, py, vx, vy = x - ax, y - ay, bx - ax, by - ay
    h = np.clip((px * vx + py * vy) / (vx * vx + vy * vy), 0.0, 1.0)
    dx, dy = px - vx * h, py - vy * h
    return np.sqrt(dx * dx + dy * dy) - r


def _sd_round_box(x, y, hx, hy, r):
    qx = np.abs(x) - (hx - r)
    qy = np.abs(y) - (hy - r)
    outside = np.sqrt(np.maximum(qx, 0.0) ** 2 + np.maximum(qy, 0.0) ** 2)
    return outside + np.minimum(np.maximum(qx, qy), 0.0) - r


def _rot(x, y, deg):
    """Coordinates of points (x, y) in a frame rotated by ``deg`` (clockwise on screen, y down)."""
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return c * x + s * y, -s * x + c * y


def _smin(a, b, k):
    """Smooth union of two distance fields (polynomial smooth minimum with blend width ``k``)."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)


def _sd_graph(x, y, x0, x1, f, half_thick):
    """Distance to a stroke following the graph ``y = f(x)`` for ``x`` in ``[x0, x1]``, with round caps.

    ``f`` is vectorised; ``half_thick`` is a number or a function of the clamped ``x`` (for tapered strokes).
    The perpendicular distance uses the local slope, so curved strokes keep their thickness.
    """
    xc = np.clip(x, x0, x1)
    yc = f(xc)
    eps = 1e-3
    slope = (f(xc + eps) - f(xc - eps)) / (2 * eps)
    dy = (y - yc) / np.sqrt(1.0 + slope * slope)
    dx = x - xc
    t = half_thick(xc) if callable(half_thick) else half_thick
    return np.sqrt(dx * dx + dy * dy) - t


def _sd_lens(x, y, a, top, bottom, p_top, p_bottom):
    """Region between an upper lid ``y = -top (1 - (x/a)^2)^p_top`` and a lower one ``y = bottom (...)^p_bottom``.

    Used for eye openings and lips. Returns a distance-like field (negative inside).
    """
    u = np.clip(1.0 - (x / a) ** 2, 0.0, None)
    yu = -top * u**p_top
    yl = bottom * u**p_bottom
    d = np.maximum(yu - y, y - yl)
    # Past the corners the band collapses to a point; the horizontal distance closes it there. Vertical distances
    # overestimate the true distance where the lids are steep, hence the 0.9 (keeps the edge ramp ~1 px wide).
    return np.maximum(d, np.abs(x) - a) * 0.9


def _lens_area(a, top, bottom, p_top, p_bottom):
    """Area of ``_sd_lens``: integral of (1 - t^2)^p over [-1, 1] is sqrt(pi) Gamma(p+1) / Gamma(p+1.5)."""

    def integral(p):
        return math.sqrt(math.pi) * math.gamma(p + 1.0) / math.gamma(p + 1.5)

    return a * (top * integral(p_top) + bottom * integral(p_bottom))


# ----------------------------------------------------------------------------------------------------------------
# Colour helpers
# ----------------------------------------------------------------------------------------------------------------


def _ramp(stops: Sequence[Sequence[float]], t: float) -> np.ndarray:
    """Piecewise-linear colour ramp through equally spaced ``stops`` at ``t`` in [0, 1] -> float32 [3]."""
    stops = np.asarray(stops, _F32)
    t = min(max(float(t), 0.0), 1.0) * (len(stops) - 1)
    i = min(int(t), len(stops) - 2)
    w = t - i
    return (stops[i] * (1 - w) + stops[i + 1] * w).astype(_F32)


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    h = (h % 1.0) * 6.0
    i = int(h) % 6
    f = h - int(h)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return np.asarray(rgb, _F32)


def _mix(a, b, t):
    return (np.asarray(a, _F32) * (1 - t) + np.asarray(b, _F32) * t).astype(_F32)


_SKIN_RAMP = ((0.92, 0.78, 0.68), (0.90, 0.70, 0.56), (0.76, 0.55, 0.40), (0.56, 0.38, 0.26), (0.38, 0.25, 0.17))
_HAIR_RAMP = ((0.07, 0.06, 0.06), (0.24, 0.15, 0.09), (0.50, 0.25, 0.12), (0.80, 0.64, 0.38), (0.90, 0.87, 0.78))
_FUR_RAMP = ((0.88, 0.81, 0.68), (0.86, 0.54, 0.24), (0.66, 0.50, 0.33), (0.55, 0.55, 0.56), (0.34, 0.23, 0.15),
             (0.13, 0.12, 0.12))
# Iris palettes: about equal luminance, different hue, modest chroma. A swap changes a channel by at most 0.22
# (faces) / 0.16 (animals) over a visible iris of ~15 / ~20 px at 128 px, i.e. under 5 levels of one LR pixel
# even when a whole iris sits in one 16x16 block.
_FACE_IRIS = ((0.44, 0.29, 0.20), (0.27, 0.35, 0.42), (0.28, 0.40, 0.20))
_ANIMAL_IRIS = ((0.67, 0.52, 0.30), (0.52, 0.62, 0.33), (0.51, 0.56, 0.46))


# ----------------------------------------------------------------------------------------------------------------
# Value-noise textures, defined in continuous image coordinates so every size shows the same texture.
# ----------------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _interp_taps(size: int, cells: int) -> tuple[np.ndarray, np.ndarray]:
    """Sparse weights that sample a (cells + 1)-point lattice over [-1, 1] at the ``size`` pixel footprints.

    Returns ``idx`` int64 [size, T] and ``w`` float32 [size, T] (T taps per pixel, zero-padded). Each pixel
    averages the linear interpolant over 4 sub-pixel positions, so a lattice finer than the pixel grid is
    box-filtered instead of aliased (the same texture then looks right at 32 px and at 256 px).
    """
    sub = (np.arange(size)[:, None] + (np.arange(4)[None, :] + 0.5) / 4.0) / size  # [size, 4] in (0, 1)
    t = sub * cells
    i0 = np.clip(np.floor(t).astype(np.int64), 0, cells - 1)
    frac = t - i0
    dense = np.zeros((size, cells + 1), np.float64)
    rows = np.repeat(np.arange(size), 4)
    np.add.at(dense, (rows, i0.ravel()), (1 - frac).ravel() / 4)
    np.add.at(dense, (rows, i0.ravel() + 1), frac.ravel() / 4)
    taps = int((dense > 0).sum(axis=1).max())
    idx = np.zeros((size, taps), np.int64)
    w = np.zeros((size, taps), _F32)
    for r in range(size):
        nz = np.flatnonzero(dense[r] > 0)
        idx[r, : nz.size] = nz
        w[r, : nz.size] = dense[r, nz]
    return idx, w


def _lattice_image(lattice: np.ndarray, size: int) -> np.ndarray:
    """Resample a square lattice [L, L] (spanning the image) to [size, size], separably, without BLAS.

    (Tiny matrix products would go through a multithreaded BLAS, whose thread start-up costs more than the
    arithmetic and which competes with data-loader workers.)
    """
    idx, w = _interp_taps(size, lattice.shape[0] - 1)
    cols = (lattice[:, idx] * w[None]).sum(axis=-1)  # [L, size]: interpolate along x
    return (cols[idx] * w[..., None]).sum(axis=1)  # [size, size]: then along y


def _noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth zero-mean unit-ish noise [size, size] from a random (cells+1)^2 lattice (bilinear, box-filtered)."""
    lattice = rng.standard_normal((cells + 1, cells + 1)).astype(_F32)
    return _lattice_image(lattice, size)


def _band_limit(period_px: float) -> float:
    """Amplitude factor for a periodic pattern of ``period_px`` pixels: fades it out below ~3 px per period."""
    return float(np.clip((period_px - 2.0) / 2.0, 0.0, 1.0))


# ----------------------------------------------------------------------------------------------------------------
# The painter: an image, its local head frame and compositing helpers
# ----------------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _pixel_centres(size: int) -> np.ndarray:
    return ((np.arange(size, dtype=np.float64) + 0.5) * (2.0 / size) - 1.0).astype(_F32)


class _Painter:
    """Float32 RGB canvas [S, S, 3] in [0, 1] plus the head's local coordinates.

    ``x``, ``y`` ([S, S]) are local head coordinates of every pixel centre; ``aa`` is one pixel in local units
    (the width of every anti-aliasing ramp). Small features are drawn in windows (pairs of slices) around them.
    """

    def __init__(self, size: int, cx: float, cy: float, s: float, roll: float):
        self.S = size
        self.px = 2.0 / size
        self.s, self.cx, self.cy = s, cx, cy
        self.cr, self.sr = math.cos(math.radians(roll)), math.sin(math.radians(roll))
        c = _pixel_centres(size)
        dx = c[None, :] - _F32(cx)  # [1, S]
        dy = c[:, None] - _F32(cy)  # [S, 1]
        self.x = ((self.cr * dx + self.sr * dy) / s).astype(_F32)  # [S, S]
        self.y = ((-self.sr * dx + self.cr * dy) / s).astype(_F32)
        self.aa = self.px / s
        self.img = np.zeros((size, size, 3), _F32)
        self.full = (slice(0, size), slice(0, size))

    def to_image(self, lx: float, ly: float) -> tuple[float, float]:
        return self.cx + self.s * (self.cr * lx - self.sr * ly), self.cy + self.s * (self.sr * lx + self.cr * ly)

    def window(self, lx: float, ly: float, r: float):
        """Slices of the pixels within local radius ``r`` of local point (lx, ly) (a square box), or None."""
        X, Y = self.to_image(lx, ly)
        R = self.s * r
        j0 = max(0, int(math.floor((X - R + 1.0) / self.px)))
        j1 = min(self.S, int(math.ceil((X + R + 1.0) / self.px)))
        i0 = max(0, int(math.floor((Y - R + 1.0) / self.px)))
        i1 = min(self.S, int(math.ceil((Y + R + 1.0) / self.px)))
        if j0 >= j1 or i0 >= i1:
            return None
        return (slice(i0, i1), slice(j0, j1))

    def xy(self, win):
        return self.x[win], self.y[win]

    def cov(self, d, soft: float = 1.0):
        """Anti-aliased coverage of the shape with signed distance ``d``: a linear ramp ``soft`` pixels wide."""
        return np.clip(0.5 - d / (self.aa * soft), 0.0, 1.0)

    def paint(self, win, alpha, color) -> None:
        """Composite ``color`` ([3]) over the window with coverage ``alpha`` [h, w]."""
        h, w = alpha.shape
        if h * w > 1024:
            # Large layers (hair, face, clothes) cover a fraction of the frame: blend only their bounding box.
            rows = np.flatnonzero(alpha.any(axis=1))
            if rows.size == 0:
                return
            cols = np.flatnonzero(alpha.any(axis=0))
            r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
            alpha = alpha[r0:r1, c0:c1]
            win = (slice(win[0].start + r0, win[0].start + r1), slice(win[1].start + c0, win[1].start + c1))
        tgt = self.img[win]
        tgt += alpha[..., None] * (np.asarray(color, _F32) - tgt)

    def balance(self, win, target_sum: np.ndarray, weight: np.ndarray, hi: float = 0.94) -> None:
        """Restore the window's per-channel colour sum to ``target_sum`` by adding a multiple of ``weight`` [h, w].

        With ``target_sum`` taken before a feature was drawn, this makes the feature mass-neutral: it no longer
        changes the average colour of any region that contains its window. Values are kept in ``[0, hi]`` (``hi``
        leaves headroom for the lighting and texture applied later); what clipping removes is handed on to the
        pixels of ``weight`` that are not saturated, for a few rounds.
        """
        tgt = self.img[win]  # [h, w, 3] view
        w3 = np.broadcast_to(weight[..., None], tgt.shape).astype(_F32)
        for _ in range(4):
            missing = target_sum - tgt.sum(axis=(0, 1))  # [3]
            if np.all(np.abs(missing) < 1e-3):
                break
            # Pixels that can still move in the needed direction, per channel.
            room = np.where(missing > 0, tgt < hi - 1e-4, tgt > 1e-4)
            w = w3 * room
            total = w.sum(axis=(0, 1))
            step = np.where(total > 1e-6, missing / np.maximum(total, 1e-6), 0.0).astype(_F32)
            upper = np.maximum(hi, tgt)  # never clip what was already brighter than ``hi``
            np.clip(tgt + w * step, 0.0, upper, out=tgt)

    def window_sum(self, win) -> np.ndarray:
        return self.img[win].sum(axis=(0, 1))


def _proj(x0: float, z0: float, yaw: float) -> tuple[float, float]:
    """Screen x of a head-surface point at (x0, depth z0) after turning the head by ``yaw`` degrees.

    Returns (x, foreshortening): the point's x after the turn and how much a small horizontal feature there is
    compressed (ratio of the surface's x-extent after/before the turn).
    """
    t = math.radians(yaw)
    x = x0 * math.cos(t) + z0 * math.sin(t)
    ang0 = math.atan2(x0, max(z0, 1e-3))
    fs = max(0.35, math.cos(ang0 + t)) / max(0.35, math.cos(ang0))
    return x, min(fs, 1.15)


def _lighting(p: _Painter, f: dict, head: np.ndarray, body: np.ndarray, head_a: float, head_b: float,
              head_y: float, body_ell: tuple[float, float, float]) -> np.ndarray:
    """Multiplicative shading [S, S]: wrap-around Lambert on the figure, a soft gradient on the background.

    Normals come from two ellipsoids: the head (half-axes ``head_a``, ``head_b``, centre y ``head_y``) where the
    head coverage ``head`` [S, S] is 1, the body (``body_ell`` = centre y, half-axes a, b) where only ``body`` is.
    """
    ang = math.radians(f["light_angle"])
    k = float(f["light_strength"])
    elev = math.radians(55.0)
    # Light direction in local coordinates (the light is fixed in the image, the head is rolled).
    lx_img, ly_img = math.cos(ang), math.sin(ang)
    lx = p.cr * lx_img + p.sr * ly_img
    ly = -p.sr * lx_img + p.cr * ly_img
    sx, sy, sz = math.cos(elev) * lx, math.cos(elev) * ly, math.sin(elev)

    def normals(qx, qy):
        r2 = qx * qx + qy * qy
        qz = np.sqrt(np.clip(1.0 - r2, 0.0, None))
        return qx, qy, qz

    hx, hy, hz = normals(p.x / head_a, (p.y - head_y) / head_b)
    # Turning the head (yaw) turns its surface normals about the vertical axis, so the shading moves with it.
    t = math.radians(f["yaw"])
    hx, hz = hx * math.cos(t) + hz * math.sin(t), -hx * math.sin(t) + hz * math.cos(t)
    bx, by, bz = normals(p.x / body_ell[1], (p.y - body_ell[0]) / body_ell[2])
    nx = head * hx + (1.0 - head) * bx
    ny = head * hy + (1.0 - head) * by
    nz = head * hz + (1.0 - head) * bz
    norm = np.sqrt(nx * nx + ny * ny + nz * nz) + 1e-6
    # Wrap-around ("half Lambert") diffuse term in [0, 1]: soft, never black on the side away from the light.
    wrap = 0.5 + 0.5 * (nx * sx + ny * sy + nz * sz) / norm
    # Lit side ~1.03, far side darker (down to 1 - 0.8 k): little headroom is needed above the albedo, so light
    # features are not clipped (clipping would break the colour balance of the fine features).
    fig_shade = 1.0 + k * (wrap - 0.95) * 0.85
    bg_shade = 1.0 + 0.25 * k * (p.x * lx + p.y * ly) / 2.5
    fig = np.maximum(head, body)
    return (fig * fig_shade + (1.0 - fig) * bg_shade).astype(_F32)


def _finish(p: _Painter, shade: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shade, add a mild low-frequency brightness variation and quantize to uint8 [S, S, 3].

    Only slow variation is multiplied in here: a fine-grained texture multiplied over the fine features would mix
    with their patterns into low-frequency colour (beats) that survives the LR average. Fine grain is part of the
    skin, hair and fur layers instead, underneath the fine features.
    """
    S = p.S
    tex = 0.03 * _noise(rng, S, 16)
    img = p.img * (shade * (1.0 + tex))[..., None]
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


def _background(p: _Painter, f: dict, rng: np.random.Generator) -> None:
    base = _hsv(f["bg_hue"], 0.35, f["bg_value"])
    c = _pixel_centres(p.S)
    # Vertical gradient plus a slow random blotch texture: a studio backdrop, not a flat fill.
    grad = (1.0 + 0.12 * c[:, None] * np.ones((1, p.S), _F32)) * (1.0 + 0.06 * _noise(rng, p.S, 4))
    p.img[:] = base[None, None, :] * grad[..., None]


# ----------------------------------------------------------------------------------------------------------------
# Faces
# ----------------------------------------------------------------------------------------------------------------

_FACE_S = 0.5  # face half-width in image units at scale 1 (32 px at 128 px)
_FACE_CY = 0.06  # the face centre sits slightly below the image centre, hair above it

# Eye openings per class (half-width a, upper height, lower height, upper/lower lid exponents; local units, see
# ``_sd_lens``); ``_eye_params`` rescales the heights so every class of a variant has the area of class 0.
_EYE_SHAPES = {
    "faces": {0: (0.165, 0.095, 0.085, 0.5, 0.5), 1: (0.2, 0.085, 0.05, 0.95, 1.0), 2: (0.205, 0.05, 0.05, 0.55, 0.75)},
    "animals": {0: (0.13, 0.11, 0.11, 0.5, 0.5), 1: (0.165, 0.09, 0.08, 0.85, 0.9), 2: (0.175, 0.07, 0.07, 0.6, 0.6)},
}


def _eye_params(variant: str, cls: int) -> tuple[float, float, float, float, float]:
    a, top, bottom, pt, pb = _EYE_SHAPES[variant][cls]
    k = _lens_area(*_EYE_SHAPES[variant][0]) / _lens_area(a, top, bottom, pt, pb)
    return a, top * k, bottom * k, pt, pb


def _face_sd(x, y, f: dict, shift: float):
    """Face outline: a cranium ellipse smoothly joined to a narrower jaw; both swing towards the turn (yaw)."""
    fw = f["face_width"]
    chin_shift = 0.45 * shift
    cran = _sd_ellipse(x - 0.1 * shift, y + 0.15, 1.0 * fw, 1.1)
    jaw = _sd_ellipse(x - chin_shift, y - 0.32, 0.80 * fw, 1.0)
    return _smin(cran, jaw, 0.25)


def _render_face(f: dict, size: int) -> np.ndarray:
    s = _FACE_S * f["scale"]
    p = _Painter(size, f["cx"] * 2.0, _FACE_CY + f["cy"] * 2.0, s, f["roll"])
    tseed = int(f["texture_seed"])
    rng_tex = np.random.default_rng([tseed, 1])
    rng_marks = np.random.default_rng([tseed, 2])
    yaw = f["yaw"]
    long_hair = int(f["domain"]) == 0
    skin = _ramp(_SKIN_RAMP, f["skin_tone"])
    hair = _ramp(_HAIR_RAMP, f["hair_color"])
    cloth = _hsv(f["cloth_hue"], 0.55, 0.55)
    fw = f["face_width"]
    t = math.radians(yaw)
    shift = math.sin(t)  # features on the front of the head move by ~z * sin(yaw)
    chin_shift = 0.45 * shift
    x, y = p.x, p.y
    S = p.S
    fg = np.zeros((S, S), _F32)  # coverage of head surfaces (face, ears, hair cap), for the lighting
    bd = np.zeros((S, S), _F32)  # coverage of body surfaces (neck, shoulders, long hair behind them)

    _background(p, f, rng_tex)

    # Hair strand texture: zero-mean vertical streaks (fine), band-limited so small sizes do not alias.
    strands = _noise(rng_tex, S, 48) * _band_limit(S / 48 * 2)

    # Long hair behind the head and shoulders: [S, S] distance fields in local units.
    back_x = -0.25 * shift
    if long_hair:
        top = _sd_ellipse(x - back_x, y + 0.15, 1.38 * fw, 1.5)
        wave = 0.06 * np.sin(x * 9.0 + 0.7 * (tseed % 7))
        fall = _sd_round_box(x - back_x, y - 1.1 - wave, 1.38 * fw, 1.3, 0.45)
        d_back = _smin(top, fall, 0.3)
        a = p.cov(d_back, 1.5)
        p.paint(p.full, a, hair * 0.8)
        p.img *= (1.0 + 0.10 * strands * a)[..., None]
        bd = np.maximum(bd, a)

    # Shoulders (clothing) and neck.
    d_sh = _sd_ellipse(x - 0.3 * chin_shift, y - 2.2, 2.4, 1.0)
    a = p.cov(d_sh, 1.5)
    p.paint(p.full, a, cloth)
    bd = np.maximum(bd, a)
    if long_hair:  # hair falls in front of the shoulders, on both sides of the neck
        for side in (-1, 1):
            lock = _sd_round_box(x - back_x - side * 1.05 * fw, y - 1.35 - 0.4 * wave, 0.33, 0.95, 0.28)
            a = p.cov(lock, 1.5)
            p.paint(p.full, a, hair * 0.85)
            p.img *= (1.0 + 0.10 * strands * a)[..., None]
    d_neck = _sd_round_box(x - 0.6 * chin_shift, y - 1.0, 0.44 * fw, 0.45, 0.15)
    a = p.cov(d_neck)
    p.paint(p.full, a, skin * 0.82)
    bd = np.maximum(bd, a)

    # Ears (behind the face outline; the far ear slides behind the head as it turns).
    ear_pts = []
    for side in (-1, 1):
        ex = side * 0.97 * fw * math.cos(t) - 0.3 * shift
        ey = 0.0
        win = p.window(ex, ey, 0.35)
        if win is None:
            ear_pts.append((ex, ey, 0.0))
            continue
        wx, wy = p.xy(win)
        d = _sd_ellipse(wx - ex, wy - ey, 0.15, 0.27)
        p.paint(win, p.cov(d), skin * 0.93)
        inner = _sd_ellipse(wx - ex - side * 0.02, wy - ey + 0.02, 0.07, 0.16)
        p.paint(win, p.cov(inner, 2.0) * 0.5, skin * 0.72)
        fg[win] = np.maximum(fg[win], p.cov(d))
        ear_pts.append((ex, ey, 1.0))

    # Face.
    d_face = _face_sd(x, y, f, shift)
    a_face = p.cov(d_face)
    p.paint(p.full, a_face, skin)
    fg = np.maximum(fg, a_face)
    # Skin micro-texture (fine, zero-mean), under the fine features.
    p.img *= (1.0 + 0.025 * _noise(rng_tex, S, 64) * _band_limit(S / 64 * 2) * a_face)[..., None]

    # Coarse facial structure shared by all fine classes: eye sockets, nose shadow, lips area, chin shadow.
    eyes = []
    for side in (-1, 1):
        ex, fs = _proj(side * 0.40, 0.86, yaw)
        eyes.append((side, ex, -0.08, fs))
    for side, ex, ey, fs in eyes:
        win = p.window(ex, ey, 0.45)
        if win is None:
            continue
        wx, wy = p.xy(win)
        sock = np.exp(-(((wx - ex) / (0.27 * fs)) ** 2 + ((wy - ey + 0.03) / 0.17) ** 2))
        p.img[win] *= (1.0 - 0.24 * sock * a_face[win])[..., None]
    nx, _ = _proj(0.0, 1.05, yaw)
    win = p.window(nx, 0.2, 0.4)
    if win is not None:
        wx, wy = p.xy(win)
        ridge = np.exp(-(((wx - nx - 0.07) / 0.06) ** 2) - ((wy - 0.12) / 0.22) ** 2)
        tipsh = np.exp(-(((wx - nx) / 0.16) ** 2) - ((wy - 0.36) / 0.06) ** 2)
        p.img[win] *= (1.0 - (0.10 * ridge + 0.16 * tipsh) * a_face[win])[..., None]
        for side in (-1, 1):
            d = _sd_ellipse(wx - nx - side * 0.075, wy - 0.33, 0.04, 0.025)
            p.paint(win, p.cov(d, 1.5) * 0.6, skin * 0.45)
    mx, mfs = _proj(0.0, 0.92, yaw)
    my = 0.62
    win = p.window(mx, my, 0.5)
    if win is not None:
        wx, wy = p.xy(win)
        lipzone = np.exp(-(((wx - mx) / (0.3 * mfs)) ** 2) - ((wy - my) / 0.12) ** 2)
        p.img[win] *= (1.0 - 0.06 * lipzone * a_face[win])[..., None]
    win = p.window(chin_shift, 1.25, 0.9)
    if win is not None:
        wx, wy = p.xy(win)
        under = np.clip((wy - 1.05) / 0.3, 0, 1) * np.exp(-(((wx - chin_shift) / 0.55) ** 2))
        p.img[win] *= (1.0 - 0.22 * under * (1.0 - a_face[win]) * (wy < 1.7))[..., None]

    # ---- fine identity features ----
    _face_marks(p, f, rng_marks, a_face, skin, shift)
    _face_eyes(p, f, eyes, skin)
    _face_brows(p, f, eyes, skin, hair)
    _face_mouth(p, f, mx, my, mfs, skin)
    _face_glasses(p, f, eyes, skin)

    # Front hair: a cap over the cranium with a hairline across the forehead (sideburns for short hair).
    cap = _sd_ellipse(x - back_x * 0.6, y + 0.22, 1.1 * fw, 1.18)
    hl_x = x - 0.9 * shift
    hairline = y - (-0.62 + 0.22 * (hl_x / fw) ** 2 + 0.05 * np.sin(hl_x * 5.0 + tseed % 5))
    # Hair covers the temples where |x| exceeds a boundary that moves outwards further down the face (a curtain
    # for long hair, short sideburns for short hair).
    yy = np.clip(y + 0.35, 0.0, None)
    x_side = 0.66 * fw + (1.0 if long_hair else 4.0) * yy * yy
    sides = x_side - np.abs(hl_x)
    d_hair = np.maximum(cap, np.minimum(hairline, sides))
    a = p.cov(d_hair, 1.3)
    p.paint(p.full, a, hair)
    p.img *= (1.0 + 0.12 * strands * a)[..., None]
    fg = np.maximum(fg, a)

    _face_earrings(p, f, ear_pts, shift)

    shade = _lighting(p, f, fg, bd, 1.25 * fw, 1.45, -0.1, (2.2, 2.6, 1.3))
    return _finish(p, shade, rng_tex)


def _matched(p: _Painter, win, draw: Callable[[int], np.ndarray], cls: int, ref: int) -> None:
    """Draw class ``cls`` of a feature so that its window holds the colour mass class ``ref`` would give.

    ``draw(c)`` paints class ``c`` into ``win`` and returns the correction weight [h, w] (a band straddling the
    feature's outline). Classes are designed to have nearly equal mass already; this removes the rest, in a band
    so narrow that the correction stays within ~2 px of where the classes differ.
    """
    if cls == ref:
        draw(cls)
        return
    snapshot = p.img[win].copy()
    draw(ref)
    ref_sum = p.window_sum(win)
    p.img[win] = snapshot
    weight = draw(cls)
    p.balance(win, ref_sum, weight)


def _face_eyes(p: _Painter, f: dict, eyes, skin) -> None:
    iris_c = np.asarray(_FACE_IRIS[int(f["iris_color"])], _F32)
    for side, ex, ey, fs in eyes:
        win = p.window(ex, ey, 0.3)
        if win is None:
            continue
        wx, wy = p.xy(win)

        def draw(cls: int, side=side, ex=ex, ey=ey, fs=fs, wx=wx, wy=wy) -> np.ndarray:
            a0, top, bottom, pt, pb = _eye_params("faces", cls)
            tilt = 0.035 if cls == 1 else 0.0  # almond eyes sweep up at the outer corner
            a = a0 * fs
            u = wx - ex
            v = wy - ey + tilt * side * u / a
            d_open = _sd_lens(u, v, a, top, bottom, pt, pb)
            a_open = p.cov(d_open)
            p.paint(win, a_open, _mix(skin, (0.95, 0.93, 0.9), 0.75))
            # Iris, pupil and a catchlight, clipped to the opening.
            ix = ex + 0.01 * side * fs
            d_iris = _sd_ellipse(wx - ix, wy - ey, 0.075 * fs, 0.075)
            p.paint(win, p.cov(d_iris) * a_open, iris_c)
            p.paint(win, p.cov(_sd_circle(wx - ix, wy - ey, 0.03)) * a_open, (0.05, 0.04, 0.04))
            p.paint(win, p.cov(_sd_circle(wx - ix - 0.025, wy - ey + 0.03, 0.013)) * a_open, (1.0, 1.0, 1.0))
            # Upper lid line (lashes).
            d_lid = _sd_graph(u, v, -a, a, lambda q: -top * np.clip(1 - (q / a) ** 2, 0, None) ** pt, 0.02)
            p.paint(win, p.cov(d_lid), skin * 0.3)
            return np.clip(1.0 - np.abs(d_open) / 0.05, 0.0, 1.0)

        _matched(p, win, draw, int(f["eye_shape"]), 0)


def _face_brows(p: _Painter, f: dict, eyes, skin, hair) -> None:
    cls = int(f["eyebrow"])
    # Brows are always clearly darker than the skin, even with platinum hair.
    color = np.minimum(_mix(skin, hair, 0.6), skin) * 0.6
    for side, ex, ey, fs in eyes:
        L = 0.22 * fs
        by = ey - 0.27
        win = p.window(ex, by, 0.35)
        if win is None:
            continue
        wx, wy = p.xy(win)
        # u runs from the inner end (-1) to the outer end (+1) of the brow.
        if cls == 0:
            def curve(q, L=L):
                return 0.025 * (q / L)
        elif cls == 1:
            def curve(q, L=L):
                return -0.065 * (1 - (q / L) ** 2) + 0.035
        else:
            def curve(q, L=L):
                u = q / L
                return -0.06 * (1 - np.sqrt((u - 0.35) ** 2 + 0.02) / 1.36) + 0.03

        def thick(q, L=L):
            return 0.032 - 0.012 * (q / L)

        u = (wx - ex) * side
        d = _sd_graph(u, wy - by, -L, L, curve, thick)
        p.paint(win, p.cov(d) * 0.9, color)


def _face_mouth(p: _Painter, f: dict, mx, my, mfs, skin) -> None:
    cls = int(f["mouth"])
    # (half-width, upper lip, lower lip, corner lift); lip heights are rescaled so every class has the same area.
    a, top, bottom, curve_k = {0: (0.27, 0.06, 0.08, 0.0), 1: (0.30, 0.05, 0.065, 0.1),
                               2: (0.19, 0.085, 0.11, -0.035)}[cls]
    k = _lens_area(0.27, 0.06, 0.08, 0.6, 0.6) / _lens_area(a, top, bottom, 0.6, 0.6)
    top, bottom = top * k, bottom * k
    a *= mfs
    lip = _mix(skin, (0.72, 0.26, 0.3), 0.55)
    win = p.window(mx, my, 0.45)
    if win is None:
        return
    wx, wy = p.xy(win)
    u = wx - mx
    # A smile lifts the corners: the whole lip shape follows y = -k (u/a)^2.
    v = wy - my + curve_k * (np.clip(u / a, -1, 1) ** 2)
    d = _sd_lens(u, v, a, top, bottom, 0.6, 0.6)
    p.paint(win, p.cov(d), lip)
    d_line = _sd_graph(u, v, -a * 0.95, a * 0.95, lambda q: 0.0 * q, 0.016)
    p.paint(win, p.cov(d_line), lip * 0.45)


def _face_marks(p: _Painter, f: dict, rng: np.random.Generator, a_face, skin, shift) -> None:
    """Freckles (balanced by a faint lightening of the freckled band) or one mole (balanced by a halo)."""
    cls = int(f["skin_marks"])
    # Draw the positions for every class from the same stream, so the texture seed alone fixes them.
    pts = rng.uniform(-1, 1, size=(40, 2))
    radii = rng.uniform(0.018, 0.032, size=40)
    mole_pos = [(-0.45, 0.35), (0.45, 0.35), (0.25, 0.5), (-0.2, 0.85)][int(rng.integers(4))]
    if cls == 0:
        return
    cxf = 0.95 * shift
    if cls == 1:
        win = p.window(cxf, 0.2, 0.8)
        if win is None:
            return
        wx, wy = p.xy(win)
        before = p.window_sum(win)
        keep = (pts[:, 0] ** 2 + (pts[:, 1] * 2.2) ** 2) < 1.0
        col = skin * np.asarray((0.62, 0.52, 0.48), _F32)
        acc = np.zeros(wx.shape, _F32)
        for (px_, py_), r in zip(pts[keep], radii[keep]):
            fx, fy = cxf + 0.62 * px_, 0.2 + 0.28 * py_
            acc = np.maximum(acc, p.cov(_sd_circle(wx - fx, wy - fy, r)))
        acc *= a_face[win]
        p.paint(win, acc * 0.8, col)
        # Balance: lighten the freckled band by exactly the colour the freckles removed.
        band = np.exp(-(((wx - cxf) / 0.55) ** 2) - ((wy - 0.2) / 0.25) ** 2) * a_face[win]
        p.balance(win, before, band)
    else:
        mx_, my_ = cxf * (1.0 + 0.1 * mole_pos[0]) + mole_pos[0], mole_pos[1]
        win = p.window(mx_, my_, 0.15)
        if win is None:
            return
        wx, wy = p.xy(win)
        before = p.window_sum(win)
        d = _sd_circle(wx - mx_, wy - my_, 0.05)
        p.paint(win, p.cov(d) * a_face[win], skin * np.asarray((0.32, 0.24, 0.22), _F32))
        halo = np.exp(-np.clip(d, 0, None) ** 2 / 0.004) * (d > 0) * a_face[win]
        p.balance(win, before, halo)


def _face_glasses(p: _Painter, f: dict, eyes, skin) -> None:
    """Thin dark frames (round or square, equal frame length). Each rim is balanced by faint highlights right
    beside it, the bridge by a small highlight on the nose ridge under it, so the glasses add ~no colour to any
    region larger than a few pixels around the frame."""
    cls = int(f["glasses"])
    if cls == 0:
        return
    half_w = 0.012  # frame half-thickness in local units: the frame is ~0.8 px wide at 128 px
    hx, hy, rr = 0.25, 0.19, 0.07
    perim_sq = 4 * (hx + hy) - (8 - 2 * math.pi) * rr
    # Round lenses are ellipses (R, 0.8 R) whose perimeter (Ramanujan) matches the square frame's: equal ink.
    R = perim_sq / (math.pi * (3 * 1.8 - math.sqrt((3 + 0.8) * (1 + 3 * 0.8))))
    half_x = R if cls == 1 else hx
    ly_off = 0.01
    inner = []
    for side, ex, ey, fs in eyes:
        lx, ly = ex, ey + ly_off
        win = p.window(lx + side * 0.04, ly, half_x * fs + 0.12)
        if win is None:
            continue
        wx, wy = p.xy(win)
        u = (wx - lx) / fs
        v = wy - ly
        d_lens = _sd_ellipse(u, v, R, R * 0.8) if cls == 1 else _sd_round_box(u, v, hx, hy, rr)
        before = p.window_sum(win)
        d_rim = np.abs(d_lens) - half_w
        outer_x = lx + side * half_x * fs
        d_temple = _sd_segment(wx, wy, outer_x, ly - 0.04, outer_x + side * 0.09, ly - 0.05, half_w)
        a_frame = p.cov(np.minimum(d_rim, d_temple))
        p.img[win] *= (1.0 - 0.5 * a_frame)[..., None]  # the frame halves the brightness of what is under it
        # Balance with faint highlights in ~1.5 px bands on both sides of the rim (glass edge inside, skin sheen
        # outside): the dark ink is sandwiched between its compensation, so an LR block boundary running along
        # an edge splits off at most half of that edge's ink.
        band = np.clip(1.0 - (np.abs(d_lens) - half_w) / 0.05, 0.0, 1.0) * (1.0 - a_frame)
        p.balance(win, before, band)
        inner.append((lx - side * half_x * fs, ly - 0.05))
    if len(inner) == 2:
        (x0, y0), (x1, y1) = inner
        mid_x, mid_y = 0.5 * (x0 + x1), 0.5 * (y0 + y1)
        win = p.window(mid_x, mid_y, 0.5 * abs(x1 - x0) + 0.1)
        if win is not None:
            wx, wy = p.xy(win)
            before = p.window_sum(win)
            d = np.minimum(_sd_segment(wx, wy, x0, y0, mid_x, mid_y - 0.025, half_w),
                           _sd_segment(wx, wy, mid_x, mid_y - 0.025, x1, y1, half_w))
            a = p.cov(d)
            p.img[win] *= (1.0 - 0.5 * a)[..., None]
            glint = np.exp(-(((wx - mid_x) / 0.07) ** 2) - ((wy - mid_y - 0.06) / 0.06) ** 2) * (1.0 - a)
            p.balance(win, before, glint)


def _face_earrings(p: _Painter, f: dict, ear_pts, shift) -> None:
    cls = int(f["earring"])
    if cls == 0:
        return
    gold = np.asarray((0.93, 0.78, 0.35), _F32)
    for ex, ey, vis in ear_pts:
        if vis <= 0:
            continue
        lx, ly = ex, ey + 0.25
        # A lobe that has turned behind the face shows no earring.
        vis = float(np.clip(_face_sd(lx, ly, f, shift) / 0.06, 0.0, 1.0))
        if vis <= 0:
            continue
        win = p.window(lx, ly + 0.08, 0.2)
        if win is None:
            continue
        wx, wy = p.xy(win)
        before = p.window_sum(win)
        if cls == 1:
            d = _sd_circle(wx - lx, wy - ly, 0.042)
        else:
            d = np.abs(_sd_circle(wx - lx, wy - ly - 0.085, 0.075)) - 0.014
        # Gold with a thin dark outline: it stands out on light skin (outline) and on deep skin (gold).
        outline = 0.014
        p.img[win] *= (1.0 - 0.65 * p.cov(d - outline) * vis)[..., None]
        p.paint(win, p.cov(d) * vis, gold)
        p.paint(win, p.cov(_sd_circle(wx - lx + 0.012, wy - ly + 0.012, 0.012)) * (vis * (cls == 1)), (1, 1, 0.95))
        beyond = np.clip(d - outline, 0.0, None)
        halo = np.exp(-beyond**2 / 0.003) * (d > outline)
        p.balance(win, before, halo)


# ----------------------------------------------------------------------------------------------------------------
# Animals
# ----------------------------------------------------------------------------------------------------------------

_ANIMAL_S = 0.46  # head radius in image units at scale 1
_ANIMAL_CY = 0.1


class _Ear(NamedTuple):
    side: int  # -1 = image left, +1 = image right
    tip_x: float  # tip position, local units
    tip_y: float
    direction: float  # -1: the tip points up (pointed, round ears), +1: down (floppy ears)
    win: tuple  # window the ear's distance field was computed on
    sd: np.ndarray  # the ear's signed distance [h, w] on ``win``


def _head_sd(x, y, dom: int, shift: float):
    """Animal head: a round cranium joined to wide cheeks; the cheeks swing towards the turn (yaw)."""
    cran = _sd_circle(x + 0.05 * shift, y + 0.1, 1.0)
    cheeks = _sd_ellipse(x - 0.3 * shift, y - 0.3, 1.12 if dom != 1 else 1.0, 0.78)
    return _smin(cran, cheeks, 0.3)


def _render_animal(f: dict, size: int) -> np.ndarray:
    s = _ANIMAL_S * f["scale"]
    p = _Painter(size, f["cx"] * 2.0, _ANIMAL_CY + f["cy"] * 2.0, s, f["roll"])
    tseed = int(f["texture_seed"])
    rng_tex = np.random.default_rng([tseed, 1])
    rng_fur = np.random.default_rng([tseed, 3])
    yaw = f["yaw"]
    dom = int(f["domain"])
    fur = _ramp(_FUR_RAMP, f["fur_tone"])
    light = _mix(fur, (0.9, 0.88, 0.84), 0.25 + 0.7 * f["marking"])
    t = math.radians(yaw)
    shift = math.sin(t)
    es = (1.2, 1.25, 1.05)[dom]  # ear size per domain (ear family)
    x, y = p.x, p.y
    S = p.S
    fg = np.zeros((S, S), _F32)  # head surfaces (lighting)
    bd = np.zeros((S, S), _F32)  # body surfaces (lighting)
    _background(p, f, rng_tex)
    fur_tex = _noise(rng_tex, S, 48) * _band_limit(S / 48 * 2)

    # Body / chest below the head.
    d_body = _sd_ellipse(x - 0.2 * shift, y - 2.1, 1.35, 1.25)
    a = p.cov(d_body, 1.5)
    p.paint(p.full, a, fur * 0.9)
    p.paint(p.full, 0.6 * a * np.exp(-((x - 0.3 * shift) / 0.45) ** 2 - ((y - 1.2) / 0.7) ** 2), light * 0.95)
    bd = np.maximum(bd, a)

    if dom == 2:  # wild: a shaggy mane around the head
        ang = np.arctan2(y, x)
        jag = 0.07 * np.sin(ang * 15.0 + tseed % 11) + 0.05 * np.sin(ang * 7.0 + tseed % 13)
        d_mane = _sd_circle(x + 0.15 * shift, y - 0.05, 1.5 + jag)
        a = p.cov(d_mane, 1.5)
        p.paint(p.full, a, _mix(fur, (0.3, 0.2, 0.12), 0.35))
        p.img *= (1.0 + 0.15 * fur_tex * a)[..., None]
        fg = np.maximum(fg, a)

    # Ears (their tips carry the fine ear-tip detail).
    ears: list[_Ear] = []
    ear_col = fur * (0.6 if dom == 1 else 0.95)
    inner_col = _mix(fur, (0.85, 0.55, 0.55), 0.55)
    for side in (-1, 1):
        ox = side * 0.62 * math.cos(t) - 0.3 * shift
        if dom == 0:  # pointed
            tip = (ox + side * 0.18 * es, -1.5 * es + 0.02)
            win = p.window(ox, -0.95, 0.75 * es)
            if win is None:
                continue
            wx, wy = p.xy(win)
            d = _sd_tri(wx, wy, (ox - 0.38 * es, -0.55), (ox + 0.38 * es, -0.55), tip, 0.05)
            p.paint(win, p.cov(d), ear_col)
            di = _sd_tri(wx, wy, (ox - 0.22 * es, -0.62), (ox + 0.22 * es, -0.62),
                         (tip[0] - side * 0.03, tip[1] + 0.2 * es), 0.04)
            p.paint(win, p.cov(di, 2.0), inner_col)
            ears.append(_Ear(side, tip[0], tip[1], -1.0, win, d))
        elif dom == 1:  # floppy
            cx_, cy_ = side * 0.98 * math.cos(t) - 0.3 * shift, 0.05
            win = p.window(cx_, cy_, 0.8 * es + 0.2)
            if win is None:
                continue
            wx, wy = p.xy(win)
            ru, rv = _rot(wx - cx_, wy - cy_, -side * 12.0)
            d = _sd_ellipse(ru, rv, 0.32 * es, 0.68 * es)
            # Floppy ears hang over the sides of the head, so they are painted after it (below).
            ears.append(_Ear(side, cx_ + side * 0.68 * es * math.sin(math.radians(12)),
                             cy_ + 0.68 * es * math.cos(math.radians(12)), 1.0, win, d))
            continue
        else:  # round
            c = (ox + side * 0.1, -0.86)
            win = p.window(c[0], c[1], 0.4 * es)
            if win is None:
                continue
            wx, wy = p.xy(win)
            d = _sd_circle(wx - c[0], wy - c[1], 0.3 * es)
            p.paint(win, p.cov(d), ear_col)
            p.paint(win, p.cov(_sd_circle(wx - c[0], wy - c[1] + 0.02, 0.17 * es), 2.0), fur * 0.45)
            ears.append(_Ear(side, c[0] + side * 0.05, c[1] - 0.3 * es, -1.0, win, d))
        fg[win] = np.maximum(fg[win], p.cov(d))

    if dom == 1:  # a floppy ear on the far side of a turned head hangs behind it
        for ear in ears:
            if ear.side * shift > 0.2:
                a = p.cov(ear.sd)
                p.paint(ear.win, a, ear_col)
                fg[ear.win] = np.maximum(fg[ear.win], a)
    d_head = _head_sd(x, y, dom, shift)
    a_head = p.cov(d_head)
    p.paint(p.full, a_head, fur)
    fg = np.maximum(fg, a_head)
    p.img *= (1.0 + 0.09 * fur_tex * a_head)[..., None]

    # Muzzle (domain family) and lighter chin.
    mx, mfs = _proj(0.0, 1.15, yaw)
    soft_muzzle = np.zeros((S, S), _F32)  # where the muzzle hides the fur pattern (soft, for the fine detail)
    muzzle = {0: (0.42, 0.36, 0.28), 1: (0.52, 0.58, 0.5), 2: (0.5, 0.62, 0.42)}[dom]
    my = muzzle[0]
    win = p.window(mx, my, 0.8)
    if win is not None:
        wx, wy = p.xy(win)
        if dom == 0:
            d = np.minimum(_sd_ellipse(wx - mx - 0.15, wy - my, 0.2, 0.17), _sd_ellipse(wx - mx + 0.15, wy - my, 0.2,
                                                                                          0.17))
            d = np.minimum(d, _sd_ellipse(wx - mx, wy - my - 0.17, 0.15, 0.12))
        else:
            d = _sd_ellipse(wx - mx, wy - my, muzzle[1], muzzle[2])
        p.paint(win, p.cov(d, 2.0), light)
        soft_muzzle[win] = np.clip(1.0 - d / 0.12, 0.0, 1.0)
        # Mouth line under the nose (coarse, the same for every fine class).
        d_m = _sd_graph(wx - mx, wy - my - 0.07, -0.15, 0.15, lambda q: 0.25 * q * q, 0.014)
        p.paint(win, p.cov(d_m), fur * 0.35)
    # Fine fur detail: a zero-mean periodic pattern that fades in over ~1 period inside the head outline and
    # fades out towards the muzzle, so no edge cuts a stripe off sharply (a cut leaves a partial period, whose
    # mean does not vanish).
    fade = np.clip(-d_head / 0.12, 0.0, 1.0) * (1.0 - soft_muzzle)
    _animal_fur_detail(p, f, rng_fur, fade, shift, fur)
    # Eye patches (coarse darker area around the eyes).
    eyes = []
    for side in (-1, 1):
        ex, fs = _proj(side * 0.42, 0.85, yaw)
        eyes.append((side, ex, -0.12, fs))
        win = p.window(ex, -0.12, 0.4)
        if win is not None:
            wx, wy = p.xy(win)
            g = np.exp(-(((wx - ex) / (0.24 * fs)) ** 2) - ((wy + 0.12) / 0.18) ** 2)
            p.img[win] *= (1.0 - 0.15 * g * a_head[win])[..., None]

    if dom == 1:  # floppy ears hang over the sides of the head
        for ear in ears:
            if ear.side * shift > 0.2:
                continue  # drawn behind the head above
            win, a = ear.win, p.cov(ear.sd)
            p.paint(win, a, ear_col)
            fg[win] = np.maximum(fg[win], a)

    _animal_eyes(p, f, eyes, fur)
    _animal_nose(p, f, mx, my, mfs, dom)
    _animal_whiskers(p, f, mx, my, mfs, light)
    _animal_ear_tips(p, f, ears)

    shade = _lighting(p, f, fg, bd, 1.2, 1.2, 0.0, (2.1, 1.6, 1.5))
    return _finish(p, shade, rng_tex)


def _sd_tri(x, y, a, b, c, r):
    """Rounded triangle (vertices a, b, c, any orientation): max of the edge half-plane distances, minus ``r``."""
    pts = (a, b, c)
    # Orientation sign so that inside is negative for either winding.
    cross = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
    sgn = 1.0 if cross > 0 else -1.0
    d = None
    for i in range(3):
        (x0, y0), (x1, y1) = pts[i], pts[(i + 1) % 3]
        ex, ey = x1 - x0, y1 - y0
        n = math.hypot(ex, ey)
        # Signed distance to the edge's line, positive on the outer side.
        di = sgn * ((x - x0) * ey - (y - y0) * ex) / n
        d = di if d is None else np.maximum(d, di)
    return d - r


def _animal_fur_detail(p: _Painter, f: dict, rng: np.random.Generator, mask, shift, fur) -> None:
    """Stripes or spots as a zero-mean modulation of the head's fur (period ~4.4 px at 128 px).

    Every wave runs diagonally (30-60 degrees from the image axes, whatever the roll): the average of a diagonal
    wave over a square LR block is attenuated in both directions (a product of two small sinc factors), whereas
    an axis-aligned wave would only be attenuated once, by ~period / (pi * block). A slow random warp keeps the
    pattern from looking machine-made without moving its energy to low frequencies.
    """
    cls = int(f["fur_detail"])
    phase = rng.uniform(0, 2 * math.pi, size=6)
    warp_lattice = rng.standard_normal((2, 7, 7)).astype(_F32)
    if cls == 0:
        return
    period = 0.15  # local units
    amp = 0.16 * _band_limit(period * p.s / p.px)
    warp_u = 0.04 * _lattice_image(warp_lattice[0], p.S)
    warp_v = 0.04 * _lattice_image(warp_lattice[1], p.S)
    # Diagonal coordinates in the *image* frame (so head roll cannot align the waves with the LR grid).
    c = _pixel_centres(p.S)
    X, Y = c[None, :] - _F32(p.cx), c[:, None] - _F32(p.cy)
    u = (X + Y) * (0.7071 / p.s) + warp_u
    v = (X - Y) * (0.7071 / p.s) + warp_v
    k = 2 * math.pi / period
    if cls == 1:
        # Chevron stripes (tabby-like V marks): a diagonal wave in u on one side of the face, in v on the other.
        side = np.clip((p.x - 0.9 * shift) / 0.05, -1.0, 1.0)
        wave = 0.5 * (1 + side) * np.sin(k * u + phase[0]) + 0.5 * (1 - side) * np.sin(k * v + phase[1])
        pat = np.tanh(1.5 * wave) / math.tanh(1.5)  # odd in the wave: stays zero-mean, stripes get crisper
    else:
        # Irregular spots: four waves at 33, 57, 123 and 147 degrees, summed. No nonlinearity: products of waves
        # would contain difference frequencies, i.e. slow variation that survives the LR average.
        X, Y = (u + v) * 0.7071, (u - v) * 0.7071  # back to image-aligned axes (still scaled by 1/s)
        pat = 0.0
        for j, deg in enumerate((33.0, 57.0, 123.0, 147.0)):
            c_, s_ = math.cos(math.radians(deg)), math.sin(math.radians(deg))
            pat = pat + np.cos(k * (X * c_ + Y * s_) + phase[2 + j])
        pat = 0.45 * pat
    # Added relative to the flat fur colour, not multiplied into the textured image: a product with the fur noise
    # would create beat frequencies near zero, i.e. colour that survives the LR average.
    # On very dark fur the pattern is scaled as if the fur were a dark grey, so it stays visible.
    p.img -= (amp * pat * mask)[..., None] * np.maximum(fur, 0.3)


def _animal_eyes(p: _Painter, f: dict, eyes, fur) -> None:
    iris_c = np.asarray(_ANIMAL_IRIS[int(f["iris_color"])], _F32)
    for side, ex, ey, fs in eyes:
        win = p.window(ex, ey, 0.3)
        if win is None:
            continue
        wx, wy = p.xy(win)

        def draw(cls: int, side=side, ex=ex, ey=ey, fs=fs, wx=wx, wy=wy) -> np.ndarray:
            a0, top, bottom, pt, pb = _eye_params("animals", cls)
            tilt = 0.05 if cls == 1 else 0.0
            a = a0 * fs
            u = wx - ex
            v = wy - ey + tilt * side * u / a
            d_open = _sd_lens(u, v, a, top, bottom, pt, pb)
            # Dark rim around the eye, then the iris fills the opening.
            p.paint(win, p.cov(d_open - 0.025), fur * 0.25)
            a_open = p.cov(d_open)
            p.paint(win, a_open, iris_c)
            # A wide pupil leaves a ring of iris (~20 px at 128 px): the colour reads clearly, its mass is small.
            d_pupil = _sd_ellipse(wx - ex, wy - ey, 0.065 * fs, 0.088)
            p.paint(win, p.cov(d_pupil) * a_open, (0.04, 0.03, 0.03))
            p.paint(win, p.cov(_sd_circle(wx - ex - 0.03, wy - ey + 0.035, 0.014)) * a_open, (1.0, 1.0, 1.0))
            return np.clip(1.0 - np.abs(d_open - 0.0125) / 0.05, 0.0, 1.0)

        _matched(p, win, draw, int(f["eye_shape"]), 0)


def _nose_sd(u, v, cls: int):
    if cls == 0:
        return _sd_tri(u, v, (-0.12, -0.05), (0.12, -0.05), (0.0, 0.09), 0.025)
    if cls == 1:
        d = np.minimum(_sd_circle(u + 0.055, v + 0.005, 0.065), _sd_circle(u - 0.055, v + 0.005, 0.065))
        return np.minimum(d, _sd_tri(u, v, (-0.1, 0.02), (0.1, 0.02), (0.0, 0.1), 0.0))
    return _sd_ellipse(u, v - 0.01, 0.125, 0.07)


@lru_cache(maxsize=None)
def _nose_scale(cls: int) -> float:
    """Linear scale that gives nose class ``cls`` the area of class 0 (areas measured on a fine grid)."""
    g = np.linspace(-0.25, 0.25, 501)
    u, v = np.meshgrid(g, g)
    area = [float((_nose_sd(u, v, c) < 0).mean()) for c in (0, cls)]
    return math.sqrt(area[0] / area[1])


def _animal_nose(p: _Painter, f: dict, mx, my, mfs, dom) -> None:
    cls = int(f["nose_shape"])
    k = (1.25 if dom == 1 else 1.0) * _nose_scale(cls)
    ny = my - 0.1
    win = p.window(mx, ny, 0.3 * k)
    if win is None:
        return
    wx, wy = p.xy(win)
    u, v = (wx - mx) / (k * mfs), (wy - ny) / k
    d = _nose_sd(u, v, cls) * k
    a = p.cov(d)
    p.paint(win, a, (0.3, 0.2, 0.2))
    p.paint(win, p.cov(_sd_ellipse(u + 0.03, v + 0.02, 0.03, 0.015) * k) * a, (0.62, 0.5, 0.5))


def _animal_whiskers(p: _Painter, f: dict, mx, my, mfs, light) -> None:
    """Whiskers that contrast with the fur under them, balanced by wide faint flanks of the opposite sign.

    On a light muzzle they are darker lines (multiplicative, so they never clip), on a dark one lighter lines
    (lifted by at most 1.2x the local brightness); the choice depends only on the (coarse) muzzle colour, never
    on the whisker class. Either way the flanks, ~3 px on each side, give back exactly the colour
    the lines took or added (``balance``), at an amplitude ~10x smaller than the lines'.
    """
    cls = int(f["whiskers"])
    n, length, bend = {0: (3, 0.75, 0.0), 1: (5, 0.45, 0.0), 2: (3, 0.75, 0.5)}[cls]
    length *= mfs ** 0.5
    half = 0.01
    for side in (-1, 1):
        rx, ry = mx + side * 0.2 * mfs, my + 0.03
        win = p.window(rx + side * 0.4, ry, 0.6)
        if win is None:
            continue
        wx, wy = p.xy(win)
        u = (wx - rx) * side
        before = p.window_sum(win)
        dmin = np.full(wx.shape, 10.0, _F32)
        # Roots ~1 px apart so the whiskers do not merge into a blob where they start.
        for slope, off in zip(np.linspace(-0.22, 0.18, n), np.linspace(-0.015 * (n - 1), 0.015 * (n - 1), n)):
            def curve(q, slope=slope, off=off):
                return off + slope * q - bend * q * q
            dmin = np.minimum(dmin, _sd_graph(u, wy - ry, 0.0, length, curve, 0.0))
        core = p.cov(dmin - half)
        under = p.img[win]
        if float(np.mean(light)) > 0.42:
            under *= (1.0 - 0.5 * core)[..., None]
        else:
            lift = np.minimum(np.asarray((0.9, 0.89, 0.85), _F32) - under, 1.2 * under)
            under += (core * 0.9)[..., None] * np.maximum(lift, 0.0)
        flank = np.clip(1.0 - (dmin - half) / 0.1, 0.0, 1.0) * (1.0 - core)
        p.balance(win, before, flank)


def _animal_ear_tips(p: _Painter, f: dict, ears: list[_Ear]) -> None:
    """Dark ear tips or dark tufts, each balanced by a paler band around it (a sandwich, ~2 px wide)."""
    cls = int(f["ear_tip"])
    if cls == 0:
        return
    for ear in ears:
        tx, ty, diry, win, d_ear = ear.tip_x, ear.tip_y, ear.direction, ear.win, ear.sd
        w2 = p.window(tx, ty + 0.05 * diry, 0.35)
        if w2 is None:
            continue
        wx, wy = p.xy(w2)
        ear_a = p.cov(_recompute_ear(w2, win, d_ear))
        before = p.window_sum(w2)
        if cls == 1:
            dist = np.sqrt((wx - tx) ** 2 + (wy - ty) ** 2)
            d = dist - 0.12
            a = ear_a * p.cov(d)
            p.img[w2] *= (1.0 - 0.55 * a)[..., None]
            weight = np.clip(1.0 - np.abs(d - 0.04) / 0.04, 0.0, 1.0) * (1.0 - a) * (0.1 + 0.9 * ear_a)
        else:
            d = np.full(wx.shape, 10.0, _F32)
            for k in (-1, 0, 1):
                ax = tx + 0.035 * k
                d = np.minimum(d, _sd_segment(wx, wy, ax, ty - 0.03 * diry, ax + 0.05 * k, ty + 0.17 * diry, 0.0))
            a = p.cov(d - 0.01)
            p.img[w2] *= (1.0 - 0.6 * a)[..., None]
            weight = np.clip(1.0 - np.abs(d - 0.04) / 0.03, 0.0, 1.0) * (1.0 - a)
        p.balance(w2, before, weight)


def _recompute_ear(w2, win, d_ear):
    """The ear's distance field on window ``w2`` (it was computed on the ear's own window ``win``)."""
    out = np.full((w2[0].stop - w2[0].start, w2[1].stop - w2[1].start), 10.0, _F32)
    i0 = max(w2[0].start, win[0].start)
    i1 = min(w2[0].stop, win[0].stop)
    j0 = max(w2[1].start, win[1].start)
    j1 = min(w2[1].stop, win[1].stop)
    if i0 < i1 and j0 < j1:
        out[i0 - w2[0].start:i1 - w2[0].start, j0 - w2[1].start:j1 - w2[1].start] = d_ear[
            i0 - win[0].start:i1 - win[0].start, j0 - win[1].start:j1 - win[1].start]
    return out


# ----------------------------------------------------------------------------------------------------------------
# Public rendering API
# ----------------------------------------------------------------------------------------------------------------


def render(factors: dict, size: int, variant: str) -> np.ndarray:
    """Render one image: uint8 [size, size, 3] from a factor dict (as returned by ``sample_factors``).

    Pure function of ``(factors, size, variant)``. All geometry is resolution independent, so the 256 px image
    2x2-averaged is close to the 128 px one.
    """
    _check_variant(variant)
    _check_size(size)
    missing = [n for n in factor_names(variant) if n not in factors]
    if missing:
        raise KeyError(f"factors for variant {variant!r} are missing {missing}; use sample_factors() for a full set")
    f = {n: factors[n] for n in factor_names(variant)}
    for spec in FACTORS[variant]:
        if spec.kind == "categorical" and not 0 <= int(f[spec.name]) < spec.n_classes:
            raise ValueError(f"factor {spec.name!r}={f[spec.name]!r} is not a class index of {spec.classes}")
    size = int(size)
    if variant == "faces":
        return _render_face(f, size)
    return _render_animal(f, size)


# ----------------------------------------------------------------------------------------------------------------
# Sets, cache, dataset, export
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SynthSet:
    """``n`` rendered images of one ``(variant, split, size, seed)`` and their factors.

    ``images`` is uint8 ``[N, H, W, 3]``; ``factors`` maps every factor name (``FACTORS[variant]`` order) to an
    ``[N]`` array (int64 for categorical factors and ``texture_seed``, float64 for continuous ones); ``domain`` is
    int64 ``[N]``, an index into ``DOMAINS[variant]`` (the same values as ``factors["domain"]``). Image ``i`` is
    ``render(sample_factors(variant, seed, split, i), size, variant)``.
    """

    images: np.ndarray
    factors: dict[str, np.ndarray]
    domain: np.ndarray
    variant: str
    split: str
    size: int
    seed: int
    _fingerprint: list = field(default_factory=list, repr=False, compare=False)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def domain_names(self) -> tuple[str, ...]:
        return DOMAINS[self.variant]

    def factors_of(self, i: int) -> dict[str, float | int]:
        """Factors of image ``i`` as python scalars (the dict ``sample_factors`` returns)."""
        return {k: v[i].item() for k, v in self.factors.items()}

    def fingerprint(self) -> str:
        """sha256 (hex) of the content: image shape and bytes, then every factor's name, dtype and values."""
        if not self._fingerprint:
            self._fingerprint.append(_content_hash(self.images, self.factors))
        return self._fingerprint[0]


def _content_hash(images: np.ndarray, factors: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    h.update(repr(tuple(images.shape)).encode())
    h.update(np.ascontiguousarray(images).tobytes())
    for name in sorted(factors):
        arr = np.ascontiguousarray(factors[name])
        # Little-endian, fixed dtypes: the hash is the same on every platform.
        arr = arr.astype("<i8") if arr.dtype.kind in "iub" else arr.astype("<f8")
        h.update(name.encode() + b"\0" + arr.dtype.str.encode() + b"\0")
        h.update(arr.tobytes())
    return h.hexdigest()


def _factor_arrays(variant: str, rows: list[dict]) -> dict[str, np.ndarray]:
    out = {}
    for spec in FACTORS[variant]:
        dtype = np.float64 if spec.kind == "continuous" else np.int64
        out[spec.name] = np.asarray([r[spec.name] for r in rows], dtype=dtype)
    return out


def cache_path(variant: str, split: str, n: int, size: int, seed: int) -> Path:
    """Where ``generate(..., cache=True)`` keeps this set (under ``cache_dir("synthfaces")``)."""
    return cache_dir("synthfaces") / f"v{SYNTHFACES_VERSION}_{variant}_{split}_n{n}_s{size}_seed{seed}.npz"


def _load_cached(path: Path, variant: str, split: str, n: int, size: int, seed: int) -> SynthSet | None:
    """The cached set, or None when the file is missing, unreadable, or does not match what it claims to hold."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            images = z["images"]
            factors = {name: z["f_" + name] for name in factor_names(variant)}
            stored_hash = str(z["fingerprint"])
            meta = str(z["meta"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if meta != _cache_meta(variant, split, n, size, seed):
        return None
    if images.dtype != np.uint8 or images.shape != (n, size, size, 3):
        return None
    if any(a.shape != (n,) for a in factors.values()):
        return None
    # The stored content hash guards against silent corruption that still parses (and against a truncated file
    # whose arrays happen to load).
    if _content_hash(images, factors) != stored_hash:
        return None
    ss = SynthSet(images, factors, factors["domain"].astype(np.int64), variant, split, size, seed)
    ss._fingerprint.append(stored_hash)
    return ss


def _cache_meta(variant: str, split: str, n: int, size: int, seed: int) -> str:
    return f"synthfaces v{SYNTHFACES_VERSION} variant={variant} split={split} n={n} size={size} seed={seed}"


def _save_cached(path: Path, ss: SynthSet) -> None:
    arrays = {"images": ss.images, "fingerprint": np.asarray(ss.fingerprint()),
              "meta": np.asarray(_cache_meta(ss.variant, ss.split, len(ss), ss.size, ss.seed))}
    arrays.update({"f_" + k: v for k, v in ss.factors.items()})
    # Streamed into the temporary file (no second in-memory copy of a large set); moved into place on success.
    with atomic_open(path, "wb") as fh:
        np.savez(fh, **arrays)


def generate(variant: str, split: str, n: int, size: int, seed: int = 0, cache: bool = True) -> SynthSet:
    """Render images ``0 .. n-1`` of ``(variant, split, seed)`` at ``size`` px (a ``SynthSet``).

    With ``cache=True`` the set is stored in (and next time read from) one ``.npz`` under ``cache_dir("synthfaces")``
    keyed on ``(SYNTHFACES_VERSION, variant, split, n, size, seed)``; a cache file that cannot be read or fails its
    content hash is regenerated and replaced atomically, never trusted. Generating ``n`` images gives the same first
    ``k`` images as generating ``k``.
    """
    _check_variant(variant)
    _check_split(split)
    _check_size(size)
    _check_int("n", n, 1)
    _check_int("seed", seed, 0)
    n, size, seed = int(n), int(size), int(seed)
    path = cache_path(variant, split, n, size, seed) if cache else None
    if path is not None:
        hit = _load_cached(path, variant, split, n, size, seed)
        if hit is not None:
            return hit
    rows = [sample_factors(variant, seed, split, i) for i in range(n)]
    images = np.empty((n, size, size, 3), np.uint8)
    for i, row in enumerate(rows):
        images[i] = render(row, size, variant)
    factors = _factor_arrays(variant, rows)
    ss = SynthSet(images, factors, factors["domain"].copy(), variant, split, size, seed)
    if path is not None:
        _save_cached(path, ss)
    return ss


class SynthFacesDataset(Dataset):
    """synthfaces as a torch ``Dataset`` (the in-memory counterpart of the StarGAN v2 folder layout).

    ``n`` is the number of images **per domain** (as the profiles' ``synth_n_train``/``synth_n_val``): the
    underlying set has ``n * len(DOMAINS[variant])`` images, whose domains are exactly balanced, and ``domains``
    keeps a subset of them. Items are dicts: ``image`` float32 ``[3, H, W]`` in ``[-1, 1]``, ``domain`` (int label
    into ``.domain_names``, i.e. into the *selected* domains, in ``DOMAINS`` order), ``index`` (the image's index
    in its split, valid for ``sample_factors``), ``factors`` (python scalars, unflipped), and ``flipped`` (bool:
    with ``hflip=True`` an image is mirrored with probability 1/2 using ``torch``'s RNG; its factors are not
    mirrored).
    """

    def __init__(self, variant: str = "faces", split: str = "train", n: int = 500, size: int = 128, seed: int = 0,
                 domains: Sequence[str] | None = None, hflip: bool = False, cache: bool = True) -> None:
        _check_variant(variant)
        _check_split(split)
        _check_size(size)
        _check_int("n", n, 1)
        selected = _check_domains(variant, domains)
        self.variant, self.split, self.size, self.seed = variant, split, int(size), int(seed)
        self.hflip = bool(hflip)
        self.set = generate(variant, split, int(n) * len(DOMAINS[variant]), size, seed, cache=cache)
        self.domain_names: tuple[str, ...] = tuple(d for d in DOMAINS[variant] if d in selected)
        wanted = [DOMAINS[variant].index(d) for d in self.domain_names]
        self.indices = np.flatnonzero(np.isin(self.set.domain, wanted))  # int64 [M] rows of the set
        remap = {g: i for i, g in enumerate(wanted)}
        self.targets = [remap[int(self.set.domain[i])] for i in self.indices]
        h = hashlib.sha256(self.set.fingerprint().encode())
        h.update(np.ascontiguousarray(self.indices.astype("<i8")).tobytes())
        self.fingerprint: str = h.hexdigest()

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        n = len(self.indices)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for a dataset of {n} images")
        row = int(self.indices[i % n])
        img = torch.from_numpy(np.ascontiguousarray(self.set.images[row])).permute(2, 0, 1).to(torch.float32)
        img = img * (2.0 / 255.0) - 1.0  # 8-bit level k -> k * 2/255 - 1, as lrkit.data.ops.from_uint8
        flipped = bool(self.hflip and bool(torch.rand(()) < 0.5))
        if flipped:
            img = img.flip(-1)
        return {"image": img.contiguous(), "domain": self.targets[i % n], "index": row,
                "factors": self.set.factors_of(row), "flipped": flipped}

    def __repr__(self) -> str:
        return (f"SynthFacesDataset(variant={self.variant!r}, split={self.split!r}, domains={list(self.domain_names)},"
                f" n={len(self)}, size={self.size}, seed={self.seed})")


def export_folder(variant: str, root: str | Path, n_train: int, n_val: int, size: int, seed: int = 0) -> Path:
    """Write synthfaces as PNGs in the StarGAN v2 layout and return ``root``.

    ``n_train``/``n_val`` are images **per domain** (as the ``lrkit data synth`` CLI and the profiles count them).
    Files: ``root/{train,val}/{domain}/{index:06d}.png`` (``index`` = the image's index in its split, usable with
    ``sample_factors``) and ``root/factors.csv`` with columns ``split, domain, file, index`` followed by every
    factor except ``domain`` (categorical factors as class indices, continuous ones with full float precision).
    Existing files of the same names are overwritten atomically; other files in ``root`` are left alone.
    """
    from PIL import Image

    _check_variant(variant)
    _check_int("n_train", n_train, 1)
    _check_int("n_val", n_val, 1)
    _check_size(size)
    root = Path(root)
    names = [n for n in factor_names(variant) if n != "domain"]
    rows: list[list[str]] = []
    for split, per_domain in (("train", n_train), ("val", n_val)):
        ss = generate(variant, split, int(per_domain) * len(DOMAINS[variant]), size, seed)
        for d in DOMAINS[variant]:
            (root / split / d).mkdir(parents=True, exist_ok=True)
        for i in range(len(ss)):
            dname = DOMAINS[variant][int(ss.domain[i])]
            rel = f"{split}/{dname}/{i:06d}.png"
            buf = io.BytesIO()
            Image.fromarray(ss.images[i]).save(buf, format="PNG")
            with atomic_open(root / rel, "wb") as fh:
                fh.write(buf.getvalue())
            vals = ss.factors_of(i)
            rows.append([split, dname, rel, str(i)] + [repr(vals[k]) for k in names])
    text = io.StringIO()
    w = csv.writer(text, lineterminator="\n")
    w.writerow(["split", "domain", "file", "index"] + names)
    w.writerows(rows)
    with atomic_open(root / "factors.csv", "w") as fh:
        fh.write(text.getvalue())
    return root


def read_factors_csv(path: str | Path, variant: str) -> list[dict]:
    """Rows of an exported ``factors.csv`` as dicts: ``split``, ``file``, ``index`` and the full factor dict
    (``domain`` as its class index), with the same python types as ``sample_factors``."""
    _check_variant(variant)
    out = []
    with open(path, newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            f: dict[str, float | int] = {}
            for spec in FACTORS[variant]:
                if spec.name == "domain":
                    f["domain"] = DOMAINS[variant].index(r["domain"])
                elif spec.kind == "continuous":
                    f[spec.name] = float(r[spec.name])
                else:
                    f[spec.name] = int(r[spec.name])
            out.append({"split": r["split"], "file": r["file"], "index": int(r["index"]), "factors": f})
    return out
