"""The I2I-LR training task (paper §3.2, §4.1) run by the shared loop in ``lrkit.train.loop``.

One iteration (``train_step``) on a batch of ``B`` HR images split in halves X (the first B/2) and Y:

1. LR targets ``x = LR(X)``, ``y = LR(Y)``: average pooling to ``lr_size`` and 8-bit quantization (an LR image
   is a saved image, so ``DS(Y) = y`` exactly and a real image's difference map is exactly zero, eq. 6).
2. Four generator passes: ``X->Y = G(X, y)``, ``Y->X = G(Y, x)`` and the cycles ``G(X->Y, x)``, ``G(Y->X, y)``.
3. Discriminator step: non-saturating loss with reals ``D(X, 0)``, ``D(Y, 0)`` against the detached translations
   with their eq. 5 difference maps (``adv_on_cycle``: the two cycle outputs too, as the public code), plus R1 on
   the reals (``gamma / 2 ||grad||^2``).
4. Generator step: non-saturating adversarial loss on the same translations through the updated D (the
   difference map is differentiable through the straight-through rounding) + ``lambda_cyc`` x cycle L1 (eq. 8,
   the sum of the two directions' mean absolute errors). Then the EMA of G.

That is the paper's recipe (the default). ``recipe="public_code"`` (``config.RECIPES``) follows the public training
script instead: the cycle outputs as fakes too, each pass its own adversarial term (G's and D's losses 4x the mean
form), R1 gamma 10 on the real loss's gradient per half, a patch D kept in eval mode for G's step, continuous LR
targets, and its network choices (bilinear upsampling, no SN in SPAdaIN, unbiased PONO).

The passes of step 2 are made once and serve both steps (D sees them detached), which is the "four G passes per
iteration" of the paper. Batches, flips and the EMA derive from the step (``lrkit.train.batches``), so resuming
from a checkpoint continues exactly.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

from lrkit.data.ops import downscale, make_lr
from lrkit.data.training_sets import ImageSet, open_images
from lrkit.losses.gan import d_nonsaturating, g_nonsaturating, l1, r1_penalty, r1_penalty_on_loss
from lrkit.methods.i2ilr.discriminator import I2ILRDiscriminator
from lrkit.methods.i2ilr.generator import I2ILRGenerator
from lrkit.methods.i2ilr.layers import lr_difference
from lrkit.train.batches import StepSampler, batch_for_step
from lrkit.train.ema import ema_update, make_ema
from lrkit.methods.i2ilr.config import I2ILRConfig
from lrkit.train.loop import LoopConfig, TrainResult, train
from lrkit.train.models import ensure_model
from lrkit.viz import translation_grid

__all__ = ["I2ILRTask", "LOOP_KEYS", "build_generator", "train_i2ilr", "ensure_trained", "sample_panel"]

# Config fields that only say how long / how often: a resumed run may change them (e.g. --steps to go further).
LOOP_KEYS = ("steps", "checkpoint_every", "sample_every")
N_SAMPLE = 4  # sources and targets in the periodic sample grid


def build_generator(cfg: I2ILRConfig) -> I2ILRGenerator:
    ch = cfg.choices
    return I2ILRGenerator(cfg.hr_size, cfg.lr_size, base_channels=cfg.g_base, max_channels=cfg.g_max,
                          upsample=ch.upsample, spadain_sn=ch.spadain_sn, pono_unbiased=ch.pono_unbiased,
                          project_lr=cfg.lr_projection)


def build_discriminator(cfg: I2ILRConfig) -> I2ILRDiscriminator:
    return I2ILRDiscriminator(cfg.hr_size, cfg.lr_size, base_channels=cfg.d_base_channels, max_channels=cfg.d_max,
                              patch=cfg.choices.d_patch)


def model_config(cfg: I2ILRConfig) -> dict:
    """What a checkpoint must match to be resumed or loaded (everything but the loop's cadence)."""
    return {k: v for k, v in cfg.to_dict().items() if k not in LOOP_KEYS}


def _set_requires_grad(module: torch.nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


class I2ILRTask:
    name = "i2ilr"

    def __init__(self, cfg: I2ILRConfig, train_set: ImageSet, sample_set: ImageSet | None = None,
                 device: str | torch.device = "cpu") -> None:
        self.cfg = cfg
        self.device = torch.device(device)
        self.train_set = train_set
        # Same initial weights for the same seed, whatever happened to the global RNG before.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self.G = build_generator(cfg)
            self.D = build_discriminator(cfg)
        self.G.to(self.device)
        self.D.to(self.device)
        self.G_ema = make_ema(self.G)
        betas = (cfg.beta1, cfg.beta2)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g, betas=betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr_d, betas=betas)
        self.sampler = StepSampler(len(train_set), cfg.batch_size, cfg.seed)
        sample_from = sample_set if sample_set is not None else train_set
        k = min(N_SAMPLE, len(sample_from) // 2)
        imgs = sample_from.pool.get(list(range(2 * k)))
        self._sample_sources, self._sample_targets = imgs[:k], imgs[k:2 * k]

    # -- TrainTask protocol ---------------------------------------------------------------------------------------

    @property
    def data_fingerprint(self) -> str:
        return self.train_set.fingerprint

    def config_dict(self) -> dict:
        return model_config(self.cfg)

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"G": self.G, "G_ema": self.G_ema, "D": self.D}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"G": self.opt_g, "D": self.opt_d}

    def _autocast(self):
        if self.cfg.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def train_step(self, step: int) -> dict[str, float]:
        cfg, ch = self.cfg, self.cfg.choices
        batch = batch_for_step(self.train_set.pool, self.sampler, step, cfg.hflip).to(self.device)
        half = cfg.batch_size // 2
        X, Y = batch[:half], batch[half:]
        x, y = (make_lr(h, cfg.lr_size, quantize_8bit=ch.quantize_lr) for h in (X, Y))

        self.G.train()
        self.D.train()
        with self._autocast():
            x2y, y2x = self.G(X, y), self.G(Y, x)
            x_cyc, y_cyc = self.G(x2y, x), self.G(y2x, y)
        fakes, targets = [x2y, y2x], [y, x]
        if ch.adv_on_cycle:
            fakes, targets = fakes + [x_cyc, y_cyc], targets + [x, y]
        # "sum" (public code): each G pass is its own adversarial term, paired with a real half in D's loss, so
        # both losses are len(fakes) times the mean form (equal-sized passes and halves).
        n_terms = len(fakes) if ch.adv_reduce == "sum" else 1
        fake = torch.cat(fakes).float()
        target = torch.cat(targets)

        # -- discriminator ---------------------------------------------------------------------------------------
        _set_requires_grad(self.D, True)
        self.opt_d.zero_grad(set_to_none=True)
        real = batch.detach().requires_grad_(True)
        fake_d = fake.detach()
        with self._autocast():
            real_logits = self.D(real, None)
            fake_logits = self.D(fake_d, lr_difference(fake_d, target, ch.lr_diff))
        loss_adv_d, logs_d = d_nonsaturating(real_logits.float(), fake_logits.float())
        if ch.r1_form == "loss":
            loss_r1, logs_r1 = r1_penalty_on_loss(real_logits, real, ch.r1_gamma, groups=2, repeats=ch.r1_repeats)
        else:
            loss_r1, logs_r1 = r1_penalty(real_logits.float(), real, ch.r1_gamma)
            loss_r1 = loss_r1 * ch.r1_repeats
        (n_terms * loss_adv_d + loss_r1).backward()
        self.opt_d.step()

        # -- generator -------------------------------------------------------------------------------------------
        _set_requires_grad(self.D, False)  # G's loss must not leave gradients in D
        if ch.d_eval_in_g_step:
            self.D.eval()  # public code: no spectral-norm power iteration in G's step
        self.opt_g.zero_grad(set_to_none=True)
        diff = lr_difference(fake, target, ch.lr_diff)
        with self._autocast():
            logits = self.D(fake, diff)
        loss_adv_g, logs_g = g_nonsaturating(logits.float())
        loss_adv_g = n_terms * loss_adv_g
        loss_cx, _ = l1(x_cyc.float(), X)
        loss_cy, _ = l1(y_cyc.float(), Y)
        loss_cyc = loss_cx + loss_cy
        (cfg.lambda_adv * loss_adv_g + cfg.lambda_cyc * loss_cyc).backward()
        self.opt_g.step()
        _set_requires_grad(self.D, True)
        ema_update(self.G_ema, self.G, cfg.ema_beta)

        with torch.no_grad():
            # Unrounded LR error of the two translations in 8-bit grey levels (255/2 per unit on [-1, 1]).
            ds = downscale(torch.cat([x2y, y2x]).float(), cfg.lr_size)
            lr_err = float((ds - torch.cat([y, x])).abs().mean() * 127.5)
        return {**logs_d, **logs_r1, **logs_g, "cyc": float(loss_cyc.detach()), "lr_err_grey": lr_err}

    @torch.no_grad()
    def sample_grid(self, step: int) -> torch.Tensor:
        return sample_panel(self.G_ema, self._sample_sources, self._sample_targets, self.cfg.lr_size)


@torch.no_grad()
def sample_panel(G: torch.nn.Module, sources: torch.Tensor, targets_hr: torch.Tensor, lr_size: int) -> torch.Tensor:
    """[3, H, W] grid: sources across the top, LR targets down the side, G's translations inside, the real HR
    target in the last column (the layout of the paper's Fig. 5)."""
    dev = next(G.parameters()).device
    was_training = G.training
    G.eval()
    src, tgt = sources.to(dev), targets_hr.to(dev)
    lr = make_lr(tgt, lr_size)
    S, T = src.shape[0], tgt.shape[0]
    out = G(src.repeat(T, 1, 1, 1), lr.repeat_interleave(S, 0)).float().clamp(-1, 1)
    G.train(was_training)
    return translation_grid(src.cpu(), lr.cpu(), out.view(T, S, *out.shape[1:]).cpu(), tgt.cpu())


def open_training_set(cfg: I2ILRConfig, data_root: str | None = None) -> ImageSet:
    return open_images(cfg.dataset, "train", cfg.hr_size, n=cfg.synth_n_train, seed=cfg.seed,
                       synth_variant=cfg.synth_variant, domains=cfg.domains, data_root=data_root)


def open_val_set(cfg: I2ILRConfig, data_root: str | None = None, n: int | None = None) -> ImageSet:
    """The val split (synthfaces: ``n`` or ``cfg.synth_n_val`` images; real: the whole val folder)."""
    return open_images(cfg.dataset, "val", cfg.hr_size, n=n or cfg.synth_n_val or 1, seed=cfg.seed,
                       synth_variant=cfg.synth_variant, domains=cfg.domains, data_root=data_root)


def train_i2ilr(cfg: I2ILRConfig, run_dir: str | Path, *, data_root: str | None = None, device: str = "cpu",
                resume: bool = False, progress: bool = True) -> TrainResult:
    """Train (or with ``resume`` continue) ``cfg`` in ``run_dir`` up to ``cfg.steps``."""
    train_set = open_training_set(cfg, data_root)
    val = open_val_set(cfg, data_root, n=2 * N_SAMPLE) if cfg.dataset == "synthfaces" else None
    task = I2ILRTask(cfg, train_set, val, device=device)
    loop = LoopConfig(steps=cfg.steps, checkpoint_every=cfg.checkpoint_every, sample_every=cfg.sample_every)
    return train(task, run_dir, loop, resume=resume, progress=progress)


def ensure_trained(cfg: I2ILRConfig, runs_root: str | Path, *, data_root=None, device: str = "cpu",
                   progress: bool = True, train: bool = True, use_shipped: bool = True) -> Path:
    """``cfg``'s checkpoint from the model cache (``lrkit.train.models``): shipped, reused, resumed or trained here,
    keyed on the config and the training data's fingerprint."""
    fp = open_training_set(cfg, data_root).fingerprint
    return ensure_model(cfg, runs_root, task=I2ILRTask.name, train_fn=train_i2ilr, data_fingerprint=fp,
                        data_root=data_root, device=device, progress=progress, train=train,
                        use_shipped=use_shipped)
