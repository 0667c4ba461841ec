"""SR-NAM degradation-GAN configurations: one frozen dataclass and its named presets.

The paper (§3.2, §4.1; REFERENCE_NOTES "SR-NAM") fixes: HR 64 px -> LR 16 px, noise 100-d, 500k iterations,
Adam "with default settings", 5 critic iterations per generator iteration, gradient penalty lambda 10, batch 64,
a VGG-19 perceptual term. It leaves open the loss weights alpha, beta, gamma, delta, the up-scaler F of the pixel
loss, the VGG layers, and which GAN loss: eq. 2 is a hinge loss while the text describes a WGAN with gradient
penalty. Every such choice is a field below with its reason; ``gan_loss`` offers both readings.

Real LR data (``lr_data``): ``"synthlr"`` (the offline default: synthfaces HR images, a disjoint set from the
generator's HR inputs, degraded by the known process ``lrkit.data.synthetic_lr.SYNTHLR_V1``) or ``"folder"`` (a
user's folder of real LR faces, e.g. Widerface crops, given as ``--lr-root``; read at 16 px). HR data
(``hr_dataset``): ``"synthfaces"`` or a real face dataset (``celeba_hq``: any 64 px face folder via ``data_root``).

Presets: ``srnam_deg`` (the paper's settings; a real LR folder and a real HR folder), ``srnam_deg_synthlr`` (the
same on a real HR folder with the synthetic "real LR" set, for when no LR folder is given) and synthfaces versions
``srnam_deg_smoke`` (CI seconds), ``srnam_deg_cpu`` (2 CPU cores, tens of minutes) and ``srnam_deg_quick`` (one
GPU), all at SR-NAM's sizes (64 -> 16) with smaller widths and fewer steps.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from lrkit.data.roots import REAL_DATASETS
from lrkit.train.presets import ConfigIO, expand_presets, lookup, profile_preset

__all__ = ["DegradationConfig", "PRESETS", "GAN_LOSSES", "LR_DATA", "UPSCALERS", "get_preset", "preset_names",
           "preset_for_profile"]

GAN_LOSSES = ("hinge", "wgan_gp")  # eq. 2 as printed | the text's WGAN with gradient penalty
LR_DATA = ("synthlr", "folder")
UPSCALERS = ("bicubic", "bilinear", "nearest")
HR_DATASETS = ("synthfaces", *REAL_DATASETS)


@dataclass(frozen=True)
class DegradationConfig(ConfigIO):
    preset: str
    hr_dataset: str = "celeba_hq"  # HR inputs: "synthfaces" or a real 64 px face folder (data_root)
    lr_data: str = "folder"  # "folder": real LR faces (--lr-root) | "synthlr": the known synthetic process
    synth_n_hr: int = 0  # synthfaces only: HR training images rendered
    synth_n_lr: int = 0  # lr_data "synthlr" only: "real" LR images (from other synthfaces than the HR inputs)
    width: int = 64  # channels of every generator and critic block (not given; ResNet's first-stage width)
    noise_dim: int = 100  # the paper's noise size
    gan_loss: str = "wgan_gp"  # the text's WGAN-GP (lambda 10 is only meaningful for it); "hinge": eq. 2
    lambda_gp: float = 10.0  # the paper's gradient-penalty weight (wgan_gp only)
    n_critic: int = 5  # the paper: "5 more iterations" of the critic per generator iteration
    alpha: float = 1.0  # weight of the pixel loss (not given; 1 keeps gamma and delta readable as they are)
    beta: float = 0.05  # weight of the GAN loss (not given; small, so content dominates as in Bulat et al.)
    gamma: float = 1.0  # weight of L1(F(G(x)), x) inside the pixel loss (not given)
    delta: float = 0.1  # weight of the VGG-19 feature L1 (not given; features are ~10x larger than pixels)
    upscaler: str = "bicubic"  # F in eqs. 4-5, LR 16 -> 64 (not given; the SR papers' usual choice)
    vgg_layers: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_4")  # "the end of the i'th block" (not given which)
    lr: float = 1e-3  # Adam "default settings": torch's defaults
    beta1: float = 0.9
    beta2: float = 0.999
    batch_size: int = 64  # the paper's
    ema_beta: float = 0.999  # EMA of G (SR-NAM does not say; the kit searches and evaluates through G_ema)
    hflip: bool = False  # mirrored HR/LR inputs: not stated, off
    seed: int = 0
    steps: int = 500_000  # the paper's iterations (generator updates)
    checkpoint_every: int = 10_000
    sample_every: int = 5_000

    def __post_init__(self) -> None:
        name = "DegradationConfig"
        if self.hr_dataset not in HR_DATASETS:
            raise ValueError(f"{name}.hr_dataset must be one of {HR_DATASETS}, got {self.hr_dataset!r}")
        for field, allowed in (("lr_data", LR_DATA), ("gan_loss", GAN_LOSSES), ("upscaler", UPSCALERS)):
            if getattr(self, field) not in allowed:
                raise ValueError(f"{name}.{field} must be one of {allowed}, got {getattr(self, field)!r}")
        ints = {"synth_n_hr": 0, "synth_n_lr": 0, "width": 1, "noise_dim": 1, "n_critic": 1, "batch_size": 1,
                "seed": 0, "steps": 1, "checkpoint_every": 1, "sample_every": 0}
        for field, low in ints.items():
            v = getattr(self, field)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"{name}.{field} must be an int >= {low}, got {v!r}")
        if self.hr_dataset == "synthfaces" and self.synth_n_hr < self.batch_size:
            raise ValueError(f"{name}.synth_n_hr ({self.synth_n_hr}) must be at least one batch ({self.batch_size})")
        if self.lr_data == "synthlr" and self.synth_n_lr < self.batch_size:
            raise ValueError(f"{name}.synth_n_lr ({self.synth_n_lr}) must be at least one batch ({self.batch_size})")
        for field in ("alpha", "beta", "gamma", "delta", "lambda_gp"):
            if not float(getattr(self, field)) >= 0:
                raise ValueError(f"{name}.{field} must be >= 0, got {getattr(self, field)!r}")
        if not float(self.lr) > 0:
            raise ValueError(f"{name}.lr must be > 0, got {self.lr!r}")
        for field in ("beta1", "beta2", "ema_beta"):
            if not 0.0 <= float(getattr(self, field)) < 1.0:
                raise ValueError(f"{name}.{field} must be in [0, 1), got {getattr(self, field)!r}")
        if not isinstance(self.vgg_layers, tuple):
            raise ValueError(f"{name}.vgg_layers must be a tuple of layer names, got {self.vgg_layers!r}")


def _paper() -> dict[str, DegradationConfig]:
    return {"srnam_deg": DegradationConfig("srnam_deg")}


def _synth(cfg: DegradationConfig, suffix: str) -> DegradationConfig:
    """The synthfaces version of a paper preset: the same 64 -> 16 sizes, the known "real LR" process, smaller
    widths and fewer steps."""
    common = dict(preset=f"{cfg.preset}_{suffix}", hr_dataset="synthfaces", lr_data="synthlr")
    if suffix == "smoke":
        # CI seconds: width 8, batch 8, 12 steps on 64 + 64 images (plumbing only).
        return dataclasses.replace(cfg, **common, synth_n_hr=64, synth_n_lr=64, width=8, batch_size=8, steps=12,
                                   n_critic=2, ema_beta=0.9, checkpoint_every=6, sample_every=6)
    if suffix == "cpu":
        # 2 CPU cores, ~32 min: width 32, batch 16, 3,000 generator steps on 2,000 + 2,000 images (its patch SWD to
        # the true process was still falling steeply at 1,500: 139 -> 102 over the last 250 steps, 2026-12-04).
        return dataclasses.replace(cfg, **common, synth_n_hr=2000, synth_n_lr=2000, width=32, batch_size=16,
                                   steps=3000, ema_beta=0.99, checkpoint_every=250, sample_every=250)
    # quick (one GPU): the paper's width and batch, 20,000 generator steps on 5,000 + 5,000 images.
    return dataclasses.replace(cfg, **common, synth_n_hr=5000, synth_n_lr=5000, steps=20_000, checkpoint_every=2000,
                               sample_every=1000)


PRESETS: dict[str, DegradationConfig] = expand_presets(_paper(), _synth)
# The paper's settings on a real HR folder when no real LR folder is at hand: the "real LR" set is the known synthlr
# process on synthfaces renders (named so in every label); 5,000 as the quick preset's.
PRESETS["srnam_deg_synthlr"] = dataclasses.replace(PRESETS["srnam_deg"], preset="srnam_deg_synthlr",
                                                   lr_data="synthlr", synth_n_lr=5000)


def preset_names() -> list[str]:
    return list(PRESETS)


def get_preset(name: str) -> DegradationConfig:
    return lookup(PRESETS, name, "SR-NAM degradation")


def preset_for_profile(name: str, profile: str, steps: int = 0, batch_size: int = 0) -> DegradationConfig:
    """The preset a notebook runs for paper preset ``name`` under a run profile (``lrkit.train.presets``)."""
    return profile_preset(PRESETS, name, profile, steps, "SR-NAM degradation", batch_size)
