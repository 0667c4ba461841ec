"""The ProGAN training task (Karras et al. 2018, as SR-NAM §4.1 trains it) run by ``lrkit.train.loop``.

One iteration (``train_step(step)``), with ``(stage, alpha, B, j) = schedule_at(cfg, n_images, step)``:

1. Reals: the step's B pool images (``lrkit.train.batches.StepSampler`` of that stage: the batch order of stage
   k comes from its own seed, and its batches run on through the epochs; mirrored if ``hflip``), average-pooled
   from the pool's size to the stage's ``4 * 2**stage`` px. During a fade-in (``alpha < 1``) they are blended as
   ProGAN does, ``alpha * real + (1 - alpha) * upsample_nearest(avgpool_2(real))``, so the reals fade in
   their new detail exactly as the generator's output does.
2. ``n_critic`` critic updates (default 1): fakes ``G(z, stage, alpha)`` made without gradients, loss
   ``d_wgan_gp`` (WGAN-GP with drift, ``lrkit.methods.progan.losses``); every update uses the step's reals and
   its own latents and penalty mixes.
3. One generator update: ``-mean D(G(z, stage, alpha))`` with the latents of the last critic update (the PyTorch
   ProGAN package reuses the critic step's latents); D is frozen meanwhile (no gradients are left in it).
4. ``G_ema`` <- EMA of G (``ema_beta``).

Latents and penalty mixes come from generators seeded with ``(seed, stream, step)`` and the batch order from the
step: a resumed run repeats the uninterrupted one bit for bit, across growth boundaries too.

Optimizers and growing: one Adam per net over *all* its parameters, created at the start. A stage uses only the
layers it needs; the others get no gradient (``grad`` stays ``None``), and ``torch.optim.Adam`` skips those: their
moments and step counts start when their stage first trains them (so each layer's bias correction starts then),
and a layer left behind (the previous stage's toRGB / fromRGB after its fade-out) keeps its frozen state. The
optimizer state thus never depends on when a run was resumed. Karras's TensorFlow code instead resets the Adam
moments whenever new layers come in (its ``reset_opt_for_new_lod``, on by default); SR-NAM does not say, and the
PyTorch package it builds on creates its two optimizers once, as here.

Initialisation: the nets are built inside an RNG forked and seeded with ``cfg.seed`` (equalized layers: N(0, 1)
weights, zero biases); ``G_ema`` starts as a copy of G.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lrkit.data.ops import downscale
from lrkit.data.pools import ImagePool
from lrkit.data.training_sets import ImageSet, open_images
from lrkit.methods.progan.config import (
    ProganConfig, fade_steps, output_size, pool_size, schedule_at, stage_steps,
)
from lrkit.methods.progan.losses import d_wgan_gp, g_wgan, gradient_penalty
from lrkit.methods.progan.nets import ProganDiscriminator, ProganGenerator, stage_size
from lrkit.train.batches import StepSampler, _generator
from lrkit.train.frozen import frozen
from lrkit.train.ema import ema_update, make_ema
from lrkit.train.loop import LoopConfig, TrainResult, train
from lrkit.train.models import ensure_model

__all__ = ["ProganTask", "ProganSampler", "LOOP_KEYS", "TASK", "N_SAMPLE", "build_nets", "model_config",
           "real_images", "sample_panel", "open_training_set", "train_progan", "ensure_trained",
           "describe_schedule"]

TASK = "progan"
# Config fields that only say how often: a resumed run may change them. (steps is not among them: it follows
# from the schedule, which the checkpoint must match.)
LOOP_KEYS = ("checkpoint_every", "sample_every")
N_SAMPLE = 16  # fixed latents in the periodic sample grid (4 x 4)
# Distinct seed streams (with the run seed and the step or stage) for batch order, latents, penalty mixes, samples.
_ORDER_STREAM, _Z_STREAM, _MIX_STREAM, _SAMPLE_STREAM = 0x9A0_0001, 0x9A0_0002, 0x9A0_0003, 0x9A0_0004


def build_nets(cfg: ProganConfig) -> dict[str, torch.nn.Module]:
    """G and D of ``cfg`` (freshly initialised from the current global RNG)."""
    return {"G": ProganGenerator(cfg.depth, cfg.latent_dim, cfg.fmap_base, cfg.fmap_max),
            "D": ProganDiscriminator(cfg.depth, cfg.fmap_base, cfg.fmap_max)}


def model_config(cfg: ProganConfig) -> dict:
    """What a checkpoint must match to be resumed or loaded (everything but the loop's cadence); loads back with
    ``ProganConfig.from_dict`` (the cadence fields take their defaults)."""
    return {k: v for k, v in cfg.to_dict().items() if k not in LOOP_KEYS}


# -- data -------------------------------------------------------------------------------------------------------------


def real_images(x: torch.Tensor, stage: int, alpha: float) -> torch.Tensor:
    """Pool images [B, 3, P, P] -> the critic's reals at stage ``stage`` [B, 3, s, s] (``s = 4 * 2**stage``):
    average pooling to s, and while fading in (``alpha < 1``, stage >= 1) the blend
    ``alpha * x_s + (1 - alpha) * upsample_nearest(avgpool_2(x_s))``."""
    s = stage_size(stage)
    if x.shape[-1] % s:
        raise ValueError(f"stage {stage} ({s} px) does not divide the {x.shape[-1]} px training images")
    xs = downscale(x, s, mode="avgpool") if x.shape[-1] != s else x
    if stage == 0 or alpha >= 1.0:
        return xs
    coarse = F.interpolate(F.avg_pool2d(xs, 2), scale_factor=2, mode="nearest")
    return alpha * xs + (1.0 - alpha) * coarse


def _stage_seed(seed: int, stage: int) -> int:
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, _ORDER_STREAM, int(stage)]).generate_state(1)[0])


@dataclass(frozen=True)
class ProganSampler:
    """Every step's inputs as a pure function of the step: the reals' pool indices and flips (stage k's
    ``StepSampler`` at the step's position ``j`` within the stage), latents [n_critic, B, latent_dim] and
    penalty mixes [n_critic, B, 1, 1, 1]."""

    cfg: ProganConfig

    def schedule(self, step: int) -> tuple[int, float, int, int]:
        return schedule_at(self.cfg, self.cfg.n_images, step)

    def stage_sampler(self, stage: int) -> StepSampler:
        return StepSampler(self.cfg.n_images, self.cfg.batch_sizes[stage], _stage_seed(self.cfg.seed, stage))

    def indices(self, step: int) -> list[int]:
        stage, _, _, j = self.schedule(step)
        return self.stage_sampler(stage).indices(j)

    def reals(self, pool: ImagePool, step: int) -> torch.Tensor:
        stage, alpha, _, j = self.schedule(step)
        sampler = self.stage_sampler(stage)
        x = pool.get(sampler.indices(j))
        if self.cfg.hflip:
            x = torch.where(sampler.flips(j)[:, None, None, None], x.flip(-1), x)
        return real_images(x, stage, alpha)

    def latents(self, step: int) -> torch.Tensor:
        b = self.schedule(step)[2]
        return torch.randn(self.cfg.n_critic, b, self.cfg.latent_dim, generator=_generator(self.cfg.seed,
                                                                                           _Z_STREAM, step))

    def mixes(self, step: int) -> torch.Tensor:
        b = self.schedule(step)[2]
        return torch.rand(self.cfg.n_critic, b, 1, 1, 1, generator=_generator(self.cfg.seed, _MIX_STREAM, step))


# -- task --------------------------------------------------------------------------------------------------------------


class ProganTask:
    name = TASK

    def __init__(self, cfg: ProganConfig, train_set: ImageSet, device: str | torch.device = "cpu") -> None:
        self.cfg = cfg
        self.device = torch.device(device)
        self.train_set = train_set
        if len(train_set) != cfg.n_images:
            raise ValueError(f"the training set {train_set.label} has {len(train_set)} images but the config's "
                             f"schedule is planned for n_images={cfg.n_images} ({cfg.steps} steps); re-plan it "
                             f"with lrkit.methods.progan.config.with_n_images(cfg, {len(train_set)})")
        side = int(train_set.pool.get([0]).shape[-1])
        if side != pool_size(cfg):
            raise ValueError(f"the training images are {side} px but {cfg.preset} reads them at {pool_size(cfg)} px "
                             f"(output {output_size(cfg)} px): open them with open_training_set(cfg)")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            nets = build_nets(cfg)
        self.G, self.D = nets["G"].to(self.device), nets["D"].to(self.device)
        self.G_ema = make_ema(self.G)

        def adam(module: torch.nn.Module) -> torch.optim.Adam:
            return torch.optim.Adam(module.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.adam_eps)

        self.opt = {"G": adam(self.G), "D": adam(self.D)}
        self.sampler = ProganSampler(cfg)
        self._sample_z = torch.randn(N_SAMPLE, cfg.latent_dim, generator=_generator(cfg.seed, _SAMPLE_STREAM))

    # -- TrainTask protocol -------------------------------------------------------------------------------------------

    @property
    def data_fingerprint(self) -> str:
        return self.train_set.fingerprint

    def config_dict(self) -> dict:
        return model_config(self.cfg)

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"G": self.G, "D": self.D, "G_ema": self.G_ema}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return dict(self.opt)

    def train_step(self, step: int) -> dict[str, float]:
        cfg = self.cfg
        stage, alpha, batch, j = self.sampler.schedule(step)
        real = self.sampler.reals(self.train_set.pool, step).to(self.device)
        z = self.sampler.latents(step).to(self.device)
        mixes = self.sampler.mixes(step).to(self.device)
        self.G.train()
        self.D.train()

        def critic(x: torch.Tensor) -> torch.Tensor:
            return self.D(x, stage, alpha)

        logs: dict[str, float] = {}
        for c in range(cfg.n_critic):
            with torch.no_grad():
                fake = self.G(z[c], stage, alpha)
            penalty, logs_gp = gradient_penalty(critic, real, fake, mixes[c])
            loss_d, logs_d = d_wgan_gp(critic(real), critic(fake), penalty, cfg.lambda_gp, cfg.drift)
            self.opt["D"].zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt["D"].step()
            logs.update(logs_d)
            logs.update(logs_gp)

        with frozen(self.D):
            self.opt["G"].zero_grad(set_to_none=True)
            loss_g, logs_g = g_wgan(critic(self.G(z[-1], stage, alpha)))
            loss_g.backward()
            self.opt["G"].step()
        ema_update(self.G_ema, self.G, cfg.ema_beta)
        logs.update(logs_g)
        logs.update({"stage": float(stage), "alpha": float(alpha), "batch_size": float(batch)})
        return logs

    @torch.no_grad()
    def sample_grid(self, step: int) -> torch.Tensor:
        stage, alpha, _, _ = self.sampler.schedule(min(max(step, 1), self.cfg.steps) - 1)  # the last step's
        return sample_panel(self.G_ema, self._sample_z, stage, alpha, output_size(self.cfg))


@torch.no_grad()
def sample_panel(G: ProganGenerator, z: torch.Tensor, stage: int | None = None, alpha: float = 1.0,
                 size: int | None = None, nrow: int = 4, pad: int = 2) -> torch.Tensor:
    """``G(z, stage, alpha)`` for latents z [N, latent_dim], nearest-upsampled to ``size`` (default G's output
    size), as one grid [3, H, W] in [-1, 1] (clamped; ``nrow`` images a row, white padding of ``pad`` px)."""
    from torchvision.utils import make_grid

    dev = next(G.parameters()).device
    was = G.training
    G.eval()
    x = G(z.to(dev), stage, alpha).float().clamp(-1, 1).cpu()
    G.train(was)
    size = G.output_size if size is None else int(size)
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="nearest")
    return make_grid(x, nrow=nrow, padding=pad, pad_value=1.0)


# -- entry point ----------------------------------------------------------------------------------------------------


def open_training_set(cfg: ProganConfig, data_root=None) -> ImageSet:
    """The training images at :func:`lrkit.methods.progan.config.pool_size` (synthfaces: ``synth_n_train``
    renders of every domain of the variant; real: the folder's train split or all of a flat folder)."""
    return open_images(cfg.dataset, "train", pool_size(cfg), n=cfg.synth_n_train, seed=cfg.seed,
                       synth_variant=cfg.synth_variant, domains=None, data_root=data_root)


def train_progan(cfg: ProganConfig, run_dir: str | Path, *, data_root=None, device: str = "cpu",
                 resume: bool = False, progress: bool = True) -> TrainResult:
    """Train (or with ``resume`` continue) ``cfg`` in ``run_dir`` up to ``cfg.steps`` (all stages)."""
    task = ProganTask(cfg, open_training_set(cfg, data_root), device=device)
    loop = LoopConfig(steps=cfg.steps, checkpoint_every=cfg.checkpoint_every, sample_every=cfg.sample_every)
    return train(task, Path(run_dir), loop, resume=resume, progress=progress)


def ensure_trained(cfg: ProganConfig, runs_root: str | Path, *, data_root=None, device: str = "cpu",
                   progress: bool = True, train: bool = True) -> Path:
    """``cfg``'s checkpoint from the model cache (``lrkit.train.models``), keyed on config and training data."""
    fp = open_training_set(cfg, data_root).fingerprint
    return ensure_model(cfg, runs_root, task=TASK, train_fn=train_progan, data_fingerprint=fp,
                        data_root=data_root, device=device, progress=progress, train=train)


def progan_plan(preset: str, profile, steps: int = 0, data_root=None) -> tuple[ProganConfig, bool]:
    """(ProganConfig, may_train) a notebook evaluates for paper preset ``preset`` under ``profile`` when no
    checkpoint is given (``lrkit.profiles.model_profile``: the shipped cpu model under smoke); on a real folder
    re-planned for the images it holds. ``steps`` > 0 (a miniature): one epoch per stage (ProGAN's length is its
    epochs, not a step count), batches no larger than the handful of images."""
    from lrkit.methods.progan.config import preset_for_profile, with_n_images
    from lrkit.profiles import model_profile

    mprof, may_train = model_profile(profile, steps)
    cfg = preset_for_profile(preset, mprof)  # its steps derive from its schedule
    if cfg.dataset == "synthfaces":
        return cfg, may_train
    n = len(open_training_set(cfg, data_root))
    if steps:
        cfg = cfg.with_overrides(epochs=(1,) * cfg.depth, batch_sizes=tuple(min(b, n) for b in cfg.batch_sizes))
    return with_n_images(cfg, n), may_train


def describe_schedule(cfg: ProganConfig) -> list[dict]:
    """One row per stage (size, batch, epochs, steps, fade-in steps, first step): for notebooks and reports."""
    rows, start = [], 0
    for k, n in enumerate(stage_steps(cfg)):
        rows.append({"stage": k, "size": stage_size(k), "batch_size": cfg.batch_sizes[k], "epochs": cfg.epochs[k],
                     "steps": n, "fade_in_steps": fade_steps(cfg, cfg.n_images, k), "first_step": start})
        start += n
    return rows
