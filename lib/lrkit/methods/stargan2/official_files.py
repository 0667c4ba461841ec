"""Read (and write) the official StarGAN v2 checkpoint files: ``<step>_nets_ema.ckpt`` and ``wing.ckpt``.

File layouts (facts from github clovaai/stargan-v2, our own code):

* ``*_nets_ema.ckpt`` is ``torch.save`` of a plain dict ``{name: state_dict}`` (``core/checkpoint.py``,
  ``CheckpointIO.save``) over the modules registered for the EMA nets in ``core/solver.py``: ``generator``,
  ``mapping_network``, ``style_encoder`` and, when ``w_hpf > 0`` (the CelebA-HQ model), also ``fan`` -- the FAN is
  put into ``nets_ema`` by ``build_model`` (``core/model.py``). The state_dicts are of the bare modules (since the
  DataParallel fix the code saves ``module.module.state_dict()``), so keys carry no ``module.`` prefix. The
  released CelebA-HQ generator has no ``hpf.filter`` key (see :mod:`lrkit.methods.stargan2.nets`).
* ``wing.ckpt`` is a dict whose ``'state_dict'`` entry holds the FAN weights (``core/wing.py``,
  ``FAN.load_pretrained_weights``, which keeps only the keys the model has).

Both are dicts of tensors (and nested dicts), so ``torch.load(weights_only=True)`` reads them: no arbitrary
unpickling. A file that needs more than that is refused with an error saying so, rather than unpickled.

Loading is all-or-nothing: every key/shape problem of all three networks is collected and reported in one
ValueError with the likely cause (wrong ``img_size`` / ``w_hpf`` / ``style_dim`` / ``latent_dim``), because
``load_state_dict``'s RuntimeError for the first network alone hides which flag is wrong.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn as nn

from lrkit.fsutil import atomic_open
from lrkit.methods.stargan2.nets import MappingNetwork, Stargan2Generator, StyleEncoder
from lrkit.nets.fan import FAN, load_wing as load_official_wing  # noqa: F401  (the official file reader)
from lrkit.statedict import as_state_dict, load_tensor_file, state_diff

NETS_EMA_KEYS = ("generator", "mapping_network", "style_encoder")
# Present in the CelebA-HQ file (the FAN rides along in nets_ema when w_hpf > 0); the same weights as wing.ckpt.
OPTIONAL_KEYS = ("fan",)
HPF_FILTER_KEY = "hpf.filter"
# The released models: (file, img_size, w_hpf, num_domains). Style 64, latent 16, max_conv_dim 512 for both.
OFFICIAL_SETTINGS = "CelebA-HQ: img_size=256, w_hpf=1 (2 domains); AFHQ: img_size=256, w_hpf=0 (3 domains)"


def _torch_load_tensors(path: str | os.PathLike, what: str) -> object:
    return load_tensor_file(path, what)


def _as_state_dict(obj: object, where: str) -> dict[str, torch.Tensor]:
    return as_state_dict(obj, where)


def _compare(module: nn.Module, sd: Mapping[str, torch.Tensor], name: str,
             optional: tuple[str, ...] = ()) -> list[str]:
    """Problems loading ``sd`` into ``module`` strictly: missing keys, unexpected keys, shape mismatches."""
    diff = state_diff(module.state_dict(), sd, ignore_unexpected=optional)
    missing, unexpected = diff.missing, diff.unexpected
    shapes = [f"{k} {have} in file vs {want} here" for k, have, want in diff.shapes]
    problems = []
    if missing:
        problems.append(f"{name}: missing keys {missing}")
    if unexpected:
        problems.append(f"{name}: unexpected keys {unexpected}")
    if shapes:
        problems.append(f"{name}: shape mismatches {shapes}")
    return problems


def _count_blocks(sd: Mapping[str, torch.Tensor], prefix: str) -> int:
    pattern = re.compile(rf"^{re.escape(prefix)}\.(\d+)\.")
    indices = {int(m.group(1)) for k in sd if (m := pattern.match(k))}
    return max(indices) + 1 if indices else 0


def _likely_cause(gen_sd: Mapping[str, torch.Tensor], img_size: int, w_hpf: float) -> str:
    """A one-line guess at the wrong flag, from the file's generator depth and high-pass key."""
    n_file = _count_blocks(gen_sd, "encode")
    n_here = int(math.log2(img_size)) - 4 + (1 if w_hpf > 0 else 0) + 2
    hints = []
    if n_file and n_file != n_here:
        alt = "w_hpf=0" if w_hpf > 0 else "w_hpf=1"
        hints.append(f"the file's generator has {n_file} encoder blocks, img_size={img_size}/w_hpf={w_hpf} builds "
                     f"{n_here}: try {alt} or another img_size")
    if HPF_FILTER_KEY in gen_sd and not w_hpf > 0:
        hints.append("the file has a high-pass filter (hpf.filter): it was trained with w_hpf > 0")
    hints.append(f"the released files need {OFFICIAL_SETTINGS}; style_dim=64, latent_dim=16, max_conv_dim=512")
    return "; ".join(hints)


def load_official_nets_ema(path: str | os.PathLike, *, img_size: int = 256, w_hpf: float = 1,
                           num_domains: int | None = None, style_dim: int = 64, latent_dim: int = 16,
                           max_conv_dim: int | None = 512, with_fan: bool = False) -> dict[str, nn.Module]:
    """Read an official ``*_nets_ema.ckpt`` into fresh networks (eval mode, on CPU).

    Returns ``{"generator": Stargan2Generator, "mapping_network": MappingNetwork, "style_encoder": StyleEncoder}``,
    plus ``"fan"`` (a :class:`FAN`) when ``with_fan`` and the file carries one: the official sampler and evaluator
    use the FAN stored in ``nets_ema`` (it overrides the one built from ``wing.ckpt`` when the file is loaded).
    ``num_domains=None`` infers it from the mapping network's per-domain heads (``unshared.<i>``). ``max_conv_dim``
    is 512 in every official model; smaller values are for tests; ``None`` reads it from the file (the widest
    encoder block of the generator). Any missing / unexpected key or shape mismatch in
    any of the three raises one ValueError listing them all and the likely cause.
    """
    obj = _torch_load_tensors(path, "StarGAN v2 nets_ema checkpoint")
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path}: expected a dict with keys {list(NETS_EMA_KEYS)}, got {type(obj).__name__}")
    if "discriminator" in obj:
        raise ValueError(f"{path} holds a discriminator: it is a training '*_nets.ckpt' (raw weights), not the "
                         f"EMA '*_nets_ema.ckpt' the released models and evaluation use")
    if "state_dict" in obj:
        raise ValueError(f"{path} has a 'state_dict' entry: it looks like wing.ckpt; use load_official_wing()")
    missing_top = [k for k in NETS_EMA_KEYS if k not in obj]
    extra_top = [k for k in obj if k not in NETS_EMA_KEYS + OPTIONAL_KEYS]
    if missing_top or extra_top:
        raise ValueError(f"{path} is not a StarGAN v2 nets_ema checkpoint: top-level keys {sorted(map(str, obj))}, "
                         f"missing {missing_top}, unexpected {extra_top} (expected {list(NETS_EMA_KEYS)} and "
                         f"optionally {list(OPTIONAL_KEYS)})")
    sds = {name: _as_state_dict(obj[name], f"{path}[{name!r}]") for name in NETS_EMA_KEYS}

    if num_domains is None:
        num_domains = _count_blocks(sds["mapping_network"], "unshared")
        if num_domains == 0:
            raise ValueError(f"{path}: cannot infer num_domains (no 'unshared.<i>.' keys in mapping_network); pass "
                             f"num_domains explicitly")
    if max_conv_dim is None:
        # The encoder blocks' widths double up to the cap (from_rgb's width 2**14 / S is not capped).
        widths = [v.shape[0] for k, v in sds["generator"].items() if re.match(r"^encode\.\d+\.conv2\.weight$", k)]
        if not widths:
            raise ValueError(f"{path}: the generator has no convolution weights; not a StarGAN v2 nets_ema file")
        max_conv_dim = int(max(widths))
    modules: dict[str, nn.Module] = {
        "generator": Stargan2Generator(img_size, style_dim, max_conv_dim, w_hpf),
        "mapping_network": MappingNetwork(latent_dim, style_dim, num_domains),
        "style_encoder": StyleEncoder(img_size, style_dim, num_domains, max_conv_dim),
    }
    gen_sd = sds["generator"]
    problems: list[str] = []
    if HPF_FILTER_KEY in gen_sd and w_hpf > 0:
        # Written by the newer official code (a persistent buffer there); must be this w_hpf's kernel.
        expected = modules["generator"].hpf.filter
        if gen_sd[HPF_FILTER_KEY].shape != expected.shape or not torch.allclose(gen_sd[HPF_FILTER_KEY], expected):
            problems.append(f"generator: {HPF_FILTER_KEY} is the kernel of another w_hpf than {w_hpf}")
    for name, module in modules.items():
        optional = (HPF_FILTER_KEY,) if name == "generator" and w_hpf > 0 else ()
        problems += _compare(module, sds[name], name, optional)
    if problems:
        raise ValueError(f"{path} does not match img_size={img_size}, w_hpf={w_hpf}, num_domains={num_domains}, "
                         f"style_dim={style_dim}, latent_dim={latent_dim}, max_conv_dim={max_conv_dim}:\n  "
                         + "\n  ".join(problems) + f"\nLikely cause: {_likely_cause(gen_sd, img_size, w_hpf)}")
    if with_fan and "fan" in obj:
        fan_sd = _as_state_dict(obj["fan"], f"{path}['fan']")
        fan = FAN()
        # BatchNorm ``num_batches_tracked`` counters may be absent (they do not affect eval-mode output).
        fan_problems = [p for p in _compare(fan, fan_sd, "fan") if not p.startswith("fan: missing keys")]
        missing = [k for k in fan.state_dict() if k not in fan_sd and not k.endswith("num_batches_tracked")]
        if missing:
            fan_problems.append(f"fan: missing keys {missing}")
        if fan_problems:
            raise ValueError(f"{path}: the stored FAN does not fit StarGAN v2's FAN (98 landmarks):\n  "
                             + "\n  ".join(fan_problems))
        modules["fan"] = fan
        sds["fan"] = fan_sd
    for name, module in modules.items():
        if name == "fan":
            own = module.state_dict()
            own.update({k: v for k, v in sds[name].items() if k in own})
            module.load_state_dict(own, strict=True)
        else:
            module.load_state_dict(sds[name], strict=True)
        module.eval()
    return modules


def save_nets_ema_like_official(path: str | os.PathLike, modules: Mapping[str, nn.Module]) -> None:
    """Write ``{name: state_dict}`` for generator, mapping_network, style_encoder (and ``fan`` if given) in the
    official ``*_nets_ema.ckpt`` layout, atomically. Tensors are saved detached on CPU."""
    missing = [k for k in NETS_EMA_KEYS if k not in modules]
    extra = [k for k in modules if k not in NETS_EMA_KEYS + OPTIONAL_KEYS]
    if missing or extra:
        raise ValueError(f"modules must have keys {list(NETS_EMA_KEYS)} (+ optional {list(OPTIONAL_KEYS)}); "
                         f"missing {missing}, unexpected {extra}")
    out = {}
    for name, module in modules.items():
        if not isinstance(module, nn.Module):
            raise TypeError(f"modules[{name!r}] must be an nn.Module, got {type(module).__name__}")
        out[name] = {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
    with atomic_open(path, "wb") as fh:
        torch.save(out, fh)
