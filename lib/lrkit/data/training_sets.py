"""The image sets a trainer or an evaluation reads, for synthfaces and for real folders alike.

``open_images`` returns an ``ImageSet``: a pool of images (``lrkit.data.pools.ImagePool``), a label for
tables and manifests ("synthfaces-faces@<fp12>" or "celeba_hq@<fp12>"), the fingerprint, and for synthfaces the
true factors of every image (what the factor probes score against).

Fingerprints: synthfaces sets use ``SynthSet.fingerprint()`` restricted to the selected rows (content hash). Real
folders use a *listing* fingerprint (sha256 over sorted "relative path, size in bytes" lines) because hashing 30k
JPEGs at every start of training would cost minutes; ``lrkit data check`` gives the content fingerprint. The
label says which one it is ("listing:" prefix), so the two are never confused.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lrkit.data import synthfaces as sf
from lrkit.data.folders import ImageFolderDataset, detect_layout
from lrkit.data.roots import REAL_DATASETS, dataset_folder
from lrkit.data.pools import ArrayPool, DatasetPool, ImagePool

__all__ = ["ImageSet", "open_images", "first_images", "REAL_DATASETS"]


@dataclass
class ImageSet:
    pool: ImagePool
    name: str  # dataset name as in tables: "synthfaces-faces", "celeba_hq", "afhq"
    split: str
    fingerprint: str
    factors: dict[str, np.ndarray] | None = None  # synthfaces: every factor, rows aligned with the pool
    variant: str | None = None  # synthfaces variant
    domain_names: tuple[str, ...] = ()
    domain: np.ndarray | None = None  # int64 [N] index into domain_names

    @property
    def label(self) -> str:
        return f"{self.name}@{self.fingerprint[:12]}"

    def __len__(self) -> int:
        return len(self.pool)


def first_images(images: ImageSet, n: int) -> ImageSet:
    """The first ``n`` images of an in-memory set (synthfaces: domains stay balanced, they alternate per block) as
    their own set, named so in every label (``<name>-first<n>``); ``n`` 0 or >= its size: the set itself. A set
    read from disk is returned whole (its folder is the metric caches' key)."""
    if not n or n >= len(images) or not isinstance(images.pool, ArrayPool):
        return images
    return ImageSet(ArrayPool(images.pool.images[:n]), f"{images.name}-first{n}", images.split,
                    hashlib.sha256(f"{images.fingerprint}:first{n}".encode()).hexdigest(),
                    None if images.factors is None else {k: v[:n] for k, v in images.factors.items()},
                    images.variant, images.domain_names, None if images.domain is None else images.domain[:n])


def _synth(variant: str, split: str, n: int, size: int, seed: int, domains) -> ImageSet:
    names = sf.DOMAINS[variant]
    selected = tuple(names) if domains is None else tuple(domains)
    bad = [d for d in selected if d not in names]
    if bad:
        raise ValueError(f"synthfaces variant {variant!r} has domains {names}, not {bad}")
    # Domains are exactly balanced per block of len(names) images, so this many per domain covers n.
    per_domain = math.ceil(n / len(selected))
    full = sf.generate(variant, split, per_domain * len(names), size, seed)
    rows = np.flatnonzero(np.isin(full.domain, [names.index(d) for d in selected]))[:n]
    images = full.images[rows]
    factors = {k: v[rows] for k, v in full.factors.items()}
    h = hashlib.sha256(full.fingerprint().encode())
    h.update(rows.astype(np.int64).tobytes())
    remap = {names.index(d): i for i, d in enumerate(selected)}
    domain = np.array([remap[int(d)] for d in full.domain[rows]], np.int64)
    return ImageSet(ArrayPool(images), f"synthfaces-{variant}", split, h.hexdigest(), factors, variant,
                    selected, domain)


def _listing_fingerprint(ds: ImageFolderDataset) -> str:
    h = hashlib.sha256(b"listing-v1\n")
    for path, label in sorted(ds.samples):
        rel = Path(path).relative_to(ds.root).as_posix()
        h.update(f"{rel}\t{Path(path).stat().st_size}\t{label}\n".encode())
    return "listing:" + h.hexdigest()


def open_images(dataset: str, split: str, hr_size: int, *, n: int = 0, seed: int = 0, synth_variant: str = "faces",
                domains=None, data_root=None) -> ImageSet:
    """Images of ``dataset`` ("synthfaces" or a real one read from ``data_root``) at ``hr_size`` px.

    synthfaces: ``n`` images of the selected domains (rendered, cached). Real: every readable image of the split
    (StarGAN v2 layout) or of the folder (other layouts), restricted to ``domains``; ``data_root`` is the
    dataset's folder, a root holding ``<dataset>/``, or ``{dataset: folder}`` (``lrkit.data.roots``).
    """
    if dataset == "synthfaces":
        if n < 1:
            raise ValueError("open_images: synthfaces needs n >= 1 images")
        return _synth(synth_variant, split, int(n), int(hr_size), int(seed), domains)
    if dataset not in REAL_DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; use 'synthfaces' or one of {REAL_DATASETS}")
    data_root = dataset_folder(dataset, data_root)  # a root, {name: folder}, or the folder itself
    layout = detect_layout(data_root)
    ds = ImageFolderDataset(data_root, split=split if layout == "stargan" else None, domains=domains,
                            hr_size=hr_size, hflip=False)
    fp = _listing_fingerprint(ds)
    return ImageSet(DatasetPool(ds), dataset, split, fp, None, None, tuple(ds.domain_names),
                    np.asarray(ds.targets, np.int64))
