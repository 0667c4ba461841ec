"""A trained ProGAN as the latent generator of the latent search (SR-NAM's eq. 6, PULSE): :func:`load_progan`.

It reads an lrkit ``progan`` training checkpoint (``lrkit.methods.progan.task.train_progan``): the generator is
rebuilt from the checkpoint's config and loaded with ``G_ema`` (default; the EMA copy, what ProGAN samples and
evaluates) or ``G`` (the raw training weights), then frozen and wrapped in
:class:`lrkit.methods.progan.nets.ProGANLatentGenerator` (full depth, alpha 1, identity prior, no noise).
"""

from __future__ import annotations

from pathlib import Path

import torch

from lrkit.cpu import configure_cpu
from lrkit.methods.progan.nets import ProGANLatentGenerator

__all__ = ["load_progan"]


def load_progan(checkpoint_path: str | Path, device: str = "cpu", ema: bool = True) -> ProGANLatentGenerator:
    """The generator of a ``progan`` checkpoint as a frozen latent generator on ``device`` (eval mode, no grad).

    Extra attributes for reports: ``config`` (the :class:`ProganConfig`), ``step`` (completed training steps),
    ``path`` and ``weights`` (``"G_ema"`` or ``"G"``)."""
    from lrkit.methods.progan.config import ProganConfig
    from lrkit.methods.progan.task import TASK, build_nets
    from lrkit.train.checkpoint import load_checkpoint

    path = Path(checkpoint_path)
    ckpt = load_checkpoint(path, task=TASK)
    cfg = ProganConfig.from_dict(ckpt["config"])
    key = "G_ema" if ema else "G"
    state = ckpt["modules"].get(key)
    if state is None:
        raise ValueError(f"{path} has no {key!r} weights (it holds {sorted(ckpt['modules'])})")
    with torch.random.fork_rng(devices=[]):  # building draws initial weights; leave the caller's RNG alone
        G = build_nets(cfg)["G"]
    G.load_state_dict(state)
    configure_cpu(device)  # denormal weights would slow CPU inference ~10x (lrkit.cpu)
    gen = ProGANLatentGenerator(G.to(device).eval().requires_grad_(False)).eval()
    gen.config, gen.step, gen.path, gen.weights = cfg, int(ckpt["step"]), str(path), key
    return gen
