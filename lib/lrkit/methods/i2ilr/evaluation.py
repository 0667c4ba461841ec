"""I2I-LR evaluated with its paper's protocol (Table 1: ten random HR sources per LR target of the val split) and
the kit's offline metrics; the tables built from it are specified in ``lrkit.methods.i2ilr.tables``.
"""

from __future__ import annotations

from pathlib import Path

from lrkit.data.training_sets import ImageSet, first_images
from lrkit.evaluation.translations import bicubic_baseline, pool_images, score, translate_eval_set
from lrkit.methods.i2ilr.config import I2ILRConfig
from lrkit.methods.i2ilr.inference import load_i2ilr, translate
from lrkit.methods.i2ilr.task import open_training_set, open_val_set

__all__ = ["evaluate_preset", "offline_metrics"]


def offline_metrics(cfg: I2ILRConfig) -> list[str]:
    """Metrics that need no download: the LR error, EfficientNet-Lite0 features, and on synthfaces the factors."""
    names = ["lr_consistency", "fd_efficientnet_lite0"]
    if cfg.dataset == "synthfaces":
        names.insert(1, "synthfaces_factors")
    return names


def evaluate_preset(cfg: I2ILRConfig, checkpoint: str | Path, metrics: list[str], *, n_targets: int,
                    n_per_target: int = 10, data_root=None, device: str = "cpu",
                    results_file=None, context: dict | None = None, probes=None, baseline: bool = True,
                    expect: dict | None = None, n_real: int = 0) -> dict:
    """Translate the protocol's pairs with the checkpoint's G_ema (and the bicubic baseline) and score them.

    Returns ``{"records": {method: [records]}, "sets": {method: TranslationSet}, "train": ImageSet,
    "val": ImageSet, "model": LoadedGenerator}``; ``n_real`` > 0: the set metrics' real set (and the returned
    "train") is the training set's first ``n_real`` images (``first_images``, labelled so). Small synthetic sets
    are smaller than the feature dimensions, so Fréchet distances are computed with ``allow_singular`` there (and
    flagged in their records).
    """
    model = load_i2ilr(checkpoint, device=device,
                       expect=expect or {"hr_size": cfg.hr_size, "lr_size": cfg.lr_size})
    train_set: ImageSet = first_images(open_training_set(cfg, data_root), n_real)
    val: ImageSet = open_val_set(cfg, data_root)
    if len(val) < n_per_target + 1:
        raise ValueError(f"the val set has {len(val)} images: too few for {n_per_target} sources per target "
                         f"(need {n_per_target + 1})")
    n_targets = min(n_targets, len(val))
    ctx = {"preset": cfg.preset, "checkpoint": model.label, "val": val.label, "train": train_set.label,
           **(context or {})}
    sets = {"Ours": translate_eval_set(lambda src, lr: translate(model.G, src, lr, batch_size=32), val, cfg.lr_size,
                                       n_targets=n_targets, n_per_target=n_per_target, method="Ours")}
    if baseline:
        b = bicubic_baseline(val, cfg.lr_size, cfg.hr_size, n_targets=n_targets, n_per_target=n_per_target)
        sets[b.method] = b
    real = pool_images(train_set)
    # Sets smaller than the largest feature dimension (Inception's 2048) have singular covariances: the Fréchet
    # distances are then computed with allow_singular and flagged in their records (never silently).
    small = cfg.dataset == "synthfaces" or min(n_targets * n_per_target, len(train_set)) <= 2048
    records = {m: score(s, val, real, metrics, device=device, results_file=results_file, context=ctx,
                        probes=probes, allow_singular=small) for m, s in sets.items()}
    return {"records": records, "sets": sets, "train": train_set, "val": val, "model": model}
