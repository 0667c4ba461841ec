"""Opening a real dataset folder for a profile, and drawing a seeded batch from any dataset."""

from __future__ import annotations

import numpy as np
import torch

from lrkit.data.folders import ImageFolderDataset, detect_layout, open_rgb
from lrkit.data.ops import from_uint8


def open_real(data_root: str, hr_size: int, split: str = "train", **kwargs) -> ImageFolderDataset:
    """A real dataset at ``hr_size``; ``split`` applies to the StarGAN v2 layout only (others have none)."""
    layout = detect_layout(data_root)
    return ImageFolderDataset(data_root, split=split if layout == "stargan" else None, hr_size=hr_size, **kwargs)


def sample_batch(dataset, n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """``n`` distinct items drawn with a seeded generator: ``image`` [n, 3, H, W] in [-1, 1], ``domain`` [n]."""
    if len(dataset) == 0:
        raise ValueError("cannot sample from an empty dataset")
    n = min(n, len(dataset))
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(dataset), generator=g)[:n].sort().values.tolist()
    items = [dataset[i] for i in idx]
    return {
        "image": torch.stack([it["image"] for it in items]),
        "domain": torch.tensor([int(it["domain"]) for it in items]),
        "index": torch.tensor(idx),
    }


def load_image_files(paths) -> torch.Tensor:
    """Image files -> [N, 3, H, W] in [-1, 1] (RGB; all must share one size)."""
    arrays = []
    for p in paths:
        a = np.asarray(open_rgb(p), dtype=np.uint8)
        if arrays and a.shape != arrays[0].shape:
            raise ValueError(f"{p} is {a.shape[1]}x{a.shape[0]} but {paths[0]} is "
                             f"{arrays[0].shape[1]}x{arrays[0].shape[0]}: give images of one size per argument")
        arrays.append(a)
    if not arrays:
        raise ValueError("no images given")
    return from_uint8(np.stack(arrays))
