"""I2I-LR inference: load a checkpoint's EMA generator, translate sources to LR targets, and the Table-1 sampler.

Every evaluation uses ``G_ema`` (the paper's and StarGAN v2's practice). Inputs are checked against the sizes the
generator was trained at; a checkpoint trained at another size or with another configuration than the caller
expects is refused with a message naming both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from lrkit.cpu import configure_cpu
from lrkit.data.ops import make_lr
from lrkit.data.sampling import load_image_files as load_images  # noqa: F401 (the CLI's name)
from lrkit.train.checkpoint import load_checkpoint
from lrkit.train.shipped import is_shipped
from lrkit.methods.i2ilr.config import I2ILRConfig
from lrkit.methods.i2ilr.task import build_generator

__all__ = ["LoadedGenerator", "load_i2ilr", "translate", "prepare_targets", "prepare_sources", "load_images"]


@dataclass
class LoadedGenerator:
    G: torch.nn.Module  # eval mode, no grad
    config: I2ILRConfig
    step: int
    path: str
    which: str  # "G_ema" or "G"

    @property
    def label(self) -> str:
        where = "shipped with lrkit, " if is_shipped(self.path) else ""
        return f"{self.config.preset}@step{self.step} ({where}{Path(self.path).name}, {self.which})"


def load_i2ilr(checkpoint: str | Path, *, device: str = "cpu", expect: dict | None = None,
               which: str = "G_ema") -> LoadedGenerator:
    """The generator stored in an lrkit I2I-LR checkpoint (``which``: "G_ema", default, or "G").

    ``expect``: config fields the caller needs (e.g. ``{"hr_size": 128, "lr_size": 8}``); a checkpoint that
    differs is a clear error naming the field, the checkpoint's value and the expected one.
    """
    ckpt = load_checkpoint(checkpoint, task="i2ilr")
    cfg = I2ILRConfig.from_dict(ckpt["config"])
    for key, want in (expect or {}).items():
        have = getattr(cfg, key)
        if have != want:
            raise ValueError(
                f"checkpoint {checkpoint} was trained with {key}={have!r} (preset {cfg.preset!r}), but {want!r} is "
                f"needed here; use a checkpoint trained with {key}={want!r}, or adapt the caller to {have!r}")
    if which not in ("G_ema", "G"):
        raise ValueError(f"which must be 'G_ema' or 'G', got {which!r}")
    G = build_generator(cfg)
    state = ckpt["modules"].get(which)
    if state is None:
        raise ValueError(f"checkpoint {checkpoint} has no {which!r} weights (it holds {sorted(ckpt['modules'])})")
    G.load_state_dict(state)
    configure_cpu(device)  # denormal weights would slow CPU inference ~10x (lrkit.cpu)
    G.to(device).eval().requires_grad_(False)
    return LoadedGenerator(G, cfg, int(ckpt["step"]), str(checkpoint), which)


def _check_images(x: torch.Tensor, what: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 3 or not x.is_floating_point():
        raise ValueError(f"{what} must be a float tensor [N, 3, H, W] in [-1, 1], got "
                         f"{getattr(x, 'dtype', type(x))} {tuple(getattr(x, 'shape', ()))}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{what} contain NaN or Inf values")
    return x


def prepare_sources(images: torch.Tensor, hr_size: int) -> torch.Tensor:
    """Sources must be exactly ``hr_size`` square (the generator's training size)."""
    x = _check_images(images, "sources")
    if tuple(x.shape[-2:]) != (hr_size, hr_size):
        raise ValueError(f"source images are {x.shape[-1]}x{x.shape[-2]} but this generator was trained at "
                         f"{hr_size}x{hr_size}: resize/crop the sources to {hr_size}x{hr_size}")
    return x


def prepare_targets(images: torch.Tensor, lr_size: int) -> torch.Tensor:
    """LR targets: images of ``lr_size`` are used as they are; square HR images whose side is a multiple of
    ``lr_size`` are average-pooled and quantized to 8 bits first (``make_lr``, how training made its targets)."""
    x = _check_images(images, "targets")
    h, w = x.shape[-2:]
    if h != w:
        raise ValueError(f"target images must be square, got {w}x{h}")
    if h == lr_size:
        return x
    if h > lr_size and h % lr_size == 0:
        return make_lr(x, lr_size)
    raise ValueError(f"target images are {w}x{h}: give LR images of {lr_size}x{lr_size}, or square HR images whose "
                     f"side is a multiple of {lr_size} (they are average-pooled to {lr_size}x{lr_size})")


@torch.no_grad()
def translate(G: torch.nn.Module, sources: torch.Tensor, targets_lr: torch.Tensor, *,
              batch_size: int = 16) -> torch.Tensor:
    """``G(sources[i], targets_lr[i])`` for every i -> float32 [N, 3, H, W] on the CPU, clamped to [-1, 1].

    The generator must be an ``I2ILRGenerator`` (sizes are read from it); HR targets are downscaled first.
    """
    hr, lr = int(G.hr_size), int(G.lr_size)
    src = prepare_sources(sources, hr)
    tgt = prepare_targets(targets_lr, lr)
    if len(src) != len(tgt):
        raise ValueError(f"translate pairs sources and targets by index: got {len(src)} sources and {len(tgt)} "
                         "targets (repeat them to build all pairs)")
    dev = next(G.parameters()).device
    was_training = G.training
    G.eval()
    out = [G(src[i:i + batch_size].to(dev), tgt[i:i + batch_size].to(dev)).float().clamp(-1, 1).cpu()
           for i in range(0, len(src), batch_size)]
    G.train(was_training)
    return torch.cat(out)
