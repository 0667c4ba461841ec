"""synthfaces sets: ``render`` one image, ``generate`` a cached ``SynthSet``, the torch ``SynthFacesDataset``,
and the StarGAN v2 folder export (``export_folder``, ``read_factors_csv``).

A set's ``fingerprint()`` is the sha256 of its content; ``generate(..., cache=True)`` keeps one ``.npz`` per
``(SYNTHFACES_VERSION, variant, split, n, size, seed)`` under ``cache_dir("synthfaces")`` and checks the
stored content hash before trusting it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from lrkit.data.synthfaces.animals import _render_animal
from lrkit.data.synthfaces.faces import _render_face
from lrkit.data.synthfaces.factors import (
    DOMAINS,
    FACTORS,
    SYNTHFACES_VERSION,
    _check_domains,
    _check_int,
    _check_size,
    _check_split,
    _check_variant,
    factor_names,
    sample_factors,
)
from lrkit.fsutil import atomic_open, cache_dir


# ----------------------------------------------------------------------------------------------------------------
# Public rendering API
# ----------------------------------------------------------------------------------------------------------------


def render(factors: dict, size: int, variant: str) -> np.ndarray:
    """Render one image: uint8 [size, size, 3] from a factor dict (as returned by ``sample_factors``).

    Pure function of ``(factors, size, variant)``. All geometry is resolution independent, so the 256 px image
    2x2-averaged is close to the 128 px one.
    """
    _check_variant(variant)
    _check_size(size)
    missing = [n for n in factor_names(variant) if n not in factors]
    if missing:
        raise KeyError(f"factors for variant {variant!r} are missing {missing}; use sample_factors() for a full set")
    f = {n: factors[n] for n in factor_names(variant)}
    for spec in FACTORS[variant]:
        if spec.kind == "categorical" and not 0 <= int(f[spec.name]) < spec.n_classes:
            raise ValueError(f"factor {spec.name!r}={f[spec.name]!r} is not a class index of {spec.classes}")
    size = int(size)
    if variant == "faces":
        return _render_face(f, size)
    return _render_animal(f, size)


# ----------------------------------------------------------------------------------------------------------------
# Sets, cache, dataset, export
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SynthSet:
    """``n`` rendered images of one ``(variant, split, size, seed)`` and their factors.

    ``images`` is uint8 ``[N, H, W, 3]``; ``factors`` maps every factor name (``FACTORS[variant]`` order) to an
    ``[N]`` array (int64 for categorical factors and ``texture_seed``, float64 for continuous ones); ``domain`` is
    int64 ``[N]``, an index into ``DOMAINS[variant]`` (the same values as ``factors["domain"]``). Image ``i`` is
    ``render(sample_factors(variant, seed, split, i), size, variant)``.
    """

    images: np.ndarray
    factors: dict[str, np.ndarray]
    domain: np.ndarray
    variant: str
    split: str
    size: int
    seed: int
    _fingerprint: list = field(default_factory=list, repr=False, compare=False)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def domain_names(self) -> tuple[str, ...]:
        return DOMAINS[self.variant]

    def factors_of(self, i: int) -> dict[str, float | int]:
        """Factors of image ``i`` as python scalars (the dict ``sample_factors`` returns)."""
        return {k: v[i].item() for k, v in self.factors.items()}

    def fingerprint(self) -> str:
        """sha256 (hex) of the content: image shape and bytes, then every factor's name, dtype and values."""
        if not self._fingerprint:
            self._fingerprint.append(_content_hash(self.images, self.factors))
        return self._fingerprint[0]


def _content_hash(images: np.ndarray, factors: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    h.update(repr(tuple(images.shape)).encode())
    h.update(np.ascontiguousarray(images).tobytes())
    for name in sorted(factors):
        arr = np.ascontiguousarray(factors[name])
        # Little-endian, fixed dtypes: the hash is the same on every platform.
        arr = arr.astype("<i8") if arr.dtype.kind in "iub" else arr.astype("<f8")
        h.update(name.encode() + b"\0" + arr.dtype.str.encode() + b"\0")
        h.update(arr.tobytes())
    return h.hexdigest()


def _factor_arrays(variant: str, rows: list[dict]) -> dict[str, np.ndarray]:
    out = {}
    for spec in FACTORS[variant]:
        dtype = np.float64 if spec.kind == "continuous" else np.int64
        out[spec.name] = np.asarray([r[spec.name] for r in rows], dtype=dtype)
    return out


def cache_path(variant: str, split: str, n: int, size: int, seed: int) -> Path:
    """Where ``generate(..., cache=True)`` keeps this set (under ``cache_dir("synthfaces")``)."""
    return cache_dir("synthfaces") / f"v{SYNTHFACES_VERSION}_{variant}_{split}_n{n}_s{size}_seed{seed}.npz"


def _load_cached(path: Path, variant: str, split: str, n: int, size: int, seed: int) -> SynthSet | None:
    """The cached set, or None when the file is missing, unreadable, or does not match what it claims to hold."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            images = z["images"]
            factors = {name: z["f_" + name] for name in factor_names(variant)}
            stored_hash = str(z["fingerprint"])
            meta = str(z["meta"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if meta != _cache_meta(variant, split, n, size, seed):
        return None
    if images.dtype != np.uint8 or images.shape != (n, size, size, 3):
        return None
    if any(a.shape != (n,) for a in factors.values()):
        return None
    # The stored content hash guards against silent corruption that still parses (and against a truncated file
    # whose arrays happen to load).
    if _content_hash(images, factors) != stored_hash:
        return None
    ss = SynthSet(images, factors, factors["domain"].astype(np.int64), variant, split, size, seed)
    ss._fingerprint.append(stored_hash)
    return ss


def _cache_meta(variant: str, split: str, n: int, size: int, seed: int) -> str:
    return f"synthfaces v{SYNTHFACES_VERSION} variant={variant} split={split} n={n} size={size} seed={seed}"


def _save_cached(path: Path, ss: SynthSet) -> None:
    arrays = {"images": ss.images, "fingerprint": np.asarray(ss.fingerprint()),
              "meta": np.asarray(_cache_meta(ss.variant, ss.split, len(ss), ss.size, ss.seed))}
    arrays.update({"f_" + k: v for k, v in ss.factors.items()})
    # Streamed into the temporary file (no second in-memory copy of a large set); moved into place on success.
    with atomic_open(path, "wb") as fh:
        np.savez(fh, **arrays)


def generate(variant: str, split: str, n: int, size: int, seed: int = 0, cache: bool = True) -> SynthSet:
    """Render images ``0 .. n-1`` of ``(variant, split, seed)`` at ``size`` px (a ``SynthSet``).

    With ``cache=True`` the set is stored in (and next time read from) one ``.npz`` under ``cache_dir("synthfaces")``
    keyed on ``(SYNTHFACES_VERSION, variant, split, n, size, seed)``; a cache file that cannot be read or fails its
    content hash is regenerated and replaced atomically, never trusted. Generating ``n`` images gives the same first
    ``k`` images as generating ``k``.
    """
    _check_variant(variant)
    _check_split(split)
    _check_size(size)
    _check_int("n", n, 1)
    _check_int("seed", seed, 0)
    n, size, seed = int(n), int(size), int(seed)
    path = cache_path(variant, split, n, size, seed) if cache else None
    if path is not None:
        hit = _load_cached(path, variant, split, n, size, seed)
        if hit is not None:
            return hit
    rows = [sample_factors(variant, seed, split, i) for i in range(n)]
    images = np.empty((n, size, size, 3), np.uint8)
    for i, row in enumerate(rows):
        images[i] = render(row, size, variant)
    factors = _factor_arrays(variant, rows)
    ss = SynthSet(images, factors, factors["domain"].copy(), variant, split, size, seed)
    if path is not None:
        _save_cached(path, ss)
    return ss


class SynthFacesDataset(Dataset):
    """synthfaces as a torch ``Dataset`` (the in-memory counterpart of the StarGAN v2 folder layout).

    ``n`` is the number of images **per domain** (as the profiles' ``synth_n_train``/``synth_n_val``): the
    underlying set has ``n * len(DOMAINS[variant])`` images, whose domains are exactly balanced, and ``domains``
    keeps a subset of them. Items are dicts: ``image`` float32 ``[3, H, W]`` in ``[-1, 1]``, ``domain`` (int label
    into ``.domain_names``, i.e. into the *selected* domains, in ``DOMAINS`` order), ``index`` (the image's index
    in its split, valid for ``sample_factors``), ``factors`` (python scalars, unflipped), and ``flipped`` (bool:
    with ``hflip=True`` an image is mirrored with probability 1/2 using ``torch``'s RNG; its factors are not
    mirrored).
    """

    def __init__(self, variant: str = "faces", split: str = "train", n: int = 500, size: int = 128, seed: int = 0,
                 domains: Sequence[str] | None = None, hflip: bool = False, cache: bool = True) -> None:
        _check_variant(variant)
        _check_split(split)
        _check_size(size)
        _check_int("n", n, 1)
        selected = _check_domains(variant, domains)
        self.variant, self.split, self.size, self.seed = variant, split, int(size), int(seed)
        self.hflip = bool(hflip)
        self.set = generate(variant, split, int(n) * len(DOMAINS[variant]), size, seed, cache=cache)
        self.domain_names: tuple[str, ...] = tuple(d for d in DOMAINS[variant] if d in selected)
        wanted = [DOMAINS[variant].index(d) for d in self.domain_names]
        self.indices = np.flatnonzero(np.isin(self.set.domain, wanted))  # int64 [M] rows of the set
        remap = {g: i for i, g in enumerate(wanted)}
        self.targets = [remap[int(self.set.domain[i])] for i in self.indices]
        h = hashlib.sha256(self.set.fingerprint().encode())
        h.update(np.ascontiguousarray(self.indices.astype("<i8")).tobytes())
        self.fingerprint: str = h.hexdigest()

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        n = len(self.indices)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for a dataset of {n} images")
        row = int(self.indices[i % n])
        img = torch.from_numpy(np.ascontiguousarray(self.set.images[row])).permute(2, 0, 1).to(torch.float32)
        img = img * (2.0 / 255.0) - 1.0  # 8-bit level k -> k * 2/255 - 1, as lrkit.data.ops.from_uint8
        flipped = bool(self.hflip and bool(torch.rand(()) < 0.5))
        if flipped:
            img = img.flip(-1)
        return {"image": img.contiguous(), "domain": self.targets[i % n], "index": row,
                "factors": self.set.factors_of(row), "flipped": flipped}

    def __repr__(self) -> str:
        return (f"SynthFacesDataset(variant={self.variant!r}, split={self.split!r}, domains={list(self.domain_names)},"
                f" n={len(self)}, size={self.size}, seed={self.seed})")


def export_folder(variant: str, root: str | Path, n_train: int, n_val: int, size: int, seed: int = 0) -> Path:
    """Write synthfaces as PNGs in the StarGAN v2 layout and return ``root``.

    ``n_train``/``n_val`` are images **per domain** (as the ``lrkit data synth`` CLI and the profiles count them).
    Files: ``root/{train,val}/{domain}/{index:06d}.png`` (``index`` = the image's index in its split, usable with
    ``sample_factors``) and ``root/factors.csv`` with columns ``split, domain, file, index`` followed by every
    factor except ``domain`` (categorical factors as class indices, continuous ones with full float precision).
    Existing files of the same names are overwritten atomically; other files in ``root`` are left alone.
    """
    from PIL import Image

    _check_variant(variant)
    _check_int("n_train", n_train, 1)
    _check_int("n_val", n_val, 1)
    _check_size(size)
    root = Path(root)
    names = [n for n in factor_names(variant) if n != "domain"]
    rows: list[list[str]] = []
    for split, per_domain in (("train", n_train), ("val", n_val)):
        ss = generate(variant, split, int(per_domain) * len(DOMAINS[variant]), size, seed)
        for d in DOMAINS[variant]:
            (root / split / d).mkdir(parents=True, exist_ok=True)
        for i in range(len(ss)):
            dname = DOMAINS[variant][int(ss.domain[i])]
            rel = f"{split}/{dname}/{i:06d}.png"
            buf = io.BytesIO()
            Image.fromarray(ss.images[i]).save(buf, format="PNG")
            with atomic_open(root / rel, "wb") as fh:
                fh.write(buf.getvalue())
            vals = ss.factors_of(i)
            rows.append([split, dname, rel, str(i)] + [repr(vals[k]) for k in names])
    text = io.StringIO()
    w = csv.writer(text, lineterminator="\n")
    w.writerow(["split", "domain", "file", "index"] + names)
    w.writerows(rows)
    with atomic_open(root / "factors.csv", "w") as fh:
        fh.write(text.getvalue())
    return root


def read_factors_csv(path: str | Path, variant: str) -> list[dict]:
    """Rows of an exported ``factors.csv`` as dicts: ``split``, ``file``, ``index`` and the full factor dict
    (``domain`` as its class index), with the same python types as ``sample_factors``."""
    _check_variant(variant)
    out = []
    with open(path, newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            f: dict[str, float | int] = {}
            for spec in FACTORS[variant]:
                if spec.name == "domain":
                    f["domain"] = DOMAINS[variant].index(r["domain"])
                elif spec.kind == "continuous":
                    f[spec.name] = float(r[spec.name])
                else:
                    f[spec.name] = int(r[spec.name])
            out.append({"split": r["split"], "file": r["file"], "index": int(r["index"]), "factors": f})
    return out
