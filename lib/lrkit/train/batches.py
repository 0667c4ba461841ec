"""Training batches as a pure function of the step, so a resumed run sees exactly the batches it would have seen.

The images of epoch ``e`` are visited in the order ``randperm(N)`` drawn from a generator seeded with
``(seed, e)``; step ``s`` takes positions ``[s B, (s + 1) B)`` of the concatenated epochs. Horizontal flips come
from a generator seeded with ``(seed, s)``. Nothing depends on a global RNG or on how many batches were drawn
before, which is what makes ``--resume`` exact (the public I2I-LR and StarGAN v2 code restart their loaders).
"""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np
import torch

from lrkit.data.pools import ImagePool

__all__ = ["StepSampler", "batch_for_step"]

_FLIP_STREAM = 0x5EED_F11B  # distinct seed streams for the order and the flips


def _generator(*keys: int) -> torch.Generator:
    # Combine small integers into one 63-bit seed through numpy's SeedSequence (well mixed, deterministic).
    seed = int(np.random.SeedSequence([int(k) & 0xFFFFFFFF for k in keys]).generate_state(2, np.uint32)
               .astype(np.uint64).dot(np.array([1, 2 ** 32], np.uint64)) & np.uint64(2 ** 63 - 1))
    return torch.Generator().manual_seed(seed)


@dataclass(frozen=True)
class StepSampler:
    n: int  # images in the training set
    batch_size: int
    seed: int

    def __post_init__(self) -> None:
        if self.n < self.batch_size:
            raise ValueError(f"the training set has {self.n} images, fewer than one batch ({self.batch_size}); "
                             "add images or lower the batch size")

    def _perm(self, epoch: int) -> torch.Tensor:
        return torch.randperm(self.n, generator=_generator(self.seed, epoch))

    def indices(self, step: int) -> list[int]:
        """Dataset indices of the batch of 0-based ``step`` (B distinct indices unless the batch spans epochs)."""
        start = step * self.batch_size
        out: list[int] = []
        while len(out) < self.batch_size:
            epoch, pos = divmod(start + len(out), self.n)
            take = min(self.batch_size - len(out), self.n - pos)
            out.extend(self._perm(epoch)[pos:pos + take].tolist())
        return out

    def flips(self, step: int) -> torch.Tensor:
        """Bool [B]: which images of the batch are mirrored."""
        return torch.rand(self.batch_size, generator=_generator(self.seed, _FLIP_STREAM, step)) < 0.5


def batch_for_step(pool: ImagePool, sampler: StepSampler, step: int, hflip: bool) -> torch.Tensor:
    """[B, 3, H, W] in [-1, 1]: the images of ``step``, mirrored where ``sampler.flips(step)`` says (if hflip)."""
    x = pool.get(sampler.indices(step))
    if hflip:
        f = sampler.flips(step)
        x = torch.where(f[:, None, None, None], x.flip(-1), x)
    return x
