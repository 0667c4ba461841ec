"""LR image files given on a command line (``lrkit pulse --lr``, ``lrkit srnam --lr``): one square size per run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lrkit.data.ops import from_uint8
from lrkit.errors import UserError

__all__ = ["read_lr_images"]


def read_lr_images(paths: list[str]) -> tuple[torch.Tensor, list[str]]:
    """LR image files (all one square size) -> ([N, 3, s, s] in [-1, 1], their stems)."""
    images, stems, sizes = [], [], set()
    for p in map(Path, paths):
        if not p.is_file():
            raise UserError(f"--lr {p}: no such file")
        with Image.open(p) as im:
            a = np.asarray(im.convert("RGB"))
        if a.shape[0] != a.shape[1]:
            raise UserError(f"--lr {p} is {a.shape[1]}x{a.shape[0]}; LR inputs must be square (crop it first)")
        images.append(from_uint8(a))
        stems.append(p.stem)
        sizes.add(a.shape[0])
    if len(sizes) != 1:
        raise UserError(f"--lr images have sides {sorted(sizes)}; give images of one size per run")
    if len(set(stems)) != len(stems):
        raise UserError("--lr images share file names (stems); their outputs would overwrite each other")
    return torch.stack(images), stems
