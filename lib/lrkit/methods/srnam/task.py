"""The SR-NAM degradation-GAN training task, run by ``lrkit.train.loop``.

Data (unpaired, as the paper trains it): HR inputs x (64 px) and a separate set of "real" LR images y (16 px).
With ``lr_data="synthlr"`` both come from one synthfaces render of ``synth_n_hr + synth_n_lr`` training images: the
first ``synth_n_hr`` are the HR inputs, the rest are degraded by the known process (``lrkit.data.synthetic_lr``,
parameters seeded by image index) into the "real" LR set, so no HR input's own degradation is ever a real sample.
With ``lr_data="folder"`` the LR set is every image of ``lr_root`` read at 16 px.

One iteration ``train_step(step)``:

1. ``n_critic`` critic updates (the paper's 5), each on its own batch of HR inputs and real LR images and its own
   noise: fakes ``G(x, z)`` without gradients; hinge or WGAN-GP loss (``lrkit.methods.srnam.losses``).
2. One generator update on the step's last HR batch and noise: ``alpha * pixel + beta * (-E D(G(x, z)))`` with D
   frozen; the pixel loss compares ``F(G(x, z))`` with x (L1, plus VGG-19 features when their weights are here).
3. ``G_ema`` <- EMA of G.

Batches, noise and penalty mixes are pure functions of ``(seed, stream, step, critic index)``: a resumed run
repeats the uninterrupted one bit for bit. When the VGG-19 weights are missing the perceptual term is off, the
run's ``extra["perceptual"]`` says why, and the loss log has no ``vgg`` column.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lrkit.data.ops import from_uint8, to_uint8
from lrkit.data.pools import ArrayPool
from lrkit.data.synthetic_lr import SYNTHLR_V1, degrade_images
from lrkit.data.training_sets import ImageSet, first_images, open_images
from lrkit.methods.srnam.config import DegradationConfig
from lrkit.methods.srnam.losses import d_hinge, d_wgan_gp, g_adversarial, gradient_penalty, pixel_loss
from lrkit.methods.srnam.nets import HR_SIZE, LR_SIZE, DegradationDiscriminator, DegradationGenerator
from lrkit.train.batches import _generator
from lrkit.train.frozen import frozen
from lrkit.train.ema import ema_update, make_ema
from lrkit.train.loop import LoopConfig, TrainResult, train
from lrkit.train.models import ensure_model

__all__ = ["DegradationTask", "TASK", "LOOP_KEYS", "open_degradation_data", "train_degradation",
           "ensure_degradation", "model_config", "N_SAMPLE"]

TASK = "srnam_degradation"
LOOP_KEYS = ("steps", "checkpoint_every", "sample_every")  # a run may be continued to more steps
N_SAMPLE = 8  # HR images in the periodic sample grid (each with 3 noise draws)
_HR_STREAM, _LR_STREAM, _Z_STREAM, _MIX_STREAM, _SAMPLE_STREAM = (0x5A_0001, 0x5A_0002, 0x5A_0003, 0x5A_0004,
                                                                  0x5A_0005)


def model_config(cfg: DegradationConfig) -> dict:
    return {k: v for k, v in cfg.to_dict().items() if k not in LOOP_KEYS}


def open_degradation_data(cfg: DegradationConfig, data_root=None, lr_root=None) -> tuple[ImageSet, ImageSet]:
    """``(hr_set, lr_set)``: the HR inputs at 64 px and the "real" LR images at 16 px (module docstring)."""
    import hashlib

    if cfg.hr_dataset == "synthfaces":
        n_extra = cfg.synth_n_lr if cfg.lr_data == "synthlr" else 0
        full = open_images("synthfaces", "train", HR_SIZE, n=cfg.synth_n_hr + n_extra, seed=cfg.seed)
        hr = first_images(full, cfg.synth_n_hr)
        lr_source = full.pool.images[cfg.synth_n_hr:]
    else:
        hr = open_images(cfg.hr_dataset, "train", HR_SIZE, data_root=data_root)
        lr_source = None
    if cfg.lr_data == "synthlr":
        if lr_source is None:  # a real HR folder with synthetic LR: degrade synthfaces renders of their own
            lr_source = open_images("synthfaces", "train", HR_SIZE, n=cfg.synth_n_lr, seed=cfg.seed + 1).pool.images
        idx = np.arange(len(lr_source)) + cfg.synth_n_hr
        lr_imgs, _ = degrade_images(from_uint8(lr_source), idx, SYNTHLR_V1, seed=cfg.seed)
        h = hashlib.sha256(f"{SYNTHLR_V1.fingerprint}:{cfg.seed}:".encode())
        h.update(np.ascontiguousarray(lr_source).tobytes())
        lr = ImageSet(ArrayPool(to_uint8(lr_imgs)), f"synthfaces-faces-{SYNTHLR_V1.name}", "train", h.hexdigest())
        return hr, lr
    if not lr_root:
        raise ValueError(f"{cfg.preset} trains on a folder of real LR faces: pass --lr-root FOLDER (e.g. 16 px "
                         "Widerface crops), or use a synthfaces preset (its LR set is the known synthlr process)")
    from lrkit.data.folders import ImageFolderDataset
    from lrkit.data.pools import DatasetPool
    from lrkit.data.training_sets import _listing_fingerprint

    ds = ImageFolderDataset(lr_root, split=None, hr_size=LR_SIZE, hflip=False)
    return hr, ImageSet(DatasetPool(ds), "lr_folder", "all", _listing_fingerprint(ds))


class DegradationTask:
    name = TASK

    def __init__(self, cfg: DegradationConfig, hr_set: ImageSet, lr_set: ImageSet, device="cpu",
                 vgg=None, perceptual_note: str = "") -> None:
        for s, side in ((hr_set, HR_SIZE), (lr_set, LR_SIZE)):
            got = int(s.pool.get([0]).shape[-1])
            if got != side:
                raise ValueError(f"{s.label}: expected {side} px images, got {got} px")
        for s in (hr_set, lr_set):
            if len(s) < cfg.batch_size:
                raise ValueError(f"{s.label} has {len(s)} images, fewer than one batch ({cfg.batch_size})")
        self.cfg, self.device = cfg, torch.device(device)
        self.hr_set, self.lr_set = hr_set, lr_set
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            G = DegradationGenerator(cfg.width, cfg.noise_dim)
            D = DegradationDiscriminator(cfg.width)
        self.G, self.D = G.to(self.device), D.to(self.device)
        self.G_ema = make_ema(self.G)
        self.opt = {"G": torch.optim.Adam(self.G.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2)),
                    "D": torch.optim.Adam(self.D.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))}
        self.vgg = vgg
        self.perceptual_note = perceptual_note or ("VGG-19 perceptual term on" if vgg is not None else
                                                   "VGG-19 perceptual term off")
        g = _generator(cfg.seed, _SAMPLE_STREAM)
        self._sample_idx = torch.randperm(len(hr_set), generator=g)[:N_SAMPLE].tolist()
        self._sample_z = torch.randn(3, N_SAMPLE, cfg.noise_dim, generator=g)

    # -- TrainTask protocol -----------------------------------------------------------------------------------------

    @property
    def data_fingerprint(self) -> str:
        return f"{self.hr_set.fingerprint}+{self.lr_set.fingerprint}"

    def config_dict(self) -> dict:
        return model_config(self.cfg)

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"G": self.G, "D": self.D, "G_ema": self.G_ema}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return dict(self.opt)

    def extra_state(self) -> dict:
        return {"perceptual": self.perceptual_note}

    def _batch(self, stream: int, n_images: int, step: int, c: int) -> list[int]:
        g = _generator(self.cfg.seed, stream, step * 64 + c)
        return torch.randint(0, n_images, (self.cfg.batch_size,), generator=g).tolist()

    def _noise(self, step: int, c: int) -> torch.Tensor:
        return torch.randn(self.cfg.batch_size, self.cfg.noise_dim,
                           generator=_generator(self.cfg.seed, _Z_STREAM, step * 64 + c))

    def train_step(self, step: int) -> dict[str, float]:
        cfg, dev = self.cfg, self.device
        self.G.train()
        self.D.train()
        logs: dict[str, float] = {}
        for c in range(cfg.n_critic):
            hr = self.hr_set.pool.get(self._batch(_HR_STREAM, len(self.hr_set), step, c)).to(dev)
            real = self.lr_set.pool.get(self._batch(_LR_STREAM, len(self.lr_set), step, c)).to(dev)
            with torch.no_grad():
                fake = self.G(hr, self._noise(step, c).to(dev))
            if cfg.gan_loss == "hinge":
                loss_d, logs_d = d_hinge(self.D(real), self.D(fake))
            else:
                mix = torch.rand(cfg.batch_size, 1, 1, 1, generator=_generator(cfg.seed, _MIX_STREAM, step * 64 + c))
                penalty, logs_gp = gradient_penalty(self.D, real, fake, mix.to(dev))
                loss_d, logs_d = d_wgan_gp(self.D(real), self.D(fake), penalty, cfg.lambda_gp)
                logs_d.update(logs_gp)
            self.opt["D"].zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt["D"].step()
            logs.update(logs_d)
        hr = self.hr_set.pool.get(self._batch(_HR_STREAM, len(self.hr_set), step, cfg.n_critic)).to(dev)
        with frozen(self.D):
            fake = self.G(hr, self._noise(step, cfg.n_critic).to(dev))
            loss_pix, logs_pix = pixel_loss(fake, hr, gamma=cfg.gamma, delta=cfg.delta, upscaler=cfg.upscaler,
                                            vgg=self.vgg)
            loss_adv, logs_adv = g_adversarial(self.D(fake))
            loss_g = cfg.alpha * loss_pix + cfg.beta * loss_adv
            self.opt["G"].zero_grad(set_to_none=True)
            loss_g.backward()
            self.opt["G"].step()
        ema_update(self.G_ema, self.G, cfg.ema_beta)
        logs.update(logs_pix)
        logs.update(logs_adv)
        logs["g_loss"] = float(loss_g.detach())
        return logs

    @torch.no_grad()
    def sample_grid(self, step: int) -> torch.Tensor:
        """Rows: the HR inputs (nearest-downscaled to 16 px for the grid), then G_ema's LR for 3 noise draws."""
        from torchvision.utils import make_grid

        hr = self.hr_set.pool.get(self._sample_idx).to(self.device)
        rows = [torch.nn.functional.avg_pool2d(hr, HR_SIZE // LR_SIZE)]
        for z in self._sample_z:
            rows.append(self.G_ema(hr, z.to(self.device)).clamp(-1, 1))
        return make_grid(torch.cat(rows).cpu(), nrow=N_SAMPLE, padding=1, pad_value=1.0)


def _load_vgg(cfg: DegradationConfig, device: str):
    """(VGG-19 features or None, a note for every output): the perceptual term is off, and says so, without the
    ImageNet weights."""
    if cfg.delta == 0:
        return None, "VGG-19 perceptual term off (delta 0)"
    from lrkit import weights as W
    from lrkit.nets.vgg import load_vgg19_features

    try:
        vgg, rec = load_vgg19_features(cfg.vgg_layers, device=device)
        return vgg, f"VGG-19 perceptual term on ({rec.path.name}, sha256 {rec.sha256[:12]})"
    except W.WeightsUnavailable as exc:
        return None, f"VGG-19 perceptual term OFF: its ImageNet weights are unavailable ({exc})"


def train_degradation(cfg: DegradationConfig, run_dir: str | Path, *, data_root=None, lr_root=None,
                      device: str = "cpu", resume: bool = False, progress: bool = True,
                      keep_checkpoints: int = 0) -> TrainResult:
    """Train (or resume) ``cfg`` in ``run_dir``; ``keep_checkpoints`` > 0 also keeps that many periodic snapshots."""
    hr, lr = open_degradation_data(cfg, data_root, lr_root)
    vgg, note = _load_vgg(cfg, device)
    print(f"{cfg.preset}: {note}")  # always: a loss term left off is never silent
    task = DegradationTask(cfg, hr, lr, device=device, vgg=vgg, perceptual_note=note)
    loop = LoopConfig(steps=cfg.steps, checkpoint_every=cfg.checkpoint_every, sample_every=cfg.sample_every,
                      keep_checkpoints=keep_checkpoints)
    return train(task, Path(run_dir), loop, resume=resume, progress=progress)


def ensure_degradation(cfg: DegradationConfig, runs_root: str | Path, *, data_root=None, lr_root=None,
                       device: str = "cpu", progress: bool = True, train: bool = True) -> Path:
    """``cfg``'s checkpoint from the model cache, keyed on config and both training sets."""
    hr, lr = open_degradation_data(cfg, data_root, lr_root)

    def train_fn(c, run_dir, *, data_root=None, device="cpu", resume=False, progress=True):
        return train_degradation(c, run_dir, data_root=data_root, lr_root=lr_root, device=device, resume=resume,
                                 progress=progress)

    return ensure_model(cfg, runs_root, task=TASK, train_fn=train_fn,
                        data_fingerprint=f"{hr.fingerprint}+{lr.fingerprint}", data_root=data_root, device=device,
                        progress=progress, train=train)
