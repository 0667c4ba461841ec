"""The StarGAN v2 training task (Choi et al. 2020; the official ``core/solver.py``) run by ``lrkit.train.loop``.

One iteration (``train_step``) on the inputs of :class:`Stargan2Sampler` -- sources ``x_real`` of domains
``y_org``, one target domain ``y_trg`` per sample (it may equal ``y_org``), two references ``x_ref``, ``x_ref2``
of ``y_trg``, two latent codes ``z_trg``, ``z_trg2`` -- with ``masks = FAN masks of x_real`` when ``w_hpf > 0``:

1. D step, latent-guided: ``BCE(D(x_real, y_org), 1) + BCE(D(x_fake, y_trg), 0) + lambda_reg R1(x_real)`` with
   ``x_fake = G(x_real, F(z_trg, y_trg))`` made without gradients; D's optimizer steps.
2. D step, reference-guided: the same with the style ``E(x_ref, y_trg)``.
3. G step, latent-guided: ``adv + lambda_sty sty - lambda_ds(step) ds + lambda_cyc cyc`` (adversarial, style
   reconstruction ``|E(x_fake) - s|``, diversity ``|G(x, s) - G(x, s2)|`` with the second output detached, cycle
   ``|G(x_fake, E(x_real, y_org)) - x_real|`` with FAN masks of ``x_fake``); G, F and E step.
4. G step, reference-guided: the same with ``s = E(x_ref)``, ``s2 = E(x_ref2)``; only G steps.
5. EMA of G, F and E (``ema_beta``).

Where this differs from the official code, and why:

* D is frozen (``requires_grad`` off) during the G steps, and F and E during step 4: the official code lets the G
  losses leave gradients in those nets and discards them at the next ``zero_grad`` without stepping, so the
  updates are the same and nothing is computed that is thrown away.
* ``lambda_ds(step)`` is a pure function of the step (:func:`lrkit.methods.stargan2.config.lambda_ds_at`); the
  official code decrements a mutable argument, which a resumed run restarts. The value logged is the one used.
* Data: the official loaders draw sources and references with a domain-balanced sampler (weight 1 / domain count,
  with replacement), pair each reference with a fixed random partner of its domain, and augment with a random
  resized crop (probability 0.5, scale 0.8-1, ratio 0.9-1.1) and a horizontal flip. Here every draw is a function
  of the step (``lrkit.train.batches``: a generator seeded with ``(seed, stream, step)``): per sample a domain
  uniformly (= the balanced sampler), then an image uniformly within it; the second reference is an independent
  draw from ``y_trg``. The crop is taken from the pool's ``img_size`` image and resized back with bilinear
  ``F.interpolate`` (align_corners False, the half-pixel convention of PIL's resize; a crop is never larger than
  the image, so this is an upsampling and antialiasing would change nothing). The official transform crops the
  file at its stored size before resizing to ``img_size``.
* Initialisation as the official Solver: the EMA copies are made from the default-initialised nets, then the
  training nets are re-initialised with :func:`he_init_` (all inside an RNG forked and seeded with ``cfg.seed``).

The FAN landmark network (``w_hpf > 0``) is fixed pretrained weights: it is not a module of the checkpoint and
not part of the config (the config must load as a ``Stargan2Config``, which inference relies on).
:func:`train_stargan2` records which weight file it used in ``run_dir/fan.json`` and refuses to resume a run
with different FAN weights (other masks would silently change the training).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lrkit.data import synthfaces as sf
from lrkit.data.training_sets import ImageSet, open_images
from lrkit.losses.gan import d_nonsaturating, g_nonsaturating, l1, r1_penalty
from lrkit.methods.stargan2.nets import MappingNetwork, Stargan2Discriminator, Stargan2Generator, StyleEncoder, he_init_
from lrkit.nets.fan import FAN, heatmap_masks
from lrkit.data.pools import ImagePool
from lrkit.train.batches import _generator
from lrkit.train.frozen import frozen
from lrkit.train.ema import ema_update, make_ema
from lrkit.train.loop import LoopConfig, TrainResult, train
from lrkit.train.models import ensure_model
from lrkit.methods.stargan2.config import OFFICIAL_DOMAINS, Stargan2Config, lambda_ds_at
from lrkit.viz import translation_grid

__all__ = ["Stargan2Task", "Stargan2Sampler", "Stargan2Inputs", "Stargan2Picks", "LOOP_KEYS", "build_nets",
           "domain_names_for", "model_config", "random_resized_crop_flip", "sample_panel", "load_fan",
           "open_training_set", "open_val_set", "train_stargan2"]

# Config fields that only say how long / how often: a resumed run may change them (e.g. --steps to go further).
LOOP_KEYS = ("steps", "checkpoint_every", "sample_every")
N_SAMPLE = 4  # sources and references in the periodic sample grid
# Distinct seed streams (with the run seed and the step) for the image picks, the latent codes, the augmentation.
_PICK_STREAM, _Z_STREAM, _AUG_STREAM = 0x5A2_0001, 0x5A2_0002, 0x5A2_0003
# The official RandomResizedCrop: area fraction, aspect ratio (w / h), tries before the whole-image fallback.
CROP_SCALE, CROP_RATIO, CROP_ATTEMPTS = (0.8, 1.0), (0.9, 1.1), 10


def domain_names_for(cfg: Stargan2Config) -> tuple[str, ...]:
    """The domain names of a config, in label order (what ``open_images`` returns for it).

    synthfaces keeps the given order (default: the variant's domains); real folders are sorted (default: the
    official datasets' folders, CelebA-HQ female/male, AFHQ cat/dog/wild)."""
    if cfg.dataset == "synthfaces":
        return tuple(cfg.domains) if cfg.domains is not None else tuple(sf.DOMAINS[cfg.synth_variant])
    return tuple(sorted(cfg.domains)) if cfg.domains is not None else OFFICIAL_DOMAINS[cfg.dataset]


def build_nets(cfg: Stargan2Config) -> dict[str, torch.nn.Module]:
    """G, F, E, D with PyTorch's default init (the trainer re-initialises the training nets with he_init_)."""
    n = len(domain_names_for(cfg))
    # base_dim is passed only when set, so the official-width configs need nothing beyond the official signature.
    width = {} if cfg.base_dim is None else {"base_dim": cfg.base_dim}
    return {
        "G": Stargan2Generator(cfg.img_size, cfg.style_dim, cfg.max_conv_dim, cfg.w_hpf, **width),
        "F": MappingNetwork(cfg.latent_dim, cfg.style_dim, n, hidden=cfg.mapping_hidden),
        "E": StyleEncoder(cfg.img_size, cfg.style_dim, n, cfg.max_conv_dim, **width),
        "D": Stargan2Discriminator(cfg.img_size, n, cfg.max_conv_dim, **width),
    }


def model_config(cfg: Stargan2Config) -> dict:
    """What a checkpoint must match to be resumed or loaded (everything but the loop's cadence); loads back with
    ``Stargan2Config.from_dict`` (the loop fields take their defaults)."""
    return {k: v for k, v in cfg.to_dict().items() if k not in LOOP_KEYS}


# -- data -------------------------------------------------------------------------------------------------------------


def random_resized_crop_flip(x: torch.Tensor, generator: torch.Generator, crop_prob: float,
                             hflip: bool) -> torch.Tensor:
    """The official training augmentation on a batch [N, 3, S, S] -> [N, 3, S, S], per image: with probability
    ``crop_prob`` a random resized crop (torchvision's ``RandomResizedCrop`` rule: up to 10 tries of area fraction
    U(0.8, 1) and log-uniform aspect ratio in [0.9, 1.1], the first that fits is taken at a uniform position, else
    the whole image), resized back to S (bilinear); then, if ``hflip``, a mirror with probability 0.5.

    Every random number is drawn up front in a fixed layout, so the draws of image k do not depend on
    ``crop_prob``, ``hflip`` or on what the other images drew."""
    n, _, h_img, w_img = x.shape
    g = dict(generator=generator, dtype=torch.float64)
    u_crop = torch.rand(n, **g)
    area = torch.rand(n, CROP_ATTEMPTS, **g) * (CROP_SCALE[1] - CROP_SCALE[0]) + CROP_SCALE[0]
    lo, hi = math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1])
    aspect = torch.exp(torch.rand(n, CROP_ATTEMPTS, **g) * (hi - lo) + lo)
    pos = torch.rand(n, CROP_ATTEMPTS, 2, **g)  # where the crop's top-left corner falls in its free range
    u_flip = torch.rand(n, **g)
    out = []
    for k in range(n):
        img = x[k:k + 1]
        if float(u_crop[k]) < crop_prob:
            for a in range(CROP_ATTEMPTS):
                target = h_img * w_img * float(area[k, a])
                w = int(round(math.sqrt(target * float(aspect[k, a]))))
                h = int(round(math.sqrt(target / float(aspect[k, a]))))
                if 0 < w <= w_img and 0 < h <= h_img:
                    i = min(int(float(pos[k, a, 0]) * (h_img - h + 1)), h_img - h)
                    j = min(int(float(pos[k, a, 1]) * (w_img - w + 1)), w_img - w)
                    if (h, w) != (h_img, w_img):
                        img = F.interpolate(img[:, :, i:i + h, j:j + w], size=(h_img, w_img), mode="bilinear",
                                            align_corners=False, antialias=False)
                    break
            # No try fitted: torchvision falls back to a centre crop of the aspect-clamped image, which for a
            # square image (ratio 1 within [0.9, 1.1]) is the whole image.
        if hflip and float(u_flip[k]) < 0.5:
            img = img.flip(-1)
        out.append(img)
    return torch.cat(out)


@dataclass(frozen=True)
class Stargan2Picks:
    """Which images and labels step ``step`` uses; every tensor is int64 [B]."""

    y_org: torch.Tensor  # source domains
    src: torch.Tensor  # source image indices (into the pool), each of domain y_org
    y_trg: torch.Tensor  # target domains (may equal y_org)
    ref: torch.Tensor  # first reference, of domain y_trg
    ref2: torch.Tensor  # second reference, of domain y_trg (independent draw; may be the same image)


@dataclass(frozen=True)
class Stargan2Inputs:
    """One iteration's inputs: images [B, 3, S, S] in [-1, 1], labels int64 [B], latent codes [B, latent_dim]."""

    x_real: torch.Tensor
    y_org: torch.Tensor
    x_ref: torch.Tensor
    x_ref2: torch.Tensor
    y_trg: torch.Tensor
    z_trg: torch.Tensor
    z_trg2: torch.Tensor

    def to(self, device: torch.device | str) -> "Stargan2Inputs":
        return Stargan2Inputs(*(getattr(self, f.name).to(device) for f in dataclasses.fields(self)))


@dataclass(frozen=True)
class Stargan2Sampler:
    """The inputs of every step as a pure function of the step (so a resumed run sees exactly the same ones).

    ``members[d]`` lists the pool indices of domain ``d``. Three seed streams per step: picks (domains, then
    images uniformly within a domain), latent codes, augmentation of the 3B images (sources, references,
    second references)."""

    members: tuple[tuple[int, ...], ...]
    batch_size: int
    latent_dim: int
    seed: int
    crop_prob: float = 0.5
    hflip: bool = True

    def __post_init__(self) -> None:
        empty = [d for d, m in enumerate(self.members) if not m]
        if len(self.members) < 2 or empty:
            raise ValueError(f"StarGAN v2 needs at least 2 domains with images; got {len(self.members)} domain(s)"
                             + (f", domains {empty} have no images" if empty else "")
                             + ": add images or select other domains")

    @classmethod
    def from_labels(cls, domain, num_domains: int, batch_size: int, latent_dim: int, seed: int,
                    crop_prob: float = 0.5, hflip: bool = True) -> "Stargan2Sampler":
        """From the pool's domain labels (int [N] in ``[0, num_domains)``, e.g. ``ImageSet.domain``)."""
        domain = np.asarray(domain, np.int64)
        members = tuple(tuple(int(i) for i in np.flatnonzero(domain == d)) for d in range(num_domains))
        return cls(members, batch_size, latent_dim, seed, crop_prob, hflip)

    def picks(self, step: int) -> Stargan2Picks:
        g = _generator(self.seed, _PICK_STREAM, step)
        n_dom, b = len(self.members), self.batch_size
        y_org = torch.randint(n_dom, (b,), generator=g)
        y_trg = torch.randint(n_dom, (b,), generator=g)
        u = torch.rand(3, b, generator=g, dtype=torch.float64)  # uniform position within the domain's images

        def pick(labels: torch.Tensor, row: int) -> torch.Tensor:
            out = []
            for k, d in enumerate(labels.tolist()):
                m = self.members[d]
                out.append(m[min(int(float(u[row, k]) * len(m)), len(m) - 1)])
            return torch.tensor(out, dtype=torch.int64)

        return Stargan2Picks(y_org, pick(y_org, 0), y_trg, pick(y_trg, 1), pick(y_trg, 2))

    def latents(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = _generator(self.seed, _Z_STREAM, step)
        z = torch.randn(2, self.batch_size, self.latent_dim, generator=g)
        return z[0], z[1]

    def inputs(self, pool: ImagePool, step: int) -> Stargan2Inputs:
        p = self.picks(step)
        b = self.batch_size
        images = pool.get(torch.cat([p.src, p.ref, p.ref2]).tolist())  # one read: [3B, 3, S, S]
        images = random_resized_crop_flip(images, _generator(self.seed, _AUG_STREAM, step), self.crop_prob,
                                          self.hflip)
        z_trg, z_trg2 = self.latents(step)
        return Stargan2Inputs(images[:b], p.y_org, images[b:2 * b], images[2 * b:], p.y_trg, z_trg, z_trg2)


# -- task --------------------------------------------------------------------------------------------------------------


def _spread_over_domains(domain: np.ndarray, n: int, start: int) -> list[int]:
    """``n`` pool indices cycling through the domains: the (start + k // D)-th image of domain k % D (wrapping
    within a domain that has fewer images); a deterministic, domain-covering choice for the sample grid."""
    members = [np.flatnonzero(domain == d) for d in range(int(domain.max()) + 1)]
    members = [m for m in members if len(m)]
    return [int(members[k % len(members)][(start + k // len(members)) % len(members[k % len(members)])])
            for k in range(n)]


class Stargan2Task:
    name = "stargan2"

    def __init__(self, cfg: Stargan2Config, train_set: ImageSet, sample_set: ImageSet | None = None,
                 device: str | torch.device = "cpu", fan: FAN | None = None) -> None:
        self.cfg = cfg
        self.device = torch.device(device)
        self.train_set = train_set
        names = domain_names_for(cfg)
        if train_set.domain is None or tuple(train_set.domain_names) != names:
            raise ValueError(f"the training set has domains {list(train_set.domain_names)} but the config expects "
                             f"{list(names)}; set the config's domains to the folders to train on (at least 2)")
        if cfg.w_hpf > 0 and fan is None:
            raise ValueError("w_hpf > 0 needs the FAN landmark network for the high-pass masks: pass "
                             "fan=load_fan(...)[0] (or train with w_hpf=0)")
        if cfg.w_hpf == 0 and fan is not None:
            raise ValueError("a FAN was given but w_hpf is 0 (no high-pass path uses its masks); drop it or set "
                             "w_hpf > 0")
        self.fan = fan.to(self.device).eval().requires_grad_(False) if fan is not None else None

        # Same initial weights for the same seed, whatever happened to the global RNG before. The EMA copies keep
        # PyTorch's default init; the training nets are then re-initialised (official Solver order).
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            nets = build_nets(cfg)
            emas = {k: make_ema(nets[k]) for k in ("G", "F", "E")}
            for net in nets.values():
                he_init_(net)
        self.G, self.F, self.E, self.D = (nets[k].to(self.device) for k in ("G", "F", "E", "D"))
        self.G_ema, self.F_ema, self.E_ema = (emas[k].to(self.device) for k in ("G", "F", "E"))

        def adam(module: torch.nn.Module, lr: float) -> torch.optim.Adam:
            return torch.optim.Adam(module.parameters(), lr=lr, betas=(cfg.beta1, cfg.beta2),
                                    weight_decay=cfg.weight_decay)

        self.opt = {"G": adam(self.G, cfg.lr), "F": adam(self.F, cfg.f_lr), "E": adam(self.E, cfg.lr),
                    "D": adam(self.D, cfg.lr)}
        self.sampler = Stargan2Sampler.from_labels(train_set.domain, len(names), cfg.batch_size, cfg.latent_dim,
                                                   cfg.seed, cfg.crop_prob, cfg.hflip)

        sample_from = sample_set if sample_set is not None else train_set
        idx = _spread_over_domains(np.asarray(sample_from.domain), 2 * N_SAMPLE, 0)
        imgs = sample_from.pool.get(idx)
        self._sample_sources, self._sample_refs = imgs[:N_SAMPLE], imgs[N_SAMPLE:]
        self._sample_ref_domains = torch.as_tensor(np.asarray(sample_from.domain)[idx[N_SAMPLE:]], dtype=torch.int64)

    # -- TrainTask protocol -------------------------------------------------------------------------------------------

    @property
    def data_fingerprint(self) -> str:
        return self.train_set.fingerprint

    def config_dict(self) -> dict:
        return model_config(self.cfg)

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"G": self.G, "F": self.F, "E": self.E, "D": self.D, "G_ema": self.G_ema, "F_ema": self.F_ema,
                "E_ema": self.E_ema}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return dict(self.opt)

    def _autocast(self):
        if self.cfg.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _masks(self, x: torch.Tensor):
        # FAN in fp32 outside autocast (the masks gate features; no gradient flows through them).
        return heatmap_masks(self.fan, x.detach().float()) if self.fan is not None else None

    def _style(self, inp: Stargan2Inputs, guide: str, second: bool = False) -> torch.Tensor:
        """[B, style_dim] target style: F(z) (latent-guided) or E(reference) (reference-guided)."""
        if guide == "latent":
            return self.F(inp.z_trg2 if second else inp.z_trg, inp.y_trg)
        return self.E(inp.x_ref2 if second else inp.x_ref, inp.y_trg)

    def _d_step(self, inp: Stargan2Inputs, guide: str, masks) -> dict[str, float]:
        with torch.no_grad(), self._autocast():
            x_fake = self.G(inp.x_real, self._style(inp, guide), masks).float()
        real = inp.x_real.detach().requires_grad_(True)
        with self._autocast():
            real_logits = self.D(real, inp.y_org)
            fake_logits = self.D(x_fake, inp.y_trg)
        loss_adv, logs = d_nonsaturating(real_logits.float(), fake_logits.float())  # = BCE(real, 1) + BCE(fake, 0)
        loss_r1, logs_r1 = r1_penalty(real_logits.float(), real, self.cfg.lambda_reg)
        self.opt["D"].zero_grad(set_to_none=True)
        (loss_adv + loss_r1).backward()
        self.opt["D"].step()
        return {f"d_{guide}_{k.removeprefix('d_')}": v for k, v in {**logs, **logs_r1}.items()}

    def _g_loss(self, inp: Stargan2Inputs, guide: str, masks, lambda_ds: float):
        cfg = self.cfg
        with self._autocast():
            s = self._style(inp, guide)
            x_fake = self.G(inp.x_real, s, masks)
            fake_logits = self.D(x_fake, inp.y_trg)
            s_pred = self.E(x_fake, inp.y_trg)
            with torch.no_grad():  # the official second output is detached: only x_fake is pushed away from it
                x_fake2 = self.G(inp.x_real, self._style(inp, guide, second=True), masks)
        loss_adv, _ = g_nonsaturating(fake_logits.float())
        loss_sty, _ = l1(s_pred.float(), s.float(), "sty")  # gradient reaches both E (s_pred) and F/E (s)
        loss_ds, _ = l1(x_fake.float(), x_fake2.float(), "ds")
        masks_fake = self._masks(x_fake)
        with self._autocast():
            s_org = self.E(inp.x_real, inp.y_org)
            x_rec = self.G(x_fake, s_org, masks_fake)
        loss_cyc, _ = l1(x_rec.float(), inp.x_real, "cyc")
        loss = loss_adv + cfg.lambda_sty * loss_sty - lambda_ds * loss_ds + cfg.lambda_cyc * loss_cyc
        logs = {"adv": loss_adv, "sty": loss_sty, "ds": loss_ds, "cyc": loss_cyc}
        return loss, {f"g_{guide}_{k}": float(v.detach()) for k, v in logs.items()}

    def train_step(self, step: int) -> dict[str, float]:
        cfg = self.cfg
        inp = self.sampler.inputs(self.train_set.pool, step).to(self.device)
        lam_ds = lambda_ds_at(step, cfg.lambda_ds, cfg.ds_iter)
        for m in (self.G, self.F, self.E, self.D):
            m.train()
        masks = self._masks(inp.x_real)  # one set per iteration, shared by the four steps (as official)

        logs = {**self._d_step(inp, "latent", masks), **self._d_step(inp, "ref", masks)}

        with frozen(self.D):  # the G losses must not leave gradients in D
            for o in self.opt.values():
                o.zero_grad(set_to_none=True)
            loss, logs_g = self._g_loss(inp, "latent", masks, lam_ds)
            loss.backward()
            for k in ("G", "F", "E"):
                self.opt[k].step()
            logs.update(logs_g)

            for o in self.opt.values():
                o.zero_grad(set_to_none=True)
            with frozen(self.F, self.E):  # only G is updated by the reference-guided step
                loss, logs_g = self._g_loss(inp, "ref", masks, lam_ds)
                loss.backward()
            self.opt["G"].step()
            logs.update(logs_g)

        ema_update(self.G_ema, self.G, cfg.ema_beta)
        ema_update(self.F_ema, self.F, cfg.ema_beta)
        ema_update(self.E_ema, self.E, cfg.ema_beta)
        logs["lambda_ds"] = lam_ds
        return logs

    @torch.no_grad()
    def sample_grid(self, step: int) -> torch.Tensor:
        return sample_panel(self.G_ema, self.E_ema, self._sample_sources, self._sample_refs,
                            self._sample_ref_domains, self.fan)


@torch.no_grad()
def sample_panel(G: torch.nn.Module, E: torch.nn.Module, sources: torch.Tensor, refs: torch.Tensor,
                 ref_domains: torch.Tensor, fan: FAN | None = None) -> torch.Tensor:
    """Reference-guided grid [3, H, W] in [-1, 1]: sources [S, 3, H, H] across the top, references [T, 3, H, H]
    (of domains ``ref_domains`` [T]) down the side, cell (t, s) = G(source s, E(reference t)) (the official
    ``translate_using_reference`` layout); masks from the sources when ``fan`` is given."""
    dev = next(G.parameters()).device
    was = G.training, E.training
    G.eval()
    E.eval()
    src, ref, y = sources.to(dev), refs.to(dev), ref_domains.to(dev)
    S, T = src.shape[0], ref.shape[0]
    styles = E(ref, y).repeat_interleave(S, 0)  # [T * S, style]: row t = reference t
    src_rep = src.repeat(T, 1, 1, 1)  # [T * S, 3, H, H]: column s = source s
    masks = None
    if fan is not None:  # masks depend on the sources only: run the FAN once per source
        masks = tuple(m.repeat(T, 1, 1, 1) for m in heatmap_masks(fan, src))
    out = G(src_rep, styles, masks).float().clamp(-1, 1)
    G.train(was[0])
    E.train(was[1])
    return translation_grid(src.cpu(), ref.cpu(), out.view(T, S, *out.shape[1:]).cpu())


# -- entry point ----------------------------------------------------------------------------------------------------


def open_training_set(cfg: Stargan2Config, data_root: str | None = None) -> ImageSet:
    return open_images(cfg.dataset, "train", cfg.img_size, n=cfg.synth_n_train, seed=cfg.seed,
                       synth_variant=cfg.synth_variant, domains=cfg.domains, data_root=data_root)


def open_val_set(cfg: Stargan2Config, data_root: str | None = None, n: int | None = None) -> ImageSet:
    """The val split (synthfaces: ``n`` or ``cfg.synth_n_val`` images; real: the whole val folder)."""
    return open_images(cfg.dataset, "val", cfg.img_size, n=n or cfg.synth_n_val or 2, seed=cfg.seed,
                       synth_variant=cfg.synth_variant, domains=cfg.domains, data_root=data_root)


def load_fan(wing_path: str | Path | None = None) -> tuple[FAN, dict]:
    """The FAN for the high-pass masks from ``wing_path`` (any file, verified or not) or the registered
    ``stargan2_wing`` weights, and a JSON-able record of which file it was (``path``, ``sha256``, ``label``)."""
    from lrkit import weights as W
    from lrkit.methods.stargan2.official_files import load_official_wing

    hint = ("w_hpf > 0: the high-pass masks need StarGAN v2's FAN landmark weights (wing.ckpt): run "
            "'lrkit weights fetch stargan2_wing' on an online machine, or pass --wing PATH to a wing.ckpt")
    if wing_path is not None and not Path(wing_path).is_file():
        raise FileNotFoundError(f"--wing {wing_path}: no such file; {hint}")
    try:
        resolved = W.resolve("stargan2_wing", wing_path)
    except W.WeightsUnavailable as err:
        raise W.WeightsUnavailable(f"{hint}. ({err})") from None
    record = {"path": str(resolved.path), "sha256": resolved.sha256, "label": resolved.label}
    return load_official_wing(resolved.path), record


def _check_or_record_fan(run_dir: Path, record: dict, resume: bool) -> None:
    """``run_dir/fan.json`` says which FAN weights made the masks; a resume with other weights is refused."""
    path = run_dir / "fan.json"
    if resume and path.is_file():
        old = json.loads(path.read_text())
        if old.get("sha256") != record["sha256"]:
            raise ValueError(f"{run_dir} was trained with FAN weights {old.get('label', old.get('sha256'))}, not "
                             f"{record['label']}: other masks would change the training. Pass --wing "
                             f"{old.get('path', 'PATH')} (the original file), or start a new run directory")
        return
    if not resume and (run_dir / "config.json").exists():
        return  # train() refuses this folder (it holds a run); leave everything in it untouched
    from lrkit.fsutil import atomic_write_json

    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, record)


def train_stargan2(cfg: Stargan2Config, run_dir: str | Path, *, data_root: str | None = None, device: str = "cpu",
                   resume: bool = False, progress: bool = True, wing_path: str | Path | None = None) -> TrainResult:
    """Train (or with ``resume`` continue) ``cfg`` in ``run_dir`` up to ``cfg.steps``.

    ``w_hpf > 0`` needs the FAN: ``wing_path`` or the registered ``stargan2_wing`` weights; when neither is there,
    one clear error (before anything is written)."""
    run_dir = Path(run_dir)
    fan, fan_record = load_fan(wing_path) if cfg.w_hpf > 0 else (None, None)
    train_set = open_training_set(cfg, data_root)
    if len(train_set.domain_names) < 2:
        raise ValueError(f"StarGAN v2 translates between domains, but the training set {train_set.label} has "
                         f"{list(train_set.domain_names)}; use a dataset with at least 2 domains (folders)")
    val = open_val_set(cfg, data_root, n=2 * N_SAMPLE) if cfg.dataset == "synthfaces" else None
    task = Stargan2Task(cfg, train_set, val, device=device, fan=fan)
    if fan_record is not None:
        _check_or_record_fan(run_dir, fan_record, resume)
    loop = LoopConfig(steps=cfg.steps, checkpoint_every=cfg.checkpoint_every, sample_every=cfg.sample_every)
    return train(task, run_dir, loop, resume=resume, progress=progress)


def ensure_trained(cfg: Stargan2Config, runs_root: str | Path, *, data_root=None, device: str = "cpu",
                   progress: bool = True, train: bool = True) -> Path:
    """``cfg``'s checkpoint from the model cache (``lrkit.train.models``), keyed on config and training data."""
    fp = open_training_set(cfg, data_root).fingerprint
    return ensure_model(cfg, runs_root, task=Stargan2Task.name, train_fn=train_stargan2, data_fingerprint=fp,
                        data_root=data_root, device=device, progress=progress, train=train)
