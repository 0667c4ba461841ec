"""PULSE (Menon et al. 2020) on any latent generator (``lrkit.nets.latent_generator``), via the shared engine.

Per candidate (one LR image x one duplicate), as PULSE's ``PULSE.forward`` / ``loss.py`` / ``SphericalOptimizer``:

* variables: Gaussian latents z [L, d] (L = the generator's latent count; [1, d] tiled with ``tile_latent``) and
  the generator's noise maps -- map i is zero when i is in ``zero_noise``, optimised when i < ``trainable_noise``,
  else fresh Gaussian and fixed;
* image: ``synthesize(map_prior(z), noise)``; its downscale to the LR side: PULSE's bicubic filter
  (``lrkit.data.bicubic``) or average pooling;
* loss: ``l2_weight * max(L2, eps) + geocross_weight * GEOCROSS`` with L2 the MSE of the downscaled image and the
  LR image, both mapped to [0, 1] as PULSE's, and GEOCROSS on the *mapped* latents w (:func:`geocross`);
* Adam(lr, default betas) with the lr multiplied by :func:`lrkit.methods.pulse.config.lr_multiplier` at each step;
  after every step each latent vector and each trainable noise map is rescaled to its own initial norm
  (:func:`sphere_project`);
* success: the lowest L2 over the steps is ``<= eps`` (PULSE's test, here per candidate); output: the last step's
  image (``output="last"``, PULSE's) or the lowest-L2 one (``"best"``).
"""

from __future__ import annotations

import torch

from lrkit.data.bicubic import pulse_bicubic_downscale
from lrkit.data.ops import downscale
from lrkit.methods.pulse.config import PulseConfig, lr_multiplier
from lrkit.nets.latent_generator import LatentGenerator, check_latent_generator
from lrkit.search.engine import SearchResult, latent_search

__all__ = ["PulseProblem", "geocross", "sphere_project", "pulse_downscale", "run_pulse"]


def geocross(w: torch.Tensor) -> torch.Tensor:
    """PULSE's GEOCROSS of latents w [B, L, d] -> [B]: for all L x L pairs (diagonal included) the angle
    ``theta = 2 atan2(|x - y|, |x + y|)`` (with 1e-9 under each root), value ``mean(theta^2 * d) / 8``; 0 when
    L == 1. PULSE writes 512 for d (its only latent width)."""
    b, n, d = w.shape
    if n == 1:
        return w.new_zeros(b)
    x, y = w.unsqueeze(1), w.unsqueeze(2)  # [B, 1, L, d], [B, L, 1, d] -> pairs [B, L, L]
    a = ((x - y).pow(2).sum(-1) + 1e-9).sqrt()
    c = ((x + y).pow(2).sum(-1) + 1e-9).sqrt()
    theta = 2 * torch.atan2(a, c)
    return (theta.pow(2) * d).mean((1, 2)) / 8.0


def sphere_project(tensors: dict[str, torch.Tensor], initial: dict[str, torch.Tensor]) -> None:
    """In place: every [n, a, ...] tensor's slices [i, j] rescaled to the norm of the same slice of ``initial``
    (PULSE's SphericalOptimizer: norms over the dims after the first two, 1e-9 under the root)."""
    for key, v in tensors.items():
        dims = tuple(range(2, v.dim()))
        radius = (initial[key].pow(2).sum(dims, keepdim=True) + 1e-9).sqrt()
        v.div_((v.pow(2).sum(dims, keepdim=True) + 1e-9).sqrt()).mul_(radius)


def pulse_downscale(hr: torch.Tensor, lr_size: int, mode: str) -> torch.Tensor:
    """The downscale PULSE's loss compares: ``"bicubic"`` (PULSE's filter) or ``"avgpool"``; [n,3,S,S] -> [n,3,s,s]."""
    side = hr.shape[-1]
    if side % lr_size:
        raise ValueError(f"the LR side {lr_size} must divide the generator's output side {side}")
    if mode == "bicubic":
        return pulse_bicubic_downscale(hr, side // lr_size)
    return downscale(hr, lr_size, mode="avgpool")


class PulseProblem:
    """PULSE's variables, image and loss for the engine (``lrkit.search.engine.SearchProblem``)."""

    def __init__(self, generator: LatentGenerator, cfg: PulseConfig) -> None:
        self.gen, self.cfg = generator, cfg
        self.n_latents, self.dim = int(generator.num_latents), int(generator.latent_dim)
        self.noise_shapes = [tuple(s) for s in generator.noise_shapes()]

    def _noise_role(self, i: int) -> str:
        if i in self.cfg.zero_noise:
            return "zero"
        return "trainable" if i < self.cfg.trainable_noise else "fixed"

    def init(self, generators: list[torch.Generator], device: torch.device) -> tuple[dict, dict]:
        rows = 1 if self.cfg.tile_latent else self.n_latents

        def draw(shape):  # one row per candidate, each from its own generator (independent of the others)
            return torch.stack([torch.randn(shape, generator=g) for g in generators]).to(device)

        trainable = {"z": draw((rows, self.dim))}
        fixed = {}
        for i, shape in enumerate(self.noise_shapes):
            role = self._noise_role(i)
            if role == "zero":
                fixed[f"noise{i}"] = torch.zeros(len(generators), *shape, device=device)
            else:
                (trainable if role == "trainable" else fixed)[f"noise{i}"] = draw(shape)
        return trainable, fixed

    def mapped(self, trainable: dict) -> torch.Tensor:
        z = trainable["z"]
        if z.shape[1] != self.n_latents:
            z = z.expand(-1, self.n_latents, -1)  # tile_latent: one vector for every layer
        return self.gen.map_prior(z)

    def render(self, trainable: dict, fixed: dict) -> torch.Tensor:
        noise = [trainable.get(f"noise{i}", fixed.get(f"noise{i}")) for i in range(len(self.noise_shapes))]
        return self.gen.synthesize(self.mapped(trainable), noise or None)

    def losses(self, trainable: dict, hr: torch.Tensor, targets: torch.Tensor, step: int):
        lr = pulse_downscale(hr, targets.shape[-1], self.cfg.downscale)
        # PULSE compares images in [0, 1]: (a+1)/2 - (b+1)/2 = (a - b) / 2.
        l2 = ((lr - targets) / 2).pow(2).mean((1, 2, 3))
        geo = geocross(self.mapped(trainable))
        loss = self.cfg.l2_weight * l2.clamp(min=self.cfg.eps) + self.cfg.geocross_weight * geo
        return loss, l2, {"loss": loss, "l2": l2, "geocross": geo}

    def after_step(self, trainable: dict, initial: dict) -> None:
        sphere_project(trainable, initial)


def run_pulse(generator: LatentGenerator, lr_images: torch.Tensor, cfg: PulseConfig = PulseConfig(), *,
              device: str | torch.device = "cpu", progress=None, on_step=None) -> SearchResult:
    """PULSE for each LR image [N, 3, s, s] (in [-1, 1]) x ``cfg.duplicates``: every candidate with its images,
    L2 errors (the [0, 1]-scale MSE compared with eps), status, steps and the run's seconds."""
    check_latent_generator(generator, device)
    if lr_images.dim() != 4 or lr_images.shape[1] != 3 or lr_images.shape[2] != lr_images.shape[3]:
        raise ValueError(f"LR images must be [N, 3, s, s], got {tuple(lr_images.shape)}")
    if generator.output_size % lr_images.shape[-1]:
        raise ValueError(f"LR images of side {lr_images.shape[-1]} do not divide the generator's "
                         f"{generator.output_size} px output; resize them to a divisor (e.g. 8, 16, 32)")
    problem = PulseProblem(generator, cfg)

    def make_optimizer(params):
        return torch.optim.Adam(params, lr=cfg.lr)

    with _frozen(generator):
        return latent_search(problem, lr_images, starts=cfg.duplicates, steps=cfg.steps,
                             make_optimizer=make_optimizer,
                             lr_multiplier=lambda j: lr_multiplier(cfg.schedule, cfg.steps, j),
                             eps=cfg.eps, seed=cfg.seed, chunk=cfg.chunk, stop_at_eps=cfg.stop_at_eps,
                             device=device, progress=progress, on_step=on_step)


class _frozen:
    """No gradients into the generator's own parameters while searching (only the latents and noise move)."""

    def __init__(self, generator) -> None:
        self.params = [p for p in (generator.parameters() if hasattr(generator, "parameters") else [])
                       if p.requires_grad]

    def __enter__(self):
        for p in self.params:
            p.requires_grad_(False)

    def __exit__(self, *exc):
        for p in self.params:
            p.requires_grad_(True)

