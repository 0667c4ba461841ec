"""I2I-LR training configurations: one frozen dataclass and the named presets.

Paper presets (I2I-LR §4.1, REFERENCE_NOTES for what the paper leaves open):

* ``celebahq128`` / ``celebahq256``: CelebA-HQ with both genders together (the paper does not separate them), LR 8,
  lambda_cyc 1 (128 px) / 0.1 (256 px).
* ``afhq_cat`` / ``afhq_dog`` / ``afhq_wild``: one model per AFHQ domain (the paper trains them separately). The
  paper does not state the HR size for AFHQ; the public code trains at 128 px, which is used here.
* ``lr4`` / ``lr8`` / ``lr16`` / ``lr32``: the Table 4 ablation, CelebA-HQ 128 px with that LR size.

The number of steps follows the public code's 100 epochs at batch 8 (CelebA-HQ train split 28,000 images ->
350,000 steps; AFHQ train cat 5,153 / dog 4,739 / wild 4,738 images). Every preset also exists as
``<name>_smoke`` (CPU minutes: tiny widths, 100-150 steps, EMA 0.95, synthfaces at a quarter of the HR size,
64 px for the LR ablation) and
``<name>_quick`` (one GPU, minutes: the paper's widths and sizes for a few thousand steps, synthfaces). CelebA-HQ
maps to synthfaces ``faces`` (both domains), AFHQ domain ``d`` to synthfaces ``animals`` domain ``d``.

Configs are never mutated: derive one with ``dataclasses.replace`` (``with_overrides`` checks the names).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from lrkit.methods.i2ilr.layers import LR_DIFF_MODES
from lrkit.train.presets import ConfigIO, expand_presets, lookup, profile_preset

__all__ = ["I2ILRConfig", "PRESETS", "get_preset", "preset_names", "preset_for_profile", "PRECISIONS"]

PRECISIONS = ("fp32", "bf16")
DATASETS = ("synthfaces", "celeba_hq", "afhq")


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
    r1_gamma: float = 0.5
    lambda_cyc: float = 1.0
    adv_on_cycle: bool = False  # public code: D and G's adversarial loss also see the two cycle outputs
    lr_diff: str = "paper"  # "paper" (eq. 5: one grey level, divided by r) or "public_code" (4 levels, no division)
    ema_beta: float = 0.999
    hflip: bool = True
    seed: int = 0
    steps: int = 350_000
    checkpoint_every: int = 5_000
    sample_every: int = 5_000
    precision: str = "fp32"  # "bf16": autocast of G and D forward passes to bfloat16 (CUDA)

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"I2ILRConfig.dataset must be one of {DATASETS}, got {self.dataset!r}")
        if self.lr_diff not in LR_DIFF_MODES:
            raise ValueError(f"I2ILRConfig.lr_diff must be one of {LR_DIFF_MODES}, got {self.lr_diff!r}")
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
        # CPU minutes: a quarter of the HR size (128 -> 32, 256 -> 64), tiny widths (0.2 s/step at 32 px, 0.4 s
        # at 64 px on 2 cores). The LR ablation needs LR 32 < HR, so it runs at 64 px with fewer steps. The EMA
        # is shortened (0.95, a ~20-step horizon): with the paper's 0.999 a 150-step G_ema would still be mostly
        # its initial weights.
        lr_ablation = cfg.preset.startswith("lr")
        return dataclasses.replace(cfg, **common, hr_size=64 if lr_ablation else cfg.hr_size // 4, g_base=8,
                                   g_max=32, d_base=8, d_max=32, synth_n_train=256, synth_n_val=64,
                                   steps=100 if lr_ablation else 150, ema_beta=0.95, checkpoint_every=50,
                                   sample_every=50)
    return dataclasses.replace(cfg, **common, synth_n_train=5000, synth_n_val=500,
                               steps=6000 if cfg.hr_size <= 128 else 3000, checkpoint_every=1000,
                               sample_every=1000)


PRESETS: dict[str, I2ILRConfig] = expand_presets(_paper(), _synth)


def preset_names() -> list[str]:
    return list(PRESETS)


def get_preset(name: str) -> I2ILRConfig:
    return lookup(PRESETS, name, "I2I-LR")


def preset_for_profile(name: str, profile: str, steps: int = 0) -> I2ILRConfig:
    """The preset a notebook runs for paper preset ``name`` under a run profile (``lrkit.train.presets``)."""
    return profile_preset(PRESETS, name, profile, steps, "I2I-LR")
