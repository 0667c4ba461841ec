"""I2I-LR training configurations: one frozen dataclass and the named presets.

Paper presets (I2I-LR §4.1, REFERENCE_NOTES for what the paper leaves open):

* ``celebahq128`` / ``celebahq256``: CelebA-HQ with both genders together (the paper does not separate them), LR 8,
  lambda_cyc 1 (128 px) / 0.1 (256 px).
* ``afhq_cat`` / ``afhq_dog`` / ``afhq_wild``: one model per AFHQ domain (the paper trains them separately). The
  paper does not state the HR size for AFHQ; the public code trains at 128 px, which is used here.
* ``lr4`` / ``lr8`` / ``lr16`` / ``lr32``: the Table 4 ablation, CelebA-HQ 128 px with that LR size.

The number of steps follows the public code's 100 epochs at batch 8 (CelebA-HQ train split 28,000 images ->
350,000 steps; AFHQ train cat 5,153 / dog 4,739 / wild 4,738 images). Every preset also exists as
``<name>_smoke`` (CI minutes: tiny widths, 60-80 steps, EMA 0.95, synthfaces at a quarter of the HR size,
64 px for the LR ablation) and
``<name>_quick`` (one GPU, minutes: the paper's widths and sizes for a few thousand steps, synthfaces). CelebA-HQ
maps to synthfaces ``faces`` (both domains), AFHQ domain ``d`` to synthfaces ``animals`` domain ``d``.

Configs are never mutated: derive one with ``dataclasses.replace`` (``with_overrides`` checks the names).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from lrkit.methods.i2ilr.generator import LR_PROJECTIONS
from lrkit.methods.i2ilr.layers import LR_DIFF_MODES
from lrkit.train.presets import ConfigIO, expand_presets, lookup, profile_preset

__all__ = ["I2ILRConfig", "Recipe", "RECIPES", "PRESETS", "get_preset", "preset_names", "preset_for_profile",
           "PRECISIONS"]

PRECISIONS = ("fp32", "bf16")
DATASETS = ("synthfaces", "celeba_hq", "afhq")
ADV_REDUCTIONS = ("mean", "sum")
R1_FORMS = ("logits", "loss")
UPSAMPLINGS = ("nearest", "bilinear")


@dataclass(frozen=True)
class Recipe:
    """The training-loop and network choices on which the paper and the public code (Medabid1/I2I-LR) differ.

    A config names one (``I2ILRConfig.recipe``); its own ``lr_diff`` / ``adv_on_cycle`` / ``r1_gamma``, when set,
    override the recipe's (a study varies one choice at a time). Facts about the public code:
    shared/REFERENCE_NOTES.md (counted with forward hooks on a patched copy).
    """

    name: str
    lr_diff: str  # eq. 5 map: "paper" (one grey level, divided by r) or "public_code" (4 levels, no division)
    adv_on_cycle: bool  # D and G's adversarial loss also see the two cycle outputs
    adv_reduce: str  # G's adversarial loss: "mean" over every fake, or "sum" of the per-pass means (4 terms)
    r1_form: str  # "logits": gamma/2 ||d sum D(real) / dx||^2 (paper, StarGAN v2); "loss": the gradient of the
    #               averaged real softplus loss instead (the public code)
    r1_gamma: float
    r1_repeats: int  # times the penalty enters D's loss per step (the public code computes it 4 times: each real
    #                  half twice); here it is computed once per half and weighted, which is the same number
    d_patch: bool  # D returns a logit map ((LR - 3) x (LR - 3) at LR >= 8: 5 x 5 at LR 8) instead of one logit
    d_eval_in_g_step: bool  # D in eval mode for G's step (no spectral-norm power iteration there)
    quantize_lr: bool  # LR targets rounded to 8 bits (a saved image) or left continuous
    upsample: str  # "nearest": G's decoder upsamples by nearest (StarGAN v2's), SPAdaIN resizes the LR image
    #                bilinearly (align_corners=False); "bilinear": both bilinear with align_corners=True
    #                (nn.UpsamplingBilinear2d, SPAdaIN by chained factors of two)
    spadain_sn: bool  # spectral norm on SPAdaIN's two 1x1 convs (the paper: SN on every layer)
    pono_unbiased: bool  # PONO's std from the unbiased variance (divide by C - 1)

    def __post_init__(self) -> None:
        for field, valid in (("lr_diff", LR_DIFF_MODES), ("adv_reduce", ADV_REDUCTIONS), ("r1_form", R1_FORMS),
                             ("upsample", UPSAMPLINGS)):
            if getattr(self, field) not in valid:
                raise ValueError(f"Recipe.{field} must be one of {valid}, got {getattr(self, field)!r}")
        if self.r1_gamma < 0 or self.r1_repeats < 1:
            raise ValueError(f"Recipe needs r1_gamma >= 0 and r1_repeats >= 1, got {self.r1_gamma}, "
                             f"{self.r1_repeats}")


RECIPES: dict[str, Recipe] = {r.name: r for r in (
    # The paper (§3.2, §4.1): eq. 5 with r = one grey level, D sees the two translations, one logit per image,
    # R1 gamma 0.5 on the logits, SN everywhere, 8-bit LR targets (a saved LR image). The kit's default.
    Recipe("paper", lr_diff="paper", adv_on_cycle=False, adv_reduce="mean", r1_form="logits", r1_gamma=0.5,
           r1_repeats=1, d_patch=False, d_eval_in_g_step=False, quantize_lr=True, upsample="nearest",
           spadain_sn=True, pono_unbiased=False),
    # What the public training script does (REFERENCE_NOTES): 4-level rounding without division, the cycle outputs
    # as fakes too, G's adversarial loss the sum of 4 means, R1 gamma 10 on the loss gradient 4 times per step, a
    # 5 x 5 patch D at LR 8 kept in eval mode for G's step, continuous LR targets, bilinear upsampling, no SN in
    # SPAdaIN, unbiased PONO variance.
    Recipe("public_code", lr_diff="public_code", adv_on_cycle=True, adv_reduce="sum", r1_form="loss",
           r1_gamma=10.0, r1_repeats=2, d_patch=True, d_eval_in_g_step=True, quantize_lr=False,
           upsample="bilinear", spadain_sn=False, pono_unbiased=True),
)}


@dataclass(frozen=True)
class I2ILRConfig(ConfigIO):
    preset: str
    dataset: str  # "synthfaces" | "celeba_hq" | "afhq"
    domains: tuple[str, ...] | None  # domains trained on (None: all of them together)
    synth_variant: str = "faces"  # synthfaces only: "faces" | "animals"
    synth_n_train: int = 0  # synthfaces only: images rendered for training (all selected domains together)
    synth_n_val: int = 0  # synthfaces only: val images (sources and targets of the evaluations)
    hr_size: int = 128
    lr_size: int = 8
    g_base: int = 64  # generator from_rgb width
    g_max: int = 512
    d_base: int | None = None  # None: 2**14 // hr_size (StarGAN v2's rule)
    d_max: int = 512
    batch_size: int = 8  # split in two halves A and B each iteration
    lr_g: float = 1e-3
    lr_d: float = 4e-3
    beta1: float = 0.0
    beta2: float = 0.99
    lambda_cyc: float = 1.0
    # Not in the paper (study / cpu presets): G's output made LR-consistent by construction, generator.LR_PROJECTIONS:
    # "none" (the paper), "residual" or "bounded" (also inside [-1, 1], so a saved 8-bit image stays consistent).
    lr_projection: str = "none"
    lambda_adv: float = 1.0  # weight of G's adversarial term: 1 in the paper's objective; 0 only as a study diagnostic
    recipe: str = "paper"  # RECIPES: "paper" or "public_code" (the public training script's loop and nets)
    # None: the recipe's. Set, they override it (one choice varied at a time in a study).
    r1_gamma: float | None = None
    adv_on_cycle: bool | None = None  # D and G's adversarial loss also see the two cycle outputs
    lr_diff: str | None = None  # "paper" (eq. 5: one grey level, divided by r) or "public_code" (4 levels)
    ema_beta: float = 0.999
    hflip: bool = True
    seed: int = 0
    steps: int = 350_000
    checkpoint_every: int = 5_000
    sample_every: int = 5_000
    precision: str = "fp32"  # "bf16": autocast of G and D forward passes to bfloat16 (CUDA)

    def __post_init__(self) -> None:
        if isinstance(self.lr_projection, bool):  # the older spelling (a study's configs): True meant "residual"
            object.__setattr__(self, "lr_projection", "residual" if self.lr_projection else "none")
        if self.lr_projection not in LR_PROJECTIONS:
            raise ValueError(f"I2ILRConfig.lr_projection must be one of {LR_PROJECTIONS}, got {self.lr_projection!r}")
        if self.dataset not in DATASETS:
            raise ValueError(f"I2ILRConfig.dataset must be one of {DATASETS}, got {self.dataset!r}")
        if self.recipe not in RECIPES:
            raise ValueError(f"I2ILRConfig.recipe must be one of {tuple(RECIPES)}, got {self.recipe!r}")
        if self.lr_diff is not None and self.lr_diff not in LR_DIFF_MODES:
            raise ValueError(f"I2ILRConfig.lr_diff must be one of {LR_DIFF_MODES} (or None: the recipe's), got "
                             f"{self.lr_diff!r}")
        if not (self.lambda_adv >= 0 and self.lambda_cyc >= 0):
            raise ValueError(f"I2ILRConfig.lambda_adv and lambda_cyc must be >= 0, got {self.lambda_adv!r}, "
                             f"{self.lambda_cyc!r}")
        self.choices  # noqa: B018 - validates the overrides (e.g. a negative r1_gamma) at construction
        if self.precision not in PRECISIONS:
            raise ValueError(f"I2ILRConfig.precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.batch_size < 2 or self.batch_size % 2:
            raise ValueError(f"I2ILRConfig.batch_size must be even and >= 2 (it is split in two halves), "
                             f"got {self.batch_size}")
        for name in ("steps", "checkpoint_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"I2ILRConfig.{name} must be >= 1, got {getattr(self, name)!r}")
        if self.sample_every < 0:
            raise ValueError(f"I2ILRConfig.sample_every must be >= 0 (0 = never), got {self.sample_every!r}")
        if not 0.0 <= self.ema_beta < 1.0:
            raise ValueError(f"I2ILRConfig.ema_beta must be in [0, 1), got {self.ema_beta!r}")
        if self.dataset == "synthfaces" and self.synth_n_train < self.batch_size:
            raise ValueError(f"I2ILRConfig.synth_n_train must be >= batch_size ({self.batch_size}) for synthfaces")

    @property
    def choices(self) -> Recipe:
        """The recipe with this config's own overrides applied: what the task and the networks follow."""
        own = {k: getattr(self, k) for k in ("lr_diff", "adv_on_cycle", "r1_gamma") if getattr(self, k) is not None}
        return dataclasses.replace(RECIPES[self.recipe], **own) if own else RECIPES[self.recipe]

    @property
    def d_base_channels(self) -> int:
        return self.d_base if self.d_base is not None else max(1, 2 ** 14 // self.hr_size)


def _epochs_to_steps(n_images: int, epochs: int = 100, batch: int = 8) -> int:
    return math.ceil(epochs * n_images / batch)


_CELEBA_TRAIN, _AFHQ_TRAIN = 28_000, {"cat": 5_153, "dog": 4_739, "wild": 4_738}


def _paper() -> dict[str, I2ILRConfig]:
    out = {}
    celeba = dict(dataset="celeba_hq", domains=None, steps=_epochs_to_steps(_CELEBA_TRAIN))
    out["celebahq128"] = I2ILRConfig("celebahq128", hr_size=128, lambda_cyc=1.0, **celeba)
    out["celebahq256"] = I2ILRConfig("celebahq256", hr_size=256, lambda_cyc=0.1, **celeba)
    for d, n in _AFHQ_TRAIN.items():
        out[f"afhq_{d}"] = I2ILRConfig(f"afhq_{d}", dataset="afhq", domains=(d,), hr_size=128,
                                       steps=_epochs_to_steps(n))
    for lr in (4, 8, 16, 32):
        out[f"lr{lr}"] = I2ILRConfig(f"lr{lr}", hr_size=128, lr_size=lr, **celeba)
    return out


def _synth(cfg: I2ILRConfig, suffix: str) -> I2ILRConfig:
    """The synthfaces counterpart of a paper preset for the smoke (CPU) or quick (GPU) profile."""
    variant, domains = ("faces", None) if cfg.dataset == "celeba_hq" else ("animals", cfg.domains)
    common = dict(preset=f"{cfg.preset}_{suffix}", dataset="synthfaces", synth_variant=variant, domains=domains)
    if suffix == "smoke":
        # CI minutes (the whole smoke batch runs in CI): a quarter of the HR size (128 -> 32, 256 -> 64), tiny
        # widths (0.2 s/step at 32 px, 0.4 s at 64 px on 2 cores), 80 steps (60 for the four 64 px LR-ablation
        # models: the LR ablation needs LR 32 < HR); plumbing, not results (the `cpu` profile is for results).
        # 128 train images: the real set of every Fréchet distance is the train split, and its EfficientNet
        # features (~0.05 s per image) were the batch's largest evaluation cost. The EMA is shortened (0.95, a
        # ~20-step horizon): with the paper's 0.999 an 80-step G_ema would still be mostly its initial weights.
        lr_ablation = cfg.preset.startswith("lr")
        return dataclasses.replace(cfg, **common, hr_size=64 if lr_ablation else cfg.hr_size // 4, g_base=8,
                                   g_max=32, d_base=8, d_max=32, synth_n_train=128, synth_n_val=64,
                                   steps=60 if lr_ablation else 80, ema_beta=0.95, checkpoint_every=40,
                                   sample_every=40)
    if suffix == "cpu":
        return _cpu(cfg, common)
    return dataclasses.replace(cfg, **common, synth_n_train=5000, synth_n_val=500,
                               steps=6000 if cfg.hr_size <= 128 else 3000, checkpoint_every=1000,
                               sample_every=1000)


# The cpu profile's changes to the paper's settings (each measured in the training study, i2ilr/study.py and
# paper_tables/cpu/i2ilr_training_study.md; 2-core CPU, one thread a model):
CPU_WIDTHS = dict(g_base=16, g_max=64, d_base=16, d_max=64)  # G 0.26 M params at 32 px, 0.34 M at 64 px
# At this scale D tells every fake by eq. 5's difference map alone and G drops its source (the study's paper arm:
# source dependence 0.06); an output layer that makes DS(G) = LR by construction (and stays in [-1, 1]) leaves D
# only the image to judge.
CPU_PROJECTION = "bounded"
CPU_EMA = 0.99  # a ~100-step horizon: the paper's 0.999 averages over more steps than the whole run has
# Steps: the whole cpu batch (9 I2I-LR + 3 StarGAN v2 models) trained in 66 min on the 2-core CI machine, two
# models at a time, one thread each (2026-12-03; 0.42 s/step at 32 px, 1.44 s/step at 64 px alone, ~0.6 s/step at
# 32 px with two running). The main model (Fig. 5, Table 1 @128, the shipped test) gets the most steps.
CPU_STEPS = {"celebahq128": 2000}  # paper preset -> steps; 19 min measured
CPU_STEPS_32, CPU_STEPS_64 = 1000, 400  # the other 32 px models (AFHQ, 8.5 min each) and the 64 px ones (7-9 min)


def _cpu(cfg: I2ILRConfig, common: dict) -> I2ILRConfig:
    """Models meant to work on a 2-core CPU in tens of minutes: 32 px (64 px for the 256 px preset and the LR
    ablation, which needs LR 32 < HR), 1,000 train images, the study's widths and projection."""
    big = cfg.preset.startswith("lr") or cfg.hr_size > 128
    steps = CPU_STEPS.get(cfg.preset, CPU_STEPS_64 if big else CPU_STEPS_32)
    return dataclasses.replace(cfg, **common, **CPU_WIDTHS, hr_size=64 if big else 32, synth_n_train=1000,
                               synth_n_val=200, steps=steps, ema_beta=CPU_EMA, lr_projection=CPU_PROJECTION,
                               checkpoint_every=max(1, steps // 6), sample_every=max(1, steps // 6))


PRESETS: dict[str, I2ILRConfig] = expand_presets(_paper(), _synth)


def preset_names() -> list[str]:
    return list(PRESETS)


def get_preset(name: str) -> I2ILRConfig:
    return lookup(PRESETS, name, "I2I-LR")


def preset_for_profile(name: str, profile: str, steps: int = 0, batch_size: int = 0) -> I2ILRConfig:
    """The preset a notebook runs for paper preset ``name`` under a run profile (``lrkit.train.presets``)."""
    return profile_preset(PRESETS, name, profile, steps, "I2I-LR", batch_size)
