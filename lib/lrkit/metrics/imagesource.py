"""What a metric reads images from: a tensor, a folder of image files, or an iterable of batches.

Every metric takes "image sources" so the same code serves notebooks (tensors straight from a generator), the
command line (folders) and 10k-sample evaluations (iterables, never all in memory at once).
Convention: batches are float32 tensors [B, 3, H, W] in [-1, 1]; all images of one source share one size.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lrkit.data.folders import IMAGE_EXTENSIONS, to_rgb
from lrkit.data.ops import from_uint8

ImageSource = torch.Tensor | str | Path | Iterable[torch.Tensor]


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in ``folder`` or below it, sorted by relative path (pairing is by that path)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} does not exist")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise ValueError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) in {folder}")
    return files


def load_image_tensor(path: Path) -> torch.Tensor:
    """One file as [3, H, W] in [-1, 1], converted to RGB (8-bit) the way the data loaders do."""
    with Image.open(path) as im:
        arr = np.asarray(to_rgb(im), dtype=np.uint8)
    return from_uint8(arr)


def _check_batch(x: torch.Tensor, what: str) -> torch.Tensor:
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"{what}: expected images [N, 3, H, W], got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{what}: images contain NaN or Inf values; check the generator's output")
    return x.float()


def iter_batches(src: ImageSource, batch_size: int = 50, what: str = "images") -> Iterator[torch.Tensor]:
    """Yield [B, 3, H, W] batches in [-1, 1]; a size change inside one source is an error."""
    size = None
    if isinstance(src, torch.Tensor):
        gen: Iterable[torch.Tensor] = (src[i:i + batch_size] for i in range(0, len(src), batch_size))
    elif isinstance(src, (str, Path)):
        files = list_images(src)

        def from_files():
            for i in range(0, len(files), batch_size):
                imgs = [load_image_tensor(p) for p in files[i:i + batch_size]]
                shapes = {tuple(t.shape) for t in imgs}
                if len(shapes) > 1:
                    raise ValueError(f"{what}: images of different sizes in {src} ({sorted(shapes)}); resize them "
                                     "to one size first")
                yield torch.stack(imgs)

        gen = from_files()
    else:
        gen = iter(src)
    n = 0
    for batch in gen:
        batch = _check_batch(batch, what)
        if size is None:
            size = batch.shape[-2:]
        elif batch.shape[-2:] != size:
            raise ValueError(f"{what}: image size changed from {tuple(size)} to {tuple(batch.shape[-2:])}")
        n += len(batch)
        yield batch
    if n == 0:
        raise ValueError(f"{what}: the image set is empty")


def materialize(src: ImageSource, what: str = "images") -> torch.Tensor:
    """All images of a source as one tensor (for small sets and pairwise metrics)."""
    return torch.cat(list(iter_batches(src, 256, what)))


def content_fingerprint(src: ImageSource) -> str:
    """sha256 over the images' 8-bit content and shapes: the cache key of a set's feature statistics.

    Images are quantized to 8 bits first, so a folder and the tensor it was saved from share a fingerprint.
    """
    h = hashlib.sha256(b"lrkit-images-v1")
    for batch in iter_batches(src, 64):
        u8 = ((batch.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        h.update(str(tuple(u8.shape[1:])).encode())
        h.update(u8.numpy().tobytes())
    return h.hexdigest()
