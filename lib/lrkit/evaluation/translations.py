"""Translation sets for the I2I-LR tables and the metrics run on them.

Protocol (I2I-LR Table 1: "same procedure as StarGAN v2, but ten HR images (sources) sampled for each LR target"):
the first ``n_targets`` images of the val split are the targets (their LR images, ``make_lr``: average pooling +
8-bit quantization); for each, ``n_per_target`` (10) distinct sources are drawn from the whole val split without
the target itself (seed 777, StarGAN v2's evaluation seed). The outputs of one target form one group of LPIPS
diversity (45 pairs); the set metrics (FID, PRDC, Fréchet distances) compare all ``T x K`` outputs with the real
set, which for FID is the TRAIN split of the target domain (StarGAN v2's choice).

Outputs are kept as uint8 (what PNGs would hold; every metric quantizes anyway), e.g. 500 targets x 10 at 128 px
= 246 MB. Paper-scale runs at 256 px (CelebA-HQ val: 2,000 targets -> 3.9 GB) should pass ``n_targets`` or run
on a machine with the memory.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import torch

from lrkit.data.ops import from_uint8, make_lr, to_uint8
from lrkit.data.training_sets import ImageSet
from lrkit.fsutil import append_jsonl
from lrkit.metrics import factor_probes, registry

__all__ = ["TranslationSet", "sample_sources_per_target", "translate_eval_set", "bicubic_baseline", "score", "U8Images", "pool_images",
           "SET_METRICS", "EVAL_SEED"]

EVAL_SEED = 777  # StarGAN v2's evaluation seed
SET_METRICS = ("fid_starganv2", "fid_pytorchfid", "prdc_vgg16", "fd_efficientnet_lite0", "prdc_efflite0")


class U8Images:
    """A re-iterable image source over uint8 [N, H, W, 3] (or grouped [N, K, H, W, 3]) that yields float batches
    in [-1, 1] ([B, 3, H, W] or [B, K, 3, H, W]); every metric can iterate it as often as it needs."""

    def __init__(self, images: np.ndarray, batch_size: int = 64) -> None:
        self.images, self.batch_size = images, batch_size

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __iter__(self):
        for i in range(0, len(self), self.batch_size):
            chunk = self.images[i:i + self.batch_size]
            if chunk.ndim == 5:  # [B, K, H, W, 3] -> [B, K, 3, H, W]
                b, k = chunk.shape[:2]
                yield from_uint8(chunk.reshape(b * k, *chunk.shape[2:])).view(b, k, 3, *chunk.shape[2:4])
            else:
                yield from_uint8(chunk)


def pool_images(images: ImageSet, batch_size: int = 64):
    """An image source over a whole ``ImageSet``, re-iterable, so the feature caches key it by content: in-memory
    images as ``U8Images``; a real folder as its path when the set is exactly one folder (one domain, or every
    domain of a split); else batches loaded from disk."""
    pool = images.pool
    if hasattr(pool, "images"):
        return U8Images(pool.images, batch_size)
    ds = getattr(pool, "dataset", None)
    if ds is not None and not ds.skipped and ds.layout != "flat":
        base = ds.root / ds.split if ds.split else ds.root
        subdirs = sorted(p.name for p in base.iterdir() if p.is_dir())
        if len(ds.domain_names) == 1:
            return str(base / ds.domain_names[0])
        if subdirs == sorted(ds.domain_names):  # every domain of the split: the split's folder
            return str(base)

    class _Pool:
        def __iter__(self_inner):
            for i in range(0, len(pool), batch_size):
                yield pool.get(list(range(i, min(i + batch_size, len(pool)))))

    return _Pool()


@dataclass
class TranslationSet:
    method: str
    outputs: np.ndarray  # uint8 [T, K, H, W, 3]: K outputs per group (an LPIPS-diversity group)
    source_idx: np.ndarray  # int64 [T, K]: val indices of the sources
    # int64 [T]: one target per group (I2I-LR: a group = one LR target's K sources), or [T, K]: one per output
    # (StarGAN v2: a group = one source's K outputs, each with its own reference)
    target_idx: np.ndarray
    targets_lr: torch.Tensor | None  # [T, 3, l, l] (per group) or [T * K, 3, l, l] (per output), in [-1, 1]
    info: dict = field(default_factory=dict)

    @property
    def flat(self) -> np.ndarray:
        return self.outputs.reshape(-1, *self.outputs.shape[2:])

    def flat_target_idx(self) -> np.ndarray:
        """[T * K]: the target (reference) of every output, in ``flat`` order."""
        if self.target_idx.ndim == 2:
            return self.target_idx.reshape(-1)
        return np.repeat(self.target_idx, self.outputs.shape[1])

    def flat_targets_lr(self) -> torch.Tensor:
        if self.targets_lr is None:
            raise ValueError(f"{self.method}: this translation set has no LR targets (lr_consistency needs them)")
        if self.target_idx.ndim == 2:
            return self.targets_lr
        return self.targets_lr.repeat_interleave(self.outputs.shape[1], 0)


def _pairs(val: ImageSet, n_targets: int, n_per_target: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if n_targets < 1 or n_targets > len(val):
        raise ValueError(f"n_targets must be in 1..{len(val)} (val images), got {n_targets}")
    target_idx = np.arange(n_targets, dtype=np.int64)
    return target_idx, sample_sources_per_target(len(val), target_idx, n_per_target, seed)


def translate_eval_set(translate_fn, val: ImageSet, lr_size: int, *, n_targets: int, n_per_target: int = 10,
                       seed: int = EVAL_SEED, method: str = "Ours") -> TranslationSet:
    """A method's outputs for every (target, one of its ``n_per_target`` sources) pair of the protocol.

    ``translate_fn(sources [K, 3, H, W], targets_lr [K, 3, l, l]) -> [K, 3, H, W]`` in [-1, 1] is the method
    (e.g. I2I-LR's G_ema through ``methods.i2ilr.inference.translate``); this module knows no method.
    """
    target_idx, source_idx = _pairs(val, n_targets, n_per_target, seed)
    targets_lr = make_lr(val.pool.get(target_idx.tolist()), lr_size)
    K = n_per_target
    out = None
    for t in range(n_targets):
        src = val.pool.get(source_idx[t].tolist())
        u8 = to_uint8(translate_fn(src, targets_lr[t:t + 1].expand(K, -1, -1, -1)))
        if out is None:
            out = np.empty((n_targets, K, *u8.shape[1:]), np.uint8)
        out[t] = u8
    return TranslationSet(method, out, source_idx, target_idx, targets_lr)


def bicubic_baseline(val: ImageSet, lr_size: int, hr_size: int, *, n_targets: int, n_per_target: int = 10,
                     seed: int = EVAL_SEED) -> TranslationSet:
    """The trivial method that ignores the source: the LR target upsampled bicubically (clamped to [-1, 1]),
    repeated for every source of the protocol (so diversity is 0 and identity is what chance gives)."""
    target_idx, source_idx = _pairs(val, n_targets, n_per_target, seed)
    targets_lr = make_lr(val.pool.get(target_idx.tolist()), lr_size)
    up = torch.nn.functional.interpolate(targets_lr, size=(hr_size, hr_size), mode="bicubic",
                                         align_corners=False).clamp(-1, 1)
    u8 = to_uint8(up)
    out = np.repeat(u8[:, None], n_per_target, axis=1)
    return TranslationSet("Bicubic-upsampled LR target", out, source_idx, target_idx, targets_lr)


def _take(factors: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[idx] for k, v in factors.items()}


def score(ts: TranslationSet, val: ImageSet, real, metrics: list[str], *, device: str = "cpu",
          results_file=None, context: dict | None = None, probes=None, allow_singular: bool = False,
          ) -> list[dict]:
    """Run ``metrics`` on a translation set; returns ``registry.evaluate``-style records (one per metric).

    ``real``: the real set of the set metrics (an image source, e.g. ``pool_images(train_set)``). Besides the
    registry's names, ``synthfaces_factors`` (identity/faithfulness by the factor probes; synthfaces only) is
    accepted. Unavailable weights give an "unavailable" record, never a substitute.
    """
    context = {"method": ts.method, **(context or {})}
    flat = U8Images(ts.flat)
    records: list[dict] = []
    for name in metrics:
        if name == "synthfaces_factors":
            if val.factors is None:
                raise ValueError("synthfaces_factors needs a synthfaces val set (true factors of the images)")
            src = _take(val.factors, ts.source_idx.reshape(-1))
            tgt = _take(val.factors, ts.flat_target_idx())
            vals = factor_probes.synthfaces_factors(flat, src, tgt, variant=val.variant, probes=probes,
                                                    device=device)
            rec = {"metric": name, "status": "ok", "values": vals, "reason": "",
                   "weights": [f"synthfaces factor probes (trained here, cached by content; min fine val accuracy "
                               f"{vals.get('probe_min_fine_accuracy', float('nan')):.3f})"],
                   "weights_files": [],
                   "time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), **context}
            if results_file:
                append_jsonl(results_file, rec)
            records.append(rec)
            continue
        spec = registry.get_metric(name)
        opts: dict = {"device": device}
        if name in ("fid_starganv2", "fid_pytorchfid", "fd_efficientnet_lite0"):
            opts["allow_singular"] = allow_singular
        if spec.inputs == "groups":
            real_arg, fake_arg = None, U8Images(ts.outputs, batch_size=8)
        elif name == "lr_consistency":
            real_arg, fake_arg = ts.flat_targets_lr(), flat
        elif spec.inputs == "sets":
            real_arg, fake_arg = real, flat
        else:
            raise ValueError(f"metric {name!r} compares with ground truth, which translations do not have")
        records += registry.evaluate([name], real=real_arg, fake=fake_arg, results_file=results_file,
                                     context=context, **{name: opts})
    return records


def sample_sources_per_target(n_sources: int, target_ids, n_per_target: int = 10, seed: int = 777,
                              exclude_same: bool = True) -> np.ndarray:
    """Table 1's protocol: for every LR target, ``n_per_target`` distinct HR sources drawn at random (seeded)
    from a pool of ``n_sources`` -> int64 [T, n_per_target].

    ``target_ids[t]``: the target's own index in the source pool (or -1 when it is not in it); with
    ``exclude_same`` a target is never translated with its own HR image as source.
    """
    target_ids = np.asarray(target_ids, np.int64)
    need = n_per_target + (1 if exclude_same else 0)
    if n_sources < need:
        raise ValueError(f"{n_per_target} sources per target need a pool of at least {need} images, got "
                         f"{n_sources}")
    rng = np.random.default_rng(seed)
    out = np.empty((len(target_ids), n_per_target), np.int64)
    for t, own in enumerate(target_ids):
        pool = np.arange(n_sources)
        if exclude_same and own >= 0:
            pool = pool[pool != own]
        out[t] = rng.choice(pool, size=n_per_target, replace=False)
    return out
