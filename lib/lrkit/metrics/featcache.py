"""On-disk cache of feature statistics ``(mu, sigma, n)``, keyed on image *content*.

The key of an entry is the sha256 of a canonical JSON document holding

* the caller's ``key_parts``: at least ``extractor`` (e.g. ``"pytorchfid_inception_pool3"``), ``version`` (the
  protocol version: bump it whenever preprocessing or feature extraction changes) and ``weights_sha256`` (the full
  digest of the weight file used, so verified and unverified weights never share entries);
* the source's content key:

  - tensor ``[N, 3, H, W]`` in [-1, 1]: ``imagesource.content_fingerprint`` (sha256 over the 8-bit quantized
    pixels and shapes). Exact for metrics that evaluate images as 8-bit images, as the FID protocols here do;
  - folder: sha256 over, for every file ``imagesource.list_images`` returns (sorted, recursive), its relative path,
    byte size and the sha256 of its bytes, plus Pillow's version (decoders are deterministic for a given version).
    Hashing file bytes is much faster than decoding, and it is content-based: any change to any byte of any file,
    an added, removed or renamed file, all change the key. (A re-encoded file with identical pixels gets a new key
    and is simply recomputed.)
  - a *re-iterable* object (``iter(src) is not src``, e.g. ``lrkit.evaluation.translations.U8Images``): read
    twice, once for ``content_fingerprint`` (the same key as the tensor of the same images) and once to compute;
  - a one-shot iterator of batches: **not cached**. It can be read only once, and fingerprinting it would consume
    it; ``cached_stats`` computes and returns ``hit=False``.

So a changed dataset -- one pixel of one image -- can never hit a stale entry. Entries are ``.npz`` files
(``mu``, ``sigma``, ``n`` and the key document) under ``cache_dir("features")`` (``$LRKIT_CACHE_DIR/features``),
written atomically; an unreadable, truncated or inconsistent entry is recomputed and overwritten.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from lrkit.fsutil import atomic_open, cache_dir
from lrkit.metrics.imagesource import ImageSource, content_fingerprint, list_images

REQUIRED_KEYS = ("extractor", "version", "weights_sha256")
_CHUNK = 1 << 20

__all__ = ["REQUIRED_KEYS", "content_key", "cache_path", "cached_stats"]


def _folder_key(folder: Path) -> str:
    import PIL

    h = hashlib.sha256(b"lrkit-folder-files-v1\0")
    h.update(f"pillow={PIL.__version__}\0".encode())
    for path in list_images(folder):
        rel = path.relative_to(folder).as_posix()
        fh_hash = hashlib.sha256()
        size = 0
        with open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                fh_hash.update(chunk)
                size += len(chunk)
        h.update(f"{rel}\0{size}\0{fh_hash.hexdigest()}\n".encode())
    return h.hexdigest()


def content_key(src: ImageSource) -> str | None:
    """The content part of the cache key (see the module docstring), or ``None`` for uncacheable sources."""
    if isinstance(src, torch.Tensor):
        return "tensor:" + content_fingerprint(src)
    if isinstance(src, (str, Path)):
        return "folder:" + _folder_key(Path(src))
    if iter(src) is not src:  # re-iterable: fingerprinting does not consume it
        return "tensor:" + content_fingerprint(src)
    return None


def _key_document(key_parts: dict, content: str) -> str:
    missing = [k for k in REQUIRED_KEYS if k not in key_parts]
    if missing:
        raise ValueError(f"feature-cache key_parts lack {missing}; every entry must name the extractor, the protocol "
                         "version and the weights' sha256")
    return json.dumps({"parts": key_parts, "content": content}, sort_keys=True, default=str)


def cache_path(key_document: str) -> Path:
    return cache_dir("features") / (hashlib.sha256(key_document.encode()).hexdigest() + ".npz")


def _load(path: Path, key_document: str) -> tuple[np.ndarray, np.ndarray, int] | None:
    """The entry at ``path`` if it is complete and belongs to ``key_document``; ``None`` otherwise (recompute)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key_document:  # a sha256 collision or a foreign file: never trust it
                return None
            mu, sigma, n = z["mu"], z["sigma"], int(z["n"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    d = mu.shape[0] if mu.ndim == 1 else -1
    if d <= 0 or sigma.shape != (d, d) or n < 1 or not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        return None
    return mu.astype(np.float64), sigma.astype(np.float64), n


def _store(path: Path, key_document: str, mu: np.ndarray, sigma: np.ndarray, n: int) -> None:
    # Uncompressed: a 2048x2048 float64 covariance does not compress, and the write stays fast.
    with atomic_open(path, "wb") as fh:
        np.savez(fh, mu=np.asarray(mu, np.float64), sigma=np.asarray(sigma, np.float64), n=np.int64(n),
                 key=np.array(key_document))


def cached_stats(
    src: ImageSource,
    key_parts: dict,
    compute_fn: Callable[[ImageSource], tuple[np.ndarray, np.ndarray, int]],
) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """``(mu, sigma, n, hit)`` for ``src``: from the cache when an entry for this content and key exists, else
    ``compute_fn(src) -> (mu, sigma, n)`` (then stored). One-shot iterators always compute (``hit=False``)."""
    _key_document(key_parts, "")  # validate key_parts for every source kind, cached or not
    content = content_key(src)
    if content is None:
        mu, sigma, n = compute_fn(src)
        return mu, sigma, int(n), False
    key_document = _key_document(key_parts, content)
    path = cache_path(key_document)
    entry = _load(path, key_document)
    if entry is not None:
        return (*entry, True)
    mu, sigma, n = compute_fn(src)
    _store(path, key_document, mu, sigma, int(n))
    return mu, sigma, int(n), False
