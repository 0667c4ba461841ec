"""Read (and write) PULSE's StyleGAN-1 FFHQ files: ``synthesis.pt`` and ``mapping.pt``.

File layout (facts from adamian98/pulse, ``PULSE.py`` and ``stylegan.py``): each file is ``torch.save`` of the
bare module's ``state_dict()`` (``G_synthesis`` / ``G_mapping``), loaded there with
``load_state_dict(torch.load(f))``, i.e. strict keys. PULSE downloads them from Google Drive by id (see the
weights registry). The files were written from GPU modules: ``torch.load`` without ``map_location`` fails on a
CPU-only machine ("Attempting to deserialize object on a CUDA device"), so we always load with
``map_location="cpu"`` and move the built networks to ``device`` afterwards.

Both are plain dicts of tensors, so ``torch.load(weights_only=True)`` reads them with no arbitrary unpickling; a
file that needs more is refused with an error saying so. A failed Google Drive download typically leaves an HTML
page (quota exceeded, virus-scan warning) under the ``.pt`` name: that is recognised and named as such.

Loading is strict and all-or-nothing: every missing key, unexpected key and shape mismatch of a file is reported in
one :class:`StyleGAN1FileError` (first few of each, with counts) together with the likely cause (another
resolution, the two files swapped, a StyleGAN-2 file, a ``module.`` prefix).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn as nn

from lrkit.errors import UserError
from lrkit.fsutil import atomic_open
from lrkit.methods.stylegan1.nets import FFHQ_LATENT_DIM, FFHQ_RESOLUTION, StyleGAN1Mapping, StyleGAN1Synthesis
from lrkit.statedict import load_tensor_file, state_diff

__all__ = ["load_stylegan1", "write_official_layout", "read_tensor_file", "StyleGAN1FileError",
           "StyleGAN1FileMissing", "SYNTHESIS_FILENAME", "MAPPING_FILENAME"]

# The names the files have on PULSE's Google Drive (and in its cache folder, after an md5-of-URL prefix).
SYNTHESIS_FILENAME = "synthesis.pt"
MAPPING_FILENAME = "mapping.pt"
_SHOW = 5  # how many names of each kind of problem an error message lists


class StyleGAN1FileError(UserError, ValueError):
    """A file is not (or does not fit) the StyleGAN-1 network asked for; the message lists what differs."""


class StyleGAN1FileMissing(UserError, FileNotFoundError):
    """A StyleGAN-1 / PULSE file path does not exist."""


def read_tensor_file(path: str | os.PathLike, what: str) -> object:
    """The file's tensors (``lrkit.statedict.load_tensor_file``: one clear error for a missing file, an HTML page
    instead of weights, pickled objects, a truncated file)."""
    return load_tensor_file(path, what, error=StyleGAN1FileError, missing=StyleGAN1FileMissing)


def _as_state_dict(obj: object, path: Path, what: str) -> dict[str, torch.Tensor]:
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                          for k, v in obj.items()):
        kind = f"a dict with keys {sorted(map(str, obj))[:_SHOW]}" if isinstance(obj, Mapping) else type(obj).__name__
        raise StyleGAN1FileError(f"{path} is not {what}: expected a state_dict (names -> tensors), got {kind}")
    return dict(obj)


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOW])
    return shown + (f", ... ({len(names) - _SHOW} more)" if len(names) > _SHOW else "")


def _likely_cause(kind: str, sd: Mapping[str, torch.Tensor], module: nn.Module) -> str:
    hints = []
    keys = list(sd)
    if keys and all(k.startswith("module.") for k in keys):
        hints.append("every key starts with 'module.': the file was saved from an nn.DataParallel wrapper")
    if kind == "synthesis" and any(re.match(r"^dense\d+\.", k) for k in keys):
        hints.append("the file has the mapping network's keys (dense0...): synthesis and mapping files swapped?")
    if kind == "mapping" and any(k.startswith("blocks.") for k in keys):
        hints.append("the file has the synthesis network's keys (blocks...): synthesis and mapping files swapped?")
    if any(k.startswith(("synthesis.", "mapping.", "g_synthesis.", "g_mapping.", "style.", "convs.")) or
           ".modulation." in k for k in keys):
        hints.append("the keys look like a whole-generator or StyleGAN-2 checkpoint; PULSE's StyleGAN-1 ships "
                     "two separate state_dicts, synthesis.pt and mapping.pt")
    if kind == "synthesis":
        sides = sorted({int(m.group(1)) for k in keys if (m := re.match(r"^blocks\.(\d+)x\1\.", k))})
        if sides and sides[-1] != module.resolution:
            hints.append(f"the file's blocks go up to {sides[-1]}x{sides[-1]}: a network of resolution "
                         f"{sides[-1]}, not {module.resolution}")
    dims = {v.shape[-1] for k, v in sd.items() if k.endswith(("style_mod.lin.weight", "dense0.weight"))}
    if dims and dims != {module.latent_dim}:
        hints.append(f"the file's latent width is {sorted(dims)}, here {module.latent_dim}")
    return "; ".join(hints) if hints else (
        f"not PULSE's StyleGAN-1 FFHQ {kind} file (FFHQ needs resolution={FFHQ_RESOLUTION}, "
        f"latent_dim={FFHQ_LATENT_DIM}, fmap_base=8192, fmap_max=512)")


def _strict_load(module: nn.Module, sd: dict[str, torch.Tensor], path: Path, kind: str, config: str) -> None:
    diff = state_diff(module.state_dict(), sd)
    if diff:
        parts = [f"{len(diff.missing)} missing key(s)" + (f" [{_listed(diff.missing)}]" if diff.missing else ""),
                 f"{len(diff.unexpected)} unexpected key(s)"
                 + (f" [{_listed(diff.unexpected)}]" if diff.unexpected else ""),
                 f"{len(diff.shapes)} shape mismatch(es)"
                 + (f" [{_listed([f'{k} {g} in file vs {e} here' for k, g, e in diff.shapes])}]"
                    if diff.shapes else "")]
        raise StyleGAN1FileError(f"{path} does not fit the StyleGAN-1 {kind} network ({config}): "
                                 + "; ".join(parts) + f". Likely cause: {_likely_cause(kind, sd, module)}")
    module.load_state_dict(sd, strict=True)


def load_stylegan1(synthesis_path: str | os.PathLike, mapping_path: str | os.PathLike | None = None,
                   device: str | torch.device = "cpu", *, resolution: int = FFHQ_RESOLUTION,
                   latent_dim: int = FFHQ_LATENT_DIM, fmap_base: int = 8192, fmap_max: int = 512,
                   fused_from: int = 128) -> tuple[StyleGAN1Mapping | None, StyleGAN1Synthesis]:
    """Read PULSE's ``synthesis.pt`` (and ``mapping.pt`` unless ``mapping_path`` is None) into fresh networks.

    Returns ``(mapping or None, synthesis)``, in eval mode, on ``device``. The defaults are PULSE's FFHQ 1024
    networks; the size arguments exist for test networks (see :class:`StyleGAN1Synthesis`). Keys must match
    exactly; otherwise one :class:`StyleGAN1FileError` lists missing / unexpected keys and shape mismatches.
    """
    config = (f"resolution={resolution}, latent_dim={latent_dim}, fmap_base={fmap_base}, fmap_max={fmap_max}")
    syn_path = Path(synthesis_path)
    synthesis = StyleGAN1Synthesis(resolution, fmap_base, fmap_max, latent_dim, fused_from)
    sd = _as_state_dict(read_tensor_file(syn_path, "a StyleGAN-1 synthesis state_dict"), syn_path,
                        "a StyleGAN-1 synthesis state_dict")
    _strict_load(synthesis, sd, syn_path, "synthesis", config)
    mapping = None
    if mapping_path is not None:
        map_path = Path(mapping_path)
        mapping = StyleGAN1Mapping(latent_dim)
        sd = _as_state_dict(read_tensor_file(map_path, "a StyleGAN-1 mapping state_dict"), map_path,
                            "a StyleGAN-1 mapping state_dict")
        _strict_load(mapping, sd, map_path, "mapping", f"latent_dim={latent_dim}, 8 dense layers")
        mapping = mapping.to(device).eval()
    return mapping, synthesis.to(device).eval()


def write_official_layout(mapping: StyleGAN1Mapping | None, synthesis: StyleGAN1Synthesis,
                          folder: str | os.PathLike) -> tuple[Path, Path | None]:
    """Save the modules' state_dicts under PULSE's file names in ``folder`` (``synthesis.pt``, ``mapping.pt``),
    atomically, tensors detached on CPU. Returns ``(synthesis_path, mapping_path or None)``, the order
    :func:`load_stylegan1` takes them. For tests: files "in the official layout" with any (e.g. random) weights."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    def save(module: nn.Module, name: str) -> Path:
        path = folder / name
        sd = {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
        with atomic_open(path, "wb") as fh:
            torch.save(sd, fh)
        return path

    syn_path = save(synthesis, SYNTHESIS_FILENAME)
    map_path = save(mapping, MAPPING_FILENAME) if mapping is not None else None
    return syn_path, map_path
