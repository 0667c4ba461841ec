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

How the images are drawn (and how the fine factors are kept out of the 8x8 image) is described in
``lrkit.data.synthfaces.painter``; ``faces`` and ``animals`` are the two renderers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

SYNTHFACES_VERSION = "1"
VARIANTS = ("faces", "animals")
SPLITS = ("train", "val")
DOMAINS: dict[str, tuple[str, ...]] = {"faces": ("longhair", "shorthair"), "animals": ("cat", "dog", "wild")}
SIZES = (32, 64, 128, 256)  # HR sizes render() accepts: powers of two in 32..256

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
