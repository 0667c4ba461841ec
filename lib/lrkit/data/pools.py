"""Pools of images addressed by index: what a trainer's step-derived batches and an evaluation read.

A pool answers ``len(pool)`` and ``pool.get(indices) -> float32 [B, 3, H, W] in [-1, 1]``. ``ArrayPool`` holds
uint8 images in memory (synthfaces); ``DatasetPool`` wraps a folder dataset (real images, decoded on demand).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from lrkit.data.ops import from_uint8

__all__ = ["ImagePool", "ArrayPool", "DatasetPool"]


class ImagePool(Protocol):
    def __len__(self) -> int: ...
    def get(self, indices: list[int]) -> torch.Tensor: ...  # [B, 3, H, W] float32 in [-1, 1]


class ArrayPool:
    """Images already in memory: uint8 [N, H, W, 3] (e.g. a synthfaces ``SynthSet.images``)."""

    def __init__(self, images: np.ndarray) -> None:
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"ArrayPool expects uint8 [N, H, W, 3] images, got {images.dtype} {images.shape}")
        self.images = images

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def get(self, indices: list[int]) -> torch.Tensor:
        return from_uint8(self.images[np.asarray(indices, np.int64)])


class DatasetPool:
    """A map-style dataset whose items are dicts with an ``image`` [3, H, W] in [-1, 1] (``ImageFolderDataset``;
    build it with ``hflip=False``: flips come from the sampler)."""

    def __init__(self, dataset) -> None:
        if getattr(dataset, "hflip", False):
            raise ValueError("DatasetPool: build the dataset with hflip=False; the StepSampler draws the flips")
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def get(self, indices: list[int]) -> torch.Tensor:
        return torch.stack([self.dataset[i]["image"] for i in indices])
