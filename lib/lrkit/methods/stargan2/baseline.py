"""StarGAN v2 as another paper's baseline: which model to use, and its protocol on a given val set.

The I2I-LR paper compares with StarGAN v2 in Tables 1-3 and Fig. 6 (``lrkit.methods.i2ilr.tables`` calls this
module; this module knows nothing of I2I-LR: it takes the val/train image sets and sizes).

Which model: a checkpoint the caller passes (``stargan_checkpoints[preset]``: an official ``*_nets_ema.ckpt`` or
an lrkit run's), else under the ``paper`` profile the official release when one exists for that setting
(CelebA-HQ 256 px; AFHQ is released at 256 px only, while I2I-LR's AFHQ tables are at 128 px, so that one is
trained), else the profile's preset trained (or reused/resumed) in the model cache (``lrkit.train.models``). A
release that is merely absent (offline) falls back to training and the table says so; a release that fails its
checksum stops with the checksum error (a corrupt or tampered file is never replaced silently).

The baseline is evaluated on the *same* val set as the method it is compared with (same images, same size), with StarGAN v2's own
protocol (``stargan2_eval``): reference-guided, 10 outputs per source, per task against the train images of the
target domain, averaged over tasks. Tables 1-2 use the official cross-domain tasks; Table 3 the same-domain task
of its AFHQ domain, as the I2I-LR paper states.
"""

from __future__ import annotations

from pathlib import Path

from lrkit.data.training_sets import ImageSet, open_images
from lrkit.methods.stargan2.evaluation import cross_domain_tasks, reference_guided_sets, same_domain_tasks, \
    score_reference_guided
from lrkit.evaluation.translations import U8Images, pool_images

__all__ = ["RELEASES", "baseline_checkpoint", "real_by_domain", "evaluate_baseline", "load_baseline"]

# Paper presets with an official release (weight names in lrkit.weights).
RELEASES = {"celebahq256": "stargan2_celeba_hq", "afhq256": "stargan2_afhq"}


def baseline_checkpoint(name: str, profile: str, runs_root: str | Path, *, checkpoints: dict | None = None,
                        may_train: bool = True,
                        data_root=None, device: str = "cpu", progress: bool = True, steps: int = 0,
                        batch_size: int = 0) -> tuple[str, str]:
    """``(checkpoint path, how it was obtained)`` for StarGAN v2 paper preset ``name`` under ``profile``; a trained
    one gets ``steps`` / ``batch_size`` > 0 instead of the preset's (a miniature; an official release is used as
    released)."""
    from lrkit import weights as W
    from lrkit.methods.stargan2.config import preset_for_profile
    from lrkit.methods.stargan2.task import ensure_trained
    from lrkit.train.shipped import is_shipped

    given = (checkpoints or {}).get(name)
    if given:
        return str(given), "given checkpoint"
    why = ""
    if profile == "paper" and name in RELEASES:
        try:
            return str(W.resolve(RELEASES[name], fetch_if_missing=True).path), "official release"
        except W.WeightsUnavailable as exc:  # absent (offline): train instead, and say so in the table
            why = f"; the official release is unavailable here ({str(exc).splitlines()[0][:160]})"
            print(f"StarGAN v2 {name}: official release not available ({exc}); training the preset instead")
        # W.WeightsChecksumError propagates: the notebook stops with the checksum error
    cfg = preset_for_profile(name, profile, steps, batch_size)
    ckpt = ensure_trained(cfg, runs_root, data_root=data_root, device=device, progress=progress, train=may_train)
    how = "shipped with lrkit" if is_shipped(ckpt) else "trained here"
    return str(ckpt), f"{how} ({cfg.preset}, {cfg.steps} steps){why}"


def real_by_domain(train: ImageSet, dataset: str, size: int, data_root=None) -> dict[str, object]:
    """The train images of each domain (the real set of StarGAN v2's per-task FID), as re-iterable sources."""
    if hasattr(train.pool, "images"):  # in memory (synthfaces)
        return {n: U8Images(train.pool.images[train.domain == i]) for i, n in enumerate(train.domain_names)}
    return {n: pool_images(open_images(dataset, "train", size, domains=(n,), data_root=data_root))
            for n in train.domain_names}


def _load(checkpoint: str, img_size: int, w_hpf: float | None, device: str):
    """The nets of a StarGAN v2 checkpoint, which must work at ``img_size`` px."""
    from lrkit.methods.stargan2.inference import load_stargan2

    nets = load_stargan2(checkpoint, device=device, img_size=img_size, w_hpf=w_hpf)
    if nets.img_size != img_size:
        raise ValueError(f"StarGAN v2 checkpoint {checkpoint} works at {nets.img_size} px but the setting it is "
                         f"compared in is at {img_size} px: pass a StarGAN v2 model of that size")
    return nets


def _official_w_hpf(name: str, checkpoint: str) -> float | None:
    """For an official file (no config inside) the preset says how it was trained; lrkit checkpoints say it
    themselves (None)."""
    from lrkit.methods.stargan2.inference import is_lrkit_checkpoint
    from lrkit.methods.stargan2.config import get_preset

    if is_lrkit_checkpoint(Path(checkpoint)):
        return None
    return get_preset(name).w_hpf


def load_baseline(name: str, img_size: int, *, profile: str, runs_root: str | Path, checkpoints: dict | None = None,
                  data_root=None, device: str = "cpu", progress: bool = True, steps: int = 0, batch_size: int = 0,
                  may_train: bool = True):
    """``(nets, checkpoint, source)`` of StarGAN v2 paper preset ``name`` at ``img_size`` px under ``profile``
    (``may_train=False``: a shipped or already trained model only)."""
    ckpt, source = baseline_checkpoint(name, profile, runs_root, checkpoints=checkpoints, data_root=data_root,
                                       device=device, progress=progress, steps=steps, batch_size=batch_size,
                                       may_train=may_train)
    return _load(ckpt, img_size, _official_w_hpf(name, ckpt), device), ckpt, source


def evaluate_baseline(name: str, same_domain: str | None, val: ImageSet, train: ImageSet, metrics: list[str], *,
                      hr_size: int, lr_size: int, dataset: str, profile: str, runs_root: str | Path, n_sources: int,
                      checkpoints: dict | None = None, data_root=None, device: str = "cpu", results_file=None,
                      context: dict | None = None, probes=None, progress: bool = True, steps: int = 0,
                      batch_size: int = 0, may_train: bool = True) -> dict:
    """StarGAN v2 (paper preset ``name``) on the ``val`` images (``hr_size`` px; LR error measured at
    ``lr_size``) against the ``train`` images. ``same_domain``: None = the official cross-domain tasks; a domain
    name = that domain's same-domain task (the I2I-LR paper's Table 3). Returns ``{"records": aggregated,
    "per_task": ..., "checkpoint": path, "source": how obtained, "label": model label, "sets": ...}``."""
    nets, ckpt, source = load_baseline(name, hr_size, profile=profile, runs_root=runs_root, checkpoints=checkpoints,
                                       data_root=data_root, device=device, progress=progress, steps=steps,
                                       batch_size=batch_size, may_train=may_train)
    tasks = same_domain_tasks([same_domain]) if same_domain else cross_domain_tasks(val.domain_names)
    sets = reference_guided_sets(nets, val, tasks, n_sources=n_sources, lr_size=lr_size)
    real = real_by_domain(train, dataset, hr_size, data_root)
    ctx = {**(context or {}), "checkpoint": nets.label, "baseline_source": source}
    # Sets at most as large as Inception's 2048 feature dimensions have singular covariances: computed with
    # allow_singular and flagged in their records (as the I2I-LR rows).
    small = dataset == "synthfaces" or min(min(len(t.translations.flat) for t in sets), len(train)) <= 2048
    agg, per_task = score_reference_guided(sets, val, real, metrics, device=device, results_file=results_file,
                                           context=ctx, probes=probes, allow_singular=small)
    return {"records": agg, "per_task": per_task, "checkpoint": ckpt, "source": source, "label": nets.label,
            "sets": sets}
