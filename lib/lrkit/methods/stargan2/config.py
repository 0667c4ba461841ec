"""StarGAN v2 training configurations: one frozen dataclass, the diversity-weight schedule and the named presets.

Defaults are the official training's (clovaai/stargan-v2 ``main.py`` / ``core/solver.py``, see REFERENCE_NOTES):
BCE (non-saturating) adversarial loss, R1 weight 1, style-reconstruction / diversity / cycle weights 1, the
diversity weight decayed linearly to 0 over ``ds_iter`` = 100k iterations, batch 8, Adam lr 1e-4 (G, E, D) and
1e-6 (mapping network F), betas (0, 0.99), weight decay 1e-4 (``torch.optim.Adam``'s, not AdamW), EMA 0.999,
latent 16, style 64, channel cap 512, 100k iterations, seed 777.

Paper presets:

* ``celebahq256``: the official CelebA-HQ release (256 px, high-pass path ``w_hpf = 1`` with FAN face masks).
* ``celebahq128``: the same at 128 px (the I2I-LR paper's Table 1 compares against a 128 px StarGAN v2).
* ``afhq256``: the official AFHQ release (256 px, ``w_hpf = 0``, domains cat/dog/wild); ``afhq128`` at 128 px.

Every preset also exists as ``<name>_smoke`` (CPU minutes) and ``<name>_quick`` (one GPU, the paper's widths and
size for a few thousand steps), both on synthfaces: CelebA-HQ -> variant ``faces`` (longhair/shorthair), AFHQ ->
``animals`` (cat/dog/wild). The synthfaces presets turn the high-pass path off (``w_hpf = 0``): its masks come
from a landmark network (FAN) trained on real face photographs, which has no meaningful landmarks to find on
synthetic drawings (and animals); the masks would be noise, so the path would only add noise to the decoder.

The official schedule of the diversity weight mutates its arguments (a resumed run restarts it); here it is the
pure function :func:`lambda_ds_at` of the 0-based step.

Configs are never mutated: derive one with ``with_overrides`` (checks the names) or ``dataclasses.replace``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from lrkit.train.presets import ConfigIO, expand_presets, lookup, profile_preset

__all__ = ["Stargan2Config", "PRESETS", "get_preset", "preset_names", "preset_for_profile", "lambda_ds_at",
           "PRECISIONS", "DATASETS", "OFFICIAL_DOMAINS"]

PRECISIONS = ("fp32", "bf16")
# Sorted class folders of the official datasets (= the released models' domain indices).
OFFICIAL_DOMAINS = {"celeba_hq": ("female", "male"), "afhq": ("cat", "dog", "wild")}
DATASETS = ("synthfaces", "celeba_hq", "afhq")
_SYNTH_VARIANTS = ("faces", "animals")


@dataclass(frozen=True)
class Stargan2Config(ConfigIO):
    preset: str
    dataset: str  # "synthfaces" | "celeba_hq" | "afhq"
    domains: tuple[str, ...] | None = None  # domains trained on (None: all of the dataset's); at least 2
    synth_variant: str = "faces"  # synthfaces only: "faces" | "animals"
    synth_n_train: int = 0  # synthfaces only: training images (all selected domains together)
    synth_n_val: int = 0  # synthfaces only: val images (sample grids, evaluation)
    img_size: int = 256
    latent_dim: int = 16
    style_dim: int = 64
    max_conv_dim: int = 512
    mapping_hidden: int = 512  # F's hidden width (official 512: 2.4 M params, 9.6 MB, most of a 32 px model's file)
    base_dim: int | None = None  # width at full resolution; None: 2**14 // img_size (official). Tiny models only
    w_hpf: float = 1.0  # high-pass path weight (CelebA-HQ 1, AFHQ 0); > 0 needs the FAN landmark network
    lambda_reg: float = 1.0  # R1 weight: lambda_reg * 0.5 * E ||grad||^2
    lambda_sty: float = 1.0
    lambda_ds: float = 1.0  # initial diversity-sensitive weight, decayed linearly to 0 at ds_iter
    lambda_cyc: float = 1.0
    ds_iter: int = 100_000
    batch_size: int = 8
    lr: float = 1e-4  # G, E and D
    f_lr: float = 1e-6  # mapping network F
    beta1: float = 0.0
    beta2: float = 0.99
    weight_decay: float = 1e-4  # torch.optim.Adam's L2 term (added to the gradient), as the official optimizers
    ema_beta: float = 0.999
    crop_prob: float = 0.5  # probability of the random resized crop (scale 0.8-1, ratio 0.9-1.1)
    hflip: bool = True
    seed: int = 777
    steps: int = 100_000
    checkpoint_every: int = 10_000  # official save_every
    sample_every: int = 5_000  # official sample_every
    precision: str = "fp32"  # "bf16": autocast of the G, F, E, D forward passes to bfloat16 (CUDA)

    def __post_init__(self) -> None:
        name = "Stargan2Config"
        if self.dataset not in DATASETS:
            raise ValueError(f"{name}.dataset must be one of {DATASETS}, got {self.dataset!r}")
        if self.synth_variant not in _SYNTH_VARIANTS:
            raise ValueError(f"{name}.synth_variant must be one of {_SYNTH_VARIANTS}, got {self.synth_variant!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"{name}.precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.domains is not None:
            if isinstance(self.domains, str) or len(self.domains) < 2 or len(set(self.domains)) != len(self.domains):
                raise ValueError(f"{name}.domains must be None (all) or at least 2 distinct domain names (StarGAN v2 "
                                 f"translates between domains), got {self.domains!r}")
        ints = {"img_size": 32, "latent_dim": 1, "style_dim": 1, "max_conv_dim": 1, "mapping_hidden": 1, "ds_iter": 1,
                "batch_size": 1, "steps": 1, "checkpoint_every": 1, "sample_every": 0, "synth_n_train": 0,
                "synth_n_val": 0}
        for field, low in ints.items():
            v = getattr(self, field)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"{name}.{field} must be an int >= {low}, got {v!r}")
        if self.img_size & (self.img_size - 1) or self.img_size > 256:
            raise ValueError(f"{name}.img_size must be a power of two in [32, 256], got {self.img_size}")
        if self.base_dim is not None and (isinstance(self.base_dim, bool) or not isinstance(self.base_dim, int)
                                          or self.base_dim < 1):
            raise ValueError(f"{name}.base_dim must be None (the official 2**14 // img_size) or an int >= 1, got "
                             f"{self.base_dim!r}")
        for field in ("w_hpf", "lambda_reg", "lambda_sty", "lambda_ds", "lambda_cyc", "weight_decay"):
            if not float(getattr(self, field)) >= 0:
                raise ValueError(f"{name}.{field} must be >= 0, got {getattr(self, field)!r}")
        for field in ("lr", "f_lr"):
            if not float(getattr(self, field)) > 0:
                raise ValueError(f"{name}.{field} must be > 0, got {getattr(self, field)!r}")
        for field in ("beta1", "beta2", "ema_beta"):
            if not 0.0 <= float(getattr(self, field)) < 1.0:
                raise ValueError(f"{name}.{field} must be in [0, 1), got {getattr(self, field)!r}")
        if not 0.0 <= float(self.crop_prob) <= 1.0:
            raise ValueError(f"{name}.crop_prob must be in [0, 1], got {self.crop_prob!r}")
        if self.dataset == "synthfaces" and self.synth_n_train < 2:
            raise ValueError(f"{name}.synth_n_train must be >= 2 for synthfaces (at least one image per domain), "
                             f"got {self.synth_n_train}")


def lambda_ds_at(step: int, lambda_ds: float, ds_iter: int) -> float:
    """Diversity-sensitive weight at 0-based ``step``: ``lambda_ds * max(0, 1 - step / ds_iter)``.

    The official loop subtracts ``lambda_ds / ds_iter`` after every iteration (while positive), so iteration
    ``step`` trains with exactly this value; deriving it from the step keeps it right after a resume."""
    if ds_iter < 1:
        raise ValueError(f"ds_iter must be >= 1, got {ds_iter}")
    return float(lambda_ds) * max(0.0, 1.0 - step / ds_iter)


def _paper() -> dict[str, Stargan2Config]:
    out = {}
    for size in (256, 128):
        out[f"celebahq{size}"] = Stargan2Config(f"celebahq{size}", dataset="celeba_hq", img_size=size, w_hpf=1.0)
        out[f"afhq{size}"] = Stargan2Config(f"afhq{size}", dataset="afhq", img_size=size, w_hpf=0.0)
    return out


def _synth(cfg: Stargan2Config, suffix: str) -> Stargan2Config:
    """The synthfaces counterpart of a paper preset for the smoke (CPU) or quick (GPU) profile."""
    variant = "faces" if cfg.dataset == "celeba_hq" else "animals"
    # w_hpf 0: no landmark network exists for synthfaces (module docstring).
    common = dict(preset=f"{cfg.preset}_{suffix}", dataset="synthfaces", synth_variant=variant, domains=None,
                  w_hpf=0.0)
    if suffix == "smoke":
        # CPU minutes: a quarter of the size (256 -> 64, 128 -> 32) and tiny widths (full-resolution width 16, cap
        # 32; the official 2**14 // img_size would be 256-512 channels at these sizes, as costly as at 256 px).
        # Measured on 2 cores (torch 2.14 CPU): 0.31 s/step at 32 px, 0.8 s/step at 64 px; 60 steps keep the CI
        # batch short (these models are plumbing at any CPU step count), 128 train images as the I2I-LR smoke
        # presets (the same real sets). The EMA is shortened to 0.95 (a ~20-step horizon): with 0.999 a 60-step
        # G_ema would still be mostly its initial weights. ds_iter = steps: the diversity weight reaches 0 at the
        # end, as in the paper's run.
        steps = 60
        return dataclasses.replace(cfg, **common, img_size=cfg.img_size // 4, max_conv_dim=32, base_dim=16,
                                   synth_n_train=128, synth_n_val=64, steps=steps, ds_iter=steps, ema_beta=0.95,
                                   checkpoint_every=30, sample_every=30)
    if suffix == "cpu":
        # The I2I-LR cpu presets' budget and data (its baseline at the same size, 1,000 train images, EMA 0.99):
        # a quarter of the size, width 16 capped at 64, ds_iter = steps as above. Steps fit the cpu batch (66 min
        # on 2 cores, 2026-12-03; 0.77 s/step at 32 px alone): 13-15 min each at 32 px, 12.5 min at 64 px.
        # F 128 wide (official 512): the 512-wide F alone is 9.6 MB, so the three cpu models (11-14 MB each) could not
        # ship under 25 MB; a 16-d z for 2-3 domains needs no 512-wide MLP at 32 px (F trains at f_lr, 100x slower).
        steps = 1000 if cfg.img_size <= 128 else 300
        return dataclasses.replace(cfg, **common, img_size=cfg.img_size // 4, max_conv_dim=64, base_dim=16,
                                   mapping_hidden=128,
                                   synth_n_train=1000, synth_n_val=200, steps=steps, ds_iter=steps, ema_beta=0.99,
                                   checkpoint_every=steps // 6, sample_every=steps // 6)
    steps = 6000 if cfg.img_size <= 128 else 3000
    return dataclasses.replace(cfg, **common, synth_n_train=5000, synth_n_val=500, steps=steps, ds_iter=steps,
                               checkpoint_every=1000, sample_every=1000)


PRESETS: dict[str, Stargan2Config] = expand_presets(_paper(), _synth)


def preset_names() -> list[str]:
    return list(PRESETS)


def get_preset(name: str) -> Stargan2Config:
    return lookup(PRESETS, name, "StarGAN v2")


def preset_for_profile(name: str, profile: str, steps: int = 0, batch_size: int = 0) -> Stargan2Config:
    """The preset a notebook runs for paper preset ``name`` under a run profile (``lrkit.train.presets``)."""
    return profile_preset(PRESETS, name, profile, steps, "StarGAN v2", batch_size)
