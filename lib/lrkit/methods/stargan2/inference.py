"""StarGAN v2 inference: load EMA nets (an official ``*_nets_ema.ckpt`` or an lrkit training checkpoint) and
synthesise reference-guided or latent-guided images.

Two kinds of file, one entry point (:func:`load_stargan2`):

* the official released ``100000_nets_ema.ckpt`` (CelebA-HQ: 256 px, ``w_hpf`` 1; AFHQ: 256 px, ``w_hpf`` 0). It
  holds bare state_dicts and no configuration, so the image size and the high-pass weight must be given (the
  defaults are the official code's: 256 and 1). The CelebA-HQ file also carries the FAN (``fan``), and that FAN is
  what the official sampler uses -- loading ``nets_ema`` overrides the one built from ``wing.ckpt`` -- so it is
  preferred here too; ``wing.ckpt`` is the fallback for a file without one.
* an lrkit ``stargan2`` training checkpoint (``lrkit train stargan2``): sizes and domain names come from its
  config, and its ``G_ema``/``F_ema``/``E_ema`` are used (every evaluation uses the EMA nets, as the official code).

Domain indices follow the official data layout: sorted folder names (CelebA-HQ ``female``, ``male``; AFHQ ``cat``,
``dog``, ``wild``).

Image I/O for the command line goes through the official code's torchvision transforms (``Resize`` of the PIL
image, ``ToTensor``, ``Normalize(0.5, 0.5)``; output ``(x + 1) / 2`` clamped and written by
``torchvision.utils.save_image``), so a released model gives the official sampler's pixels.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from lrkit.cpu import configure_cpu
from lrkit.nets.fan import FAN, heatmap_masks

__all__ = ["Stargan2Nets", "load_stargan2", "translate_ref", "translate_latent", "load_images_official",
           "save_image_official", "is_lrkit_checkpoint"]


@dataclass
class Stargan2Nets:
    G: torch.nn.Module  # Stargan2Generator, eval mode, no grad
    F: torch.nn.Module  # MappingNetwork
    E: torch.nn.Module  # StyleEncoder
    fan: FAN | None  # only when w_hpf > 0
    img_size: int
    w_hpf: float
    latent_dim: int
    domain_names: tuple[str, ...]
    path: str
    kind: str  # "official nets_ema" | "lrkit checkpoint"
    step: int | None = None
    fan_source: str = ""  # where the FAN weights came from ("" when there is no FAN)
    preset: str = ""

    @property
    def num_domains(self) -> int:
        return len(self.domain_names)

    @property
    def label(self) -> str:
        what = f"{self.preset}@step{self.step}" if self.kind == "lrkit checkpoint" else "official nets_ema"
        fan = f", FAN from {self.fan_source}" if self.fan is not None else ""
        return f"StarGAN v2 {what} ({Path(self.path).name}, {self.img_size} px, w_hpf {self.w_hpf:g}{fan})"

    def domain_index(self, domain: str | int) -> int:
        """A domain given by name or by index -> its index (clear error when it does not exist)."""
        if isinstance(domain, str) and domain.lstrip("-").isdigit():
            domain = int(domain)
        if isinstance(domain, int):
            if not 0 <= domain < self.num_domains:
                raise ValueError(f"domain index {domain} out of range: this model has {self.num_domains} domains "
                                 f"{list(self.domain_names)} (indices 0..{self.num_domains - 1})")
            return domain
        if domain not in self.domain_names:
            raise ValueError(f"unknown domain {domain!r}: this model's domains are {list(self.domain_names)} "
                             "(give a name or an index)")
        return self.domain_names.index(domain)

    def labels(self, domains, n: int) -> torch.Tensor:
        """One domain per sample: a single domain (name/index) is repeated ``n`` times; a list must have ``n``."""
        if isinstance(domains, torch.Tensor):
            domains = domains.tolist()
        if isinstance(domains, (str, int)):
            domains = [domains] * n
        domains = list(domains)
        if len(domains) != n:
            raise ValueError(f"got {len(domains)} target domains for {n} images: give one domain, or one per image")
        return torch.tensor([self.domain_index(d) for d in domains], dtype=torch.int64)


def is_lrkit_checkpoint(path: Path) -> bool:
    """Whether ``path`` is an lrkit training checkpoint (else: an official nets_ema file, or not readable)."""
    # lrkit writes torch's zip format, which memory-maps (cheap peek). The released StarGAN v2 files predate it
    # (legacy format, cannot be memory-mapped), and anything unreadable is left to the official loader's errors.
    if not zipfile.is_zipfile(path):
        return False
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - not ours; the official loader reports what is wrong with it
        return False
    return isinstance(obj, dict) and obj.get("format") == "lrkit-checkpoint"


def _freeze(m: torch.nn.Module, device) -> torch.nn.Module:
    configure_cpu(device)  # denormal weights would slow CPU inference ~10x (lrkit.cpu)
    return m.to(device).eval().requires_grad_(False)


def _load_fan(wing: str | None) -> tuple[FAN, str]:
    from lrkit.methods.stargan2.task import load_fan

    fan, record = load_fan(wing)
    return fan, record["label"]


def load_stargan2(checkpoint: str | Path, *, device: str = "cpu", img_size: int | None = None,
                  w_hpf: float | None = None, wing: str | None = None,
                  domain_names: tuple[str, ...] | None = None) -> Stargan2Nets:
    """StarGAN v2 EMA nets from ``checkpoint`` (official ``*_nets_ema.ckpt`` or lrkit ``stargan2`` checkpoint).

    Official files carry no config: ``img_size`` (default 256) and ``w_hpf`` (default 1) say how they were trained;
    a wrong value is a clear error naming the likely flag. For lrkit checkpoints both are read from the config, and
    a given value that disagrees is an error. ``wing``: a ``wing.ckpt`` to use when the model needs FAN masks and
    the file has no FAN of its own (default: the registered ``stargan2_wing`` weights). The channel cap is read
    from the file (512 in every official model).
    """
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"no StarGAN v2 checkpoint at {path}; pass an official *_nets_ema.ckpt "
                                "('lrkit weights fetch stargan2_celeba_hq') or an lrkit run's checkpoints/latest.pt")
    if is_lrkit_checkpoint(path):
        return _load_lrkit(path, device, img_size, w_hpf, wing, domain_names)
    from lrkit.methods.stargan2.official_files import load_official_nets_ema

    size = 256 if img_size is None else int(img_size)
    hpf = 1.0 if w_hpf is None else float(w_hpf)
    nets = load_official_nets_ema(path, img_size=size, w_hpf=hpf, max_conv_dim=None, with_fan=hpf > 0)
    n_dom = nets["mapping_network"].num_domains
    from lrkit.methods.stargan2.config import OFFICIAL_DOMAINS

    by_count = {len(v): v for v in OFFICIAL_DOMAINS.values()}
    names = tuple(domain_names) if domain_names else by_count.get(n_dom, tuple(str(i) for i in range(n_dom)))
    if len(names) != n_dom:
        raise ValueError(f"{path} has {n_dom} domains but {len(names)} domain names were given ({list(names)})")
    fan, fan_source = None, ""
    if hpf > 0:
        if "fan" in nets:
            fan, fan_source = nets["fan"], f"{path.name} (the FAN stored in nets_ema, as the official sampler uses)"
        else:
            fan, fan_source = _load_fan(wing)
    G, Fm, E = (_freeze(nets[k], device) for k in ("generator", "mapping_network", "style_encoder"))
    return Stargan2Nets(G, Fm, E, _freeze(fan, device) if fan is not None else None, size, hpf,
                        Fm.latent_dim, names, str(path), "official nets_ema", None, fan_source)


def _load_lrkit(path: Path, device, img_size, w_hpf, wing, domain_names) -> Stargan2Nets:
    from lrkit.train.checkpoint import load_checkpoint
    from lrkit.methods.stargan2.config import Stargan2Config
    from lrkit.methods.stargan2.task import build_nets, domain_names_for

    ckpt = load_checkpoint(path, task="stargan2")
    cfg = Stargan2Config.from_dict(ckpt["config"])
    for flag, given, have in (("--img-size", img_size, cfg.img_size), ("--w-hpf", w_hpf, cfg.w_hpf)):
        if given is not None and float(given) != float(have):
            raise ValueError(f"{path} is an lrkit checkpoint of preset {cfg.preset!r} trained with "
                             f"{flag.lstrip('-').replace('-', '_')}={have}; drop {flag} {given} (lrkit checkpoints "
                             "carry their config)")
    nets = build_nets(cfg)
    for name, key in (("G", "G_ema"), ("F", "F_ema"), ("E", "E_ema")):
        state = ckpt["modules"].get(key)
        if state is None:
            raise ValueError(f"{path} has no {key!r} weights (it holds {sorted(ckpt['modules'])})")
        nets[name].load_state_dict(state)
    names = tuple(domain_names) if domain_names else domain_names_for(cfg)
    fan, fan_source = (None, "")
    if cfg.w_hpf > 0:
        fan, fan_source = _load_fan(wing)
    return Stargan2Nets(_freeze(nets["G"], device), _freeze(nets["F"], device), _freeze(nets["E"], device),
                        _freeze(fan, device) if fan is not None else None, cfg.img_size, float(cfg.w_hpf),
                        cfg.latent_dim, names, str(path), "lrkit checkpoint", int(ckpt["step"]), fan_source,
                        cfg.preset)


def _check_images(x: torch.Tensor, size: int, what: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 3 or not x.is_floating_point():
        raise ValueError(f"{what} must be a float tensor [N, 3, H, W] in [-1, 1], got "
                         f"{getattr(x, 'dtype', type(x))} {tuple(getattr(x, 'shape', ()))}")
    if tuple(x.shape[-2:]) != (size, size):
        raise ValueError(f"{what} are {x.shape[-1]}x{x.shape[-2]} but this StarGAN v2 model works at {size}x{size}: "
                         f"resize them (load_images_official does) or load the model with its own --img-size")
    return x


def _device(nets: Stargan2Nets) -> torch.device:
    return next(nets.G.parameters()).device


@torch.no_grad()
def _generate(nets: Stargan2Nets, sources: torch.Tensor, styles: torch.Tensor, batch_size: int) -> torch.Tensor:
    dev = _device(nets)
    out = []
    for i in range(0, len(sources), batch_size):
        src = sources[i:i + batch_size].to(dev)
        # Masks come from the *sources* (official translate_using_reference / calculate_metrics).
        masks = heatmap_masks(nets.fan, src) if nets.w_hpf > 0 else None
        out.append(nets.G(src, styles[i:i + batch_size].to(dev), masks=masks).float().clamp(-1, 1).cpu())
    return torch.cat(out) if out else sources.new_zeros((0, *sources.shape[1:]))


@torch.no_grad()
def translate_ref(nets: Stargan2Nets, sources: torch.Tensor, references: torch.Tensor, target_domains, *,
                  batch_size: int = 16) -> torch.Tensor:
    """Reference-guided synthesis: ``G(sources[i], E(references[i], d_i))`` -> float32 [N, 3, S, S] on the CPU,
    clamped to [-1, 1]. ``target_domains``: one domain (name or index) or one per pair -- the references' domain."""
    src = _check_images(sources, nets.img_size, "sources")
    ref = _check_images(references, nets.img_size, "references")
    if len(src) != len(ref):
        raise ValueError(f"translate_ref pairs sources and references by index: got {len(src)} sources and "
                         f"{len(ref)} references (repeat them to build all pairs)")
    y = nets.labels(target_domains, len(src))
    dev = _device(nets)
    styles = torch.cat([nets.E(ref[i:i + batch_size].to(dev), y[i:i + batch_size].to(dev)).float()
                        for i in range(0, len(ref), batch_size)]) if len(ref) else torch.zeros(0, 1)
    return _generate(nets, src, styles, batch_size)


@torch.no_grad()
def translate_latent(nets: Stargan2Nets, sources: torch.Tensor, target_domains, *, z: torch.Tensor | None = None,
                     seed: int = 0, batch_size: int = 16) -> torch.Tensor:
    """Latent-guided synthesis: ``G(sources[i], F(z_i, d_i))``. ``z`` [N, latent_dim] (default: standard normal
    drawn from a generator seeded with ``seed``, so a call is reproducible whatever the global RNG)."""
    src = _check_images(sources, nets.img_size, "sources")
    y = nets.labels(target_domains, len(src))
    if z is None:
        z = torch.randn(len(src), nets.latent_dim, generator=torch.Generator().manual_seed(int(seed)))
    if tuple(z.shape) != (len(src), nets.latent_dim):
        raise ValueError(f"z must be [{len(src)}, {nets.latent_dim}] (one latent per source), got {tuple(z.shape)}")
    dev = _device(nets)
    styles = torch.cat([nets.F(z[i:i + batch_size].to(dev), y[i:i + batch_size].to(dev)).float()
                        for i in range(0, len(src), batch_size)]) if len(src) else torch.zeros(0, 1)
    return _generate(nets, src, styles, batch_size)


def load_images_official(paths, img_size: int) -> torch.Tensor:
    """Image files -> [N, 3, img_size, img_size] in [-1, 1], exactly as the official test loader prepares them
    (PIL ``convert('RGB')``, torchvision ``Resize([S, S])``, ``ToTensor``, ``Normalize(0.5, 0.5)``)."""
    from PIL import Image
    from torchvision import transforms

    tf = transforms.Compose([transforms.Resize([img_size, img_size]), transforms.ToTensor(),
                             transforms.Normalize(mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5])])
    out = []
    for p in paths:
        with Image.open(p) as im:
            out.append(tf(im.convert("RGB")))
    if not out:
        raise ValueError("no images given")
    return torch.stack(out)


def save_image_official(x: torch.Tensor, path: str | Path, nrow: int = 8, padding: int = 0) -> None:
    """Write [3, H, W] or [N, 3, H, W] in [-1, 1] as the official ``utils.save_image`` does (denormalise, clamp,
    ``torchvision.utils.save_image``), atomically."""
    import io

    from torchvision.utils import save_image

    from lrkit.fsutil import atomic_write_bytes

    buf = io.BytesIO()
    save_image(((x.float() + 1) / 2).clamp(0, 1), buf, nrow=nrow, padding=padding, format="png")
    atomic_write_bytes(Path(path), buf.getvalue())
