"""SR-NAM's search (§3.4, eq. 6): ``argmin_z || Deg(G(z)) - LR ||_1`` for K random starts per LR image.

The HR generator G and the degradation network Deg are pre-trained and frozen; only the latents move, with Adam
"default settings" (torch's: lr 1e-3, betas (0.9, 0.999)) for 250-500 iterations (the paper's range; 250 here by
default). Choices the paper does not state, made here:

* G is the EMA copy (``G_ema``: what ProGAN samples and evaluates with) at full depth, alpha 1;
* Deg is its EMA copy in eval mode (batch norm on running statistics) and receives a *fixed* noise vector per
  candidate, drawn once at the start from the candidate's own seed (``noise="fixed"``): the search then explains
  the LR image with one degradation, as the degradation GAN produced it in training; ``noise="zero"`` uses z = 0
  (the mean degradation) for every candidate;
* the L1 is the mean absolute error over the 16 x 16 x 3 LR values in [-1, 1], reported in grey levels
  (x 127.5) where tables show it; the search runs every step (no early stop) and keeps each candidate's last and
  best images (``SearchResult``);
* latents start from N(0, I) like ProGAN's training latents and are not projected anywhere (SR-NAM has no prior
  term).

Batched through the shared engine (``lrkit.search.engine``): images x K starts at once, in chunks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lrkit.nets.latent_generator import LatentGenerator, check_latent_generator
from lrkit.search.engine import SearchResult, latent_search

__all__ = ["SrnamSearchConfig", "SrnamProblem", "run_srnam", "NOISE_MODES", "GREY_LEVELS"]

NOISE_MODES = ("fixed", "zero")
GREY_LEVELS = 127.5  # one unit of [-1, 1] in 8-bit grey levels


@dataclass(frozen=True)
class SrnamSearchConfig:
    steps: int = 250  # the paper's 250-500 iterations (its lower end: the CPU's minutes)
    starts: int = 3  # K random initialisations per LR image (the paper's Fig. 6 shows 3)
    lr: float = 1e-3  # Adam default settings
    beta1: float = 0.9
    beta2: float = 0.999
    noise: str = "fixed"  # the degradation net's noise during the search (module docstring)
    eps: float = 0.0  # an L1 (in [-1, 1] units) counted as a match; 0: none is (the paper has no threshold)
    seed: int = 0
    chunk: int = 64  # candidates per forward/backward pass (memory bound)

    def __post_init__(self) -> None:
        for field in ("steps", "starts", "chunk"):
            v = getattr(self, field)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"SrnamSearchConfig.{field} must be an int >= 1, got {v!r}")
        if self.noise not in NOISE_MODES:
            raise ValueError(f"SrnamSearchConfig.noise must be one of {NOISE_MODES}, got {self.noise!r}")
        if not self.lr > 0 or self.eps < 0:
            raise ValueError("SrnamSearchConfig: lr must be > 0 and eps >= 0")


class SrnamProblem:
    """SR-NAM's variables, image and loss for the engine (``lrkit.search.engine.SearchProblem``)."""

    def __init__(self, generator: LatentGenerator, degradation: torch.nn.Module, cfg: SrnamSearchConfig) -> None:
        self.gen, self.deg, self.cfg = generator, degradation, cfg
        self.dim = int(generator.latent_dim)

    def init(self, generators: list[torch.Generator], device: torch.device) -> tuple[dict, dict]:
        z = torch.stack([torch.randn(self.gen.num_latents, self.dim, generator=g) for g in generators])
        noise = torch.stack([torch.randn(self.deg.noise_dim, generator=g) for g in generators])
        if self.cfg.noise == "zero":
            noise = torch.zeros_like(noise)
        return {"z": z.to(device)}, {"deg_noise": noise.to(device)}

    def render(self, trainable: dict, fixed: dict) -> torch.Tensor:
        self._noise = fixed["deg_noise"]
        return self.gen.synthesize(self.gen.map_prior(trainable["z"]))

    def losses(self, trainable: dict, hr: torch.Tensor, targets: torch.Tensor, step: int):
        lr = self.deg(hr, self._noise)
        l1 = (lr - targets).abs().mean((1, 2, 3))
        return l1, l1, {"l1": l1}

    def after_step(self, trainable: dict, initial: dict) -> None:
        return None


def run_srnam(generator: LatentGenerator, degradation: torch.nn.Module, lr_images: torch.Tensor,
              cfg: SrnamSearchConfig = SrnamSearchConfig(), *, device: str | torch.device = "cpu",
              progress=None, on_step=None) -> SearchResult:
    """SR-NAM's K candidates for each LR image [N, 3, 16, 16] in [-1, 1]: images [N, K, 3, 64, 64], their final and
    best L1 (in [-1, 1] units), steps and seconds. ``generator``: e.g. ``ProGANLatentGenerator(G_ema)``;
    ``degradation``: a trained ``DegradationGenerator`` (used in eval mode, frozen)."""
    check_latent_generator(generator, device)
    if lr_images.dim() != 4 or lr_images.shape[1:] != (3, 16, 16):
        raise ValueError(f"SR-NAM's degradation net makes 16 x 16 LR images; got inputs {tuple(lr_images.shape)} "
                         "(resize real LR faces to 16 px first)")
    if generator.output_size != 64:
        raise ValueError(f"the degradation net takes 64 px HR images but the generator makes "
                         f"{generator.output_size} px")
    degradation = degradation.to(device).eval().requires_grad_(False)
    problem = SrnamProblem(generator, degradation, cfg)
    return latent_search(
        problem, lr_images.float(), starts=cfg.starts, steps=cfg.steps,
        make_optimizer=lambda params: torch.optim.Adam(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2)),
        lr_multiplier=lambda j: 1.0, eps=cfg.eps, seed=cfg.seed, chunk=cfg.chunk, stop_at_eps=False,
        device=device, progress=progress, on_step=on_step)
