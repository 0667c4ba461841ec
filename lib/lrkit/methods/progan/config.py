"""ProGAN training configurations: one frozen dataclass, the step-derived growth schedule and the named presets.

Defaults are SR-NAM's §4.1 generator (REFERENCE_NOTES "SR-NAM"): depth 5 (4 -> 64 px), latent 512, epochs per
stage (10, 20, 20, 20, 50), batches (64, 64, 64, 32, 16), and the defaults of the PyTorch ProGAN package the paper
builds on: Adam lr 1e-3, betas (0, 0.99), eps 1e-8, WGAN-GP lambda 10 with drift 0.001, one critic step per
generator step, EMA 0.999, and half of every stage after the first spent fading in (``fade_in_fraction`` 0.5, the
package's default of 50 %). Widths follow Karras's ``nf(stage) = min(fmap_base / 2**(stage + 1), fmap_max)``;
fmap_base 8192 and fmap_max 512 give 512 channels up to 32 px and 256 at 64 px (the package's widths).

Data (``dataset``): ``"synthfaces"`` (the kit's procedural faces, variant ``faces``) or a real dataset that
``lrkit.data.training_sets.open_images`` knows (``celeba_hq``, ``afhq``), read from ``data_root`` and resized to
the output size. ``open_images`` has no generic "any folder" dataset; but a real dataset's folder may be given
directly (``data_root=/path/to/faces``, flat or with sub-folders), so any 64 px face folder trains under the
``celeba_hq`` name (its label then reads ``celeba_hq@listing:...``, the folder's own fingerprint). SR-NAM's HR set
(182,866 faces from CelebA, AFLW, LS3D-W and VGGFace2 at 64 px) is not downloadable here; the paper preset
``sr_nam64`` plans its schedule for that many images, and :func:`with_n_images` re-plans it for another folder.

Steps: ``steps`` is not free: stage ``k`` runs ``ceil(epochs[k] * n_images / batch_sizes[k])`` steps (the batches
run on through the epochs, see ``lrkit.train.batches``) and ``steps`` is their sum (:func:`total_steps`). A config
built with ``steps=0`` (the default) derives it; any other value must equal it. ``with_overrides`` re-derives
``steps`` (and ``n_images`` for synthfaces) when a schedule field changes and they are not given. A profile
"miniature" with a free step count (``preset_for_profile(..., steps=N)``) is refused: shorten ``epochs`` or
``synth_n_train`` instead.

Schedule (:func:`schedule_at`), a pure function of the 0-based step: stage 0 trains at alpha 1; stage k >= 1 fades
in over its first ``F = int(fade_in_fraction * T_k)`` steps with ``alpha = min(1, (j + 1) / F)`` at step ``j`` of
the stage (the package's per-stage ticker starting at 1, so alpha reaches 1 at the fade's last step), then 1.

Presets: ``sr_nam64`` (the paper's settings on a real face folder) and its synthfaces versions ``sr_nam64_smoke``
(CI, seconds), ``sr_nam64_cpu`` (2 CPU cores, ~1 h) and ``sr_nam64_quick`` (one GPU, the paper's widths), all
at 64 px with depth 5.

Configs are never mutated: derive one with ``with_overrides`` (checks the names) or :func:`with_n_images`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from lrkit.data.roots import REAL_DATASETS
from lrkit.train.presets import ConfigIO, expand_presets, lookup, profile_preset

__all__ = ["ProganConfig", "PRESETS", "DATASETS", "get_preset", "preset_names", "preset_for_profile",
           "stage_steps", "total_steps", "fade_steps", "schedule_at", "with_n_images", "output_size", "pool_size",
           "SR_NAM_HR_IMAGES"]

DATASETS = ("synthfaces", *REAL_DATASETS)
_SYNTH_VARIANTS = ("faces", "animals")
SR_NAM_HR_IMAGES = 182_866  # SR-NAM's HR training faces (CelebA, AFLW, LS3D-W, VGGFace2 subsets at 64 px)
MAX_DEPTH = 9  # 4 * 2**8 = 1024 px
_SYNTH_MIN_SIZE = 32  # synthfaces renders 32..256 px; smaller outputs are average-pooled from 32 px
# Fields whose change re-plans the schedule (with_overrides re-derives steps unless steps is given).
_SCHEDULE_FIELDS = ("dataset", "synth_n_train", "n_images", "depth", "epochs", "batch_sizes")


@dataclass(frozen=True)
class ProganConfig(ConfigIO):
    preset: str  # the preset's name (model-cache folder, tables)
    dataset: str  # "synthfaces" | "celeba_hq" | "afhq": what open_images reads (real: from data_root)
    synth_variant: str = "faces"  # synthfaces only: "faces" (the stand-in for SR-NAM's face set) | "animals"
    synth_n_train: int = 0  # synthfaces only: training images rendered (= n_images)
    n_images: int = 0  # images per epoch the schedule is planned for; synthfaces: 0 -> synth_n_train; real: count
    depth: int = 5  # stages: 4 -> 4 * 2**(depth - 1) px (SR-NAM: 5, 64 px)
    latent_dim: int = 512  # z width (SR-NAM / the package: 512)
    fmap_base: int = 8192  # stage width min(fmap_base / 2**(stage + 1), fmap_max): 512 ... 512, 256 at 64 px
    fmap_max: int = 512  # channel cap (the paper's 512)
    lr: float = 1e-3  # Adam learning rate of G and D (the package's default)
    beta1: float = 0.0  # Adam beta1 (ProGAN: no momentum)
    beta2: float = 0.99  # Adam beta2
    adam_eps: float = 1e-8  # Adam epsilon
    lambda_gp: float = 10.0  # WGAN-GP gradient-penalty weight
    drift: float = 0.001  # weight of E[D(real)^2], keeps the critic's scores near 0
    n_critic: int = 1  # critic updates per generator update (the package: 1)
    ema_beta: float = 0.999  # EMA of G's weights (G_ema: samples, evaluation, the search)
    epochs: tuple[int, ...] = (10, 20, 20, 20, 50)  # epochs per stage (SR-NAM)
    batch_sizes: tuple[int, ...] = (64, 64, 64, 32, 16)  # batch per stage (SR-NAM)
    fade_in_fraction: float = 0.5  # share of each stage k >= 1 spent fading in (the package's default, 50 %)
    hflip: bool = False  # random horizontal mirroring of the reals: not stated by SR-NAM, off
    seed: int = 0  # weights, batch order, latents, penalty mixes
    steps: int = 0  # total steps = sum of the stages' steps (0: derive; else must equal total_steps)
    checkpoint_every: int = 10_000  # steps between checkpoints (also at the end)
    sample_every: int = 5_000  # steps between sample grids (0: only at the end)

    def __post_init__(self) -> None:
        name = "ProganConfig"
        if self.dataset not in DATASETS:
            raise ValueError(f"{name}.dataset must be one of {DATASETS} (open_images knows no other; a face folder "
                             f"can be given as celeba_hq's data_root), got {self.dataset!r}")
        if self.synth_variant not in _SYNTH_VARIANTS:
            raise ValueError(f"{name}.synth_variant must be one of {_SYNTH_VARIANTS}, got {self.synth_variant!r}")
        ints = {"synth_n_train": 0, "n_images": 0, "depth": 1, "latent_dim": 1, "fmap_base": 1, "fmap_max": 1,
                "n_critic": 1, "seed": 0, "steps": 0, "checkpoint_every": 1, "sample_every": 0}
        for field, low in ints.items():
            v = getattr(self, field)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"{name}.{field} must be an int >= {low}, got {v!r}")
        if self.depth > MAX_DEPTH:
            raise ValueError(f"{name}.depth must be <= {MAX_DEPTH} (1024 px), got {self.depth}")
        for field in ("epochs", "batch_sizes"):
            v = getattr(self, field)
            if (not isinstance(v, tuple) or len(v) != self.depth
                    or any(isinstance(x, bool) or not isinstance(x, int) or x < 1 for x in v)):
                raise ValueError(f"{name}.{field} must be a tuple of {self.depth} ints >= 1 (one per stage, depth "
                                 f"{self.depth}), got {v!r}")
        for field in ("lr", "adam_eps"):
            if not float(getattr(self, field)) > 0:
                raise ValueError(f"{name}.{field} must be > 0, got {getattr(self, field)!r}")
        for field in ("lambda_gp", "drift"):
            if not float(getattr(self, field)) >= 0:
                raise ValueError(f"{name}.{field} must be >= 0, got {getattr(self, field)!r}")
        for field in ("beta1", "beta2", "ema_beta"):
            if not 0.0 <= float(getattr(self, field)) < 1.0:
                raise ValueError(f"{name}.{field} must be in [0, 1), got {getattr(self, field)!r}")
        if not 0.0 <= float(self.fade_in_fraction) <= 1.0:
            raise ValueError(f"{name}.fade_in_fraction must be in [0, 1], got {self.fade_in_fraction!r}")
        if self.dataset == "synthfaces":
            if self.synth_n_train < 1:
                raise ValueError(f"{name}.synth_n_train must be >= 1 for synthfaces, got {self.synth_n_train}")
            if self.n_images == 0:
                object.__setattr__(self, "n_images", self.synth_n_train)
            elif self.n_images != self.synth_n_train:
                raise ValueError(f"{name}.n_images ({self.n_images}) must equal synth_n_train "
                                 f"({self.synth_n_train}) for synthfaces (or be 0)")
        elif self.n_images < 1:
            raise ValueError(f"{name}.n_images must be the number of training images of the {self.dataset} folder "
                             f"(the schedule's epochs are counted in it), got {self.n_images}")
        if self.n_images < max(self.batch_sizes):
            raise ValueError(f"{name}: {self.n_images} training images are fewer than one batch "
                             f"({max(self.batch_sizes)}); add images or lower batch_sizes")
        derived = total_steps(self)
        if self.steps == 0:
            object.__setattr__(self, "steps", derived)
        elif self.steps != derived:
            raise ValueError(f"{name}.steps is {self.steps} but the schedule has {derived} steps (per stage "
                             f"{list(stage_steps(self))} = ceil(epochs * n_images / batch)): steps is derived; "
                             "change epochs, batch_sizes or the number of images instead (or pass steps=0)")

    def with_overrides(self, **kw):
        """Checked ``dataclasses.replace``; a changed schedule field re-derives ``steps`` (and a changed
        ``synth_n_train`` re-derives synthfaces' ``n_images``) unless they are given too."""
        if any(k in _SCHEDULE_FIELDS for k in kw):
            kw.setdefault("steps", 0)
            if ("synth_n_train" in kw or "dataset" in kw) and kw.get("dataset", self.dataset) == "synthfaces":
                kw.setdefault("n_images", 0)
        return super().with_overrides(**kw)


def output_size(cfg: ProganConfig) -> int:
    """The final stage's side: ``4 * 2**(depth - 1)``."""
    return 4 * 2 ** (cfg.depth - 1)


def pool_size(cfg: ProganConfig) -> int:
    """The side the training images are read at: the output size (synthfaces: at least 32, its smallest)."""
    size = output_size(cfg)
    return max(size, _SYNTH_MIN_SIZE) if cfg.dataset == "synthfaces" else size


def stage_steps(cfg: ProganConfig, n_images: int | None = None) -> tuple[int, ...]:
    """Steps of every stage, ``ceil(epochs[k] * n_images / batch_sizes[k])`` (``n_images``: default the config's)."""
    n = cfg.n_images if n_images is None else int(n_images)
    if n < 1:
        raise ValueError(f"stage_steps needs n_images >= 1, got {n}")
    return tuple(-(-e * n // b) for e, b in zip(cfg.epochs, cfg.batch_sizes))


def total_steps(cfg: ProganConfig, n_images: int | None = None) -> int:
    """The run's steps: the sum of :func:`stage_steps`."""
    return sum(stage_steps(cfg, n_images))


def fade_steps(cfg: ProganConfig, n_images: int, stage: int) -> int:
    """Fade-in steps of ``stage``: 0 for stage 0, else ``int(fade_in_fraction * stage_steps[stage])``."""
    return 0 if stage == 0 else int(float(cfg.fade_in_fraction) * stage_steps(cfg, n_images)[stage])


def schedule_at(cfg: ProganConfig, n_images: int, step: int) -> tuple[int, float, int, int]:
    """``(stage_index, alpha, batch_size, step_in_stage)`` of the 0-based ``step`` (module docstring)."""
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"schedule_at: step must be an int >= 0, got {step!r}")
    start = 0
    for k, n_steps in enumerate(stage_steps(cfg, n_images)):
        if step < start + n_steps:
            j = step - start
            fade = fade_steps(cfg, n_images, k)
            alpha = 1.0 if fade == 0 else min(1.0, (j + 1) / fade)
            return k, alpha, cfg.batch_sizes[k], j
        start += n_steps
    raise ValueError(f"schedule_at: step {step} is past the schedule's {start} steps")


def with_n_images(cfg: ProganConfig, n_images: int) -> ProganConfig:
    """``cfg`` re-planned for a training set of ``n_images`` (e.g. the folder actually given): the same epochs and
    batches, ``steps`` re-derived (synthfaces: renders that many images)."""
    if cfg.dataset == "synthfaces":
        return cfg.with_overrides(synth_n_train=int(n_images), n_images=int(n_images), steps=0)
    return cfg.with_overrides(n_images=int(n_images), steps=0)


def _paper() -> dict[str, ProganConfig]:
    return {"sr_nam64": ProganConfig("sr_nam64", dataset="celeba_hq", n_images=SR_NAM_HR_IMAGES)}


def _synth(cfg: ProganConfig, suffix: str) -> ProganConfig:
    """The synthfaces version of a paper preset: the same 64 px output and depth, smaller widths and data."""
    common = dict(preset=f"{cfg.preset}_{suffix}", dataset="synthfaces", synth_variant="faces", n_images=0,
                  steps=0)
    if suffix == "smoke":
        # CI: widths 32 (16 at 64 px), latent 32, 64 images, one epoch per stage -> 4 + 4 + 4 + 8 + 8 = 28 steps.
        # Measured 2026-12-03 on 2 CPU cores (torch 2.14 CPU, 1 thread): 0.02 / 0.04 / 0.09 / 0.18 / 0.44 s/step at
        # 4 / 8 / 16 / 32 / 64 px, ~6 s of steps in all.
        # EMA 0.9 (a ~10-step horizon): with 0.999 a 28-step G_ema would still be its initial weights.
        return dataclasses.replace(cfg, **common, synth_n_train=64, latent_dim=32, fmap_base=512, fmap_max=32,
                                   epochs=(1, 1, 1, 1, 1), batch_sizes=(16, 16, 16, 8, 8), ema_beta=0.9,
                                   checkpoint_every=14, sample_every=14)
    if suffix == "cpu":
        # 2 CPU cores, ~1 h: narrow nets (fmap_base 512, fmap_max 64 -> 64, 64, 64, 32, 16 channels), latent 128,
        # 2,000 images, batches (32, 32, 32, 32, 16) and most steps at 16-64 px, where the faces take shape:
        # epochs (10, 16, 32, 32, 20) -> 625 + 1000 + 2000 + 2000 + 2500 = 8125 steps. Measured 2026-12-04 on 2 CPU
        # cores (2 threads, torch 2.14 CPU): 0.03 / 0.08 / 0.23 / 0.46 / 0.44 s/step at 4 / 8 / 16 / 32 / 64 px
        # alone; the whole run took 56.5 min, several of them lost to other processes run beside it. Result: heads
        # recognisable as synthfaces (hair, face, clothes, background) with checkerboard detail, FD_efflite0 283 vs
        # 385 untrained.
        # The earlier cpu preset (widths 128 / 64 / 32, the paper's batches, 658 steps, 23 min) gave blurry blobs
        # with an FD to the data no better than an untrained G's (392.5 vs 380.8): too few steps, not too few
        # channels. EMA 0.99 (a 100-step horizon): with the paper's 0.999 G_ema still drew noise at step 1,750
        # while G drew faces (a short run's G moves too far within 1,000 steps for its average to be a generator).
        return dataclasses.replace(cfg, **common, synth_n_train=2000, latent_dim=128, fmap_base=512, fmap_max=64,
                                   epochs=(10, 16, 32, 32, 20), batch_sizes=(32, 32, 32, 32, 16), ema_beta=0.99,
                                   checkpoint_every=250, sample_every=250)
    # quick (one GPU): the paper's widths, latent and batches on 5,000 synthfaces, epochs (2, 4, 4, 4, 10):
    # 157 + 313 + 313 + 625 + 3125 = 4533 steps.
    return dataclasses.replace(cfg, **common, synth_n_train=5000, epochs=(2, 4, 4, 4, 10), checkpoint_every=1000,
                               sample_every=500)


PRESETS: dict[str, ProganConfig] = expand_presets(_paper(), _synth)


def preset_names() -> list[str]:
    return list(PRESETS)


def get_preset(name: str) -> ProganConfig:
    return lookup(PRESETS, name, "ProGAN")


def preset_for_profile(name: str, profile: str, steps: int = 0, batch_size: int = 0) -> ProganConfig:
    """The preset a notebook runs for paper preset ``name`` under a run profile (``lrkit.train.presets``).

    ProGAN's steps and batches are the growth schedule's (per stage), so the generic ``steps`` / ``batch_size``
    miniature overrides are refused with the fields to change instead."""
    if steps or batch_size:
        raise ValueError("ProGAN's steps and batches follow from its per-stage schedule (steps = sum of "
                         "ceil(epochs * n_images / batch)); override epochs, batch_sizes or synth_n_train instead "
                         f"of steps={steps} / batch_size={batch_size}")
    return profile_preset(PRESETS, name, profile, 0, "ProGAN", 0)
