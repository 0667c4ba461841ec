"""The StarGAN v2 baseline next to I2I-LR: its rows in Tables 1-3 and the Fig. 6 comparison.

Which model: a checkpoint the caller passes (``stargan_checkpoints[preset]``: an official ``*_nets_ema.ckpt`` or
an lrkit run's), else under the ``paper`` profile the official release when one exists for that setting
(CelebA-HQ 256 px; AFHQ is released at 256 px only, while I2I-LR's AFHQ tables are at 128 px, so that one is
trained), else the profile's preset trained (or reused/resumed) like the I2I-LR models
(``i2ilr_tables.ensure_model``).

The baseline is evaluated on the *same* val set as I2I-LR (same images, same size), with StarGAN v2's own
protocol (``stargan2_eval``): reference-guided, 10 outputs per source, per task against the train images of the
target domain, averaged over tasks. Tables 1-2 use the official cross-domain tasks; Table 3 the same-domain task
of its AFHQ domain, as the I2I-LR paper states.
"""

from __future__ import annotations

from pathlib import Path

from lrkit.data.training_sets import ImageSet, open_images
from lrkit.evaluation.stargan2_eval import cross_domain_tasks, reference_guided_sets, same_domain_tasks, \
    score_reference_guided
from lrkit.evaluation.translations import U8Images, pool_images

__all__ = ["RELEASES", "baseline_checkpoint", "real_by_domain", "evaluate_baseline", "figure_vs_stargan"]

# Paper presets with an official release (weight names in lrkit.weights).
RELEASES = {"celebahq256": "stargan2_celeba_hq", "afhq256": "stargan2_afhq"}


def baseline_checkpoint(name: str, profile: str, runs_root: str | Path, *, checkpoints: dict | None = None,
                        data_root: str | None = None, device: str = "cpu", progress: bool = True) -> tuple[str, str]:
    """``(checkpoint path, how it was obtained)`` for StarGAN v2 paper preset ``name`` under ``profile``."""
    from lrkit import weights as W
    from lrkit.evaluation.i2ilr_tables import ensure_model
    from lrkit.train.stargan2_config import preset_for_profile

    given = (checkpoints or {}).get(name)
    if given:
        return str(given), "given checkpoint"
    if profile == "paper" and name in RELEASES:
        try:
            return str(W.resolve(RELEASES[name], fetch_if_missing=True).path), "official release"
        except (W.WeightsUnavailable, W.WeightsChecksumError, OSError) as exc:
            print(f"StarGAN v2 {name}: official release not available ({exc}); training the preset instead")
    cfg = preset_for_profile(name, profile)
    return str(ensure_model(cfg, runs_root, data_root=data_root, device=device, progress=progress)), \
        f"trained here ({cfg.preset})"


def real_by_domain(train: ImageSet, dataset: str, size: int, data_root: str | None = None) -> dict[str, object]:
    """The train images of each domain (the real set of StarGAN v2's per-task FID), as re-iterable sources."""
    if hasattr(train.pool, "images"):  # in memory (synthfaces)
        return {n: U8Images(train.pool.images[train.domain == i]) for i, n in enumerate(train.domain_names)}
    return {n: pool_images(open_images(dataset, "train", size, domains=(n,), data_root=data_root))
            for n in train.domain_names}


def _load(checkpoint: str, img_size: int, w_hpf: float | None, device: str):
    from lrkit.inference.stargan2 import load_stargan2

    nets = load_stargan2(checkpoint, device=device, img_size=img_size, w_hpf=w_hpf)
    if nets.img_size != img_size:
        raise ValueError(f"StarGAN v2 checkpoint {checkpoint} works at {nets.img_size} px but the I2I-LR setting "
                         f"it is compared with is at {img_size} px: pass a StarGAN v2 model of that size")
    return nets


def _official_w_hpf(name: str, checkpoint: str) -> float | None:
    """For an official file (no config inside) the preset says how it was trained; lrkit checkpoints say it
    themselves (None)."""
    from lrkit.inference.stargan2 import is_lrkit_checkpoint
    from lrkit.train.stargan2_config import get_preset

    if is_lrkit_checkpoint(Path(checkpoint)):
        return None
    return get_preset(name).w_hpf


def evaluate_baseline(name: str, same_domain: str | None, result: dict, i2ilr_cfg, metrics: list[str], *,
                      profile: str, runs_root: str | Path, n_sources: int, checkpoints: dict | None = None,
                      data_root: str | None = None, device: str = "cpu", results_file=None,
                      context: dict | None = None, probes=None, progress: bool = True) -> dict:
    """StarGAN v2 (paper preset ``name``) on the val/train sets of an I2I-LR evaluation ``result``
    (``i2ilr_tables.evaluate_preset``'s). ``same_domain``: None = the official cross-domain tasks; a domain
    name = that domain's same-domain task (Table 3). Returns ``{"records": aggregated, "per_task": ...,
    "checkpoint": path, "source": how obtained, "label": model label}``."""
    ckpt, source = baseline_checkpoint(name, profile, runs_root, checkpoints=checkpoints, data_root=data_root,
                                       device=device, progress=progress)
    nets = _load(ckpt, i2ilr_cfg.hr_size, _official_w_hpf(name, ckpt), device)
    val: ImageSet = result["val"]
    tasks = same_domain_tasks([same_domain]) if same_domain else cross_domain_tasks(val.domain_names)
    sets = reference_guided_sets(nets, val, tasks, n_sources=n_sources, lr_size=i2ilr_cfg.lr_size)
    real = real_by_domain(result["train"], i2ilr_cfg.dataset, i2ilr_cfg.hr_size, data_root)
    ctx = {**(context or {}), "checkpoint": nets.label, "baseline_source": source}
    agg, per_task = score_reference_guided(sets, val, real, metrics, device=device, results_file=results_file,
                                           context=ctx, probes=probes, allow_singular=i2ilr_cfg.dataset == "synthfaces")
    return {"records": agg, "per_task": per_task, "checkpoint": ckpt, "source": source, "label": nets.label,
            "sets": sets}


def figure_vs_stargan(ctx, i2ilr_name: str, stargan_name: str, *, n_sources: int = 4, n_targets: int = 5,
                      data_root: str = "", device: str = "cpu", checkpoints: dict | None = None,
                      stargan_checkpoints: dict | None = None, progress: bool = True):
    """The paper's Fig. 6: the same HR sources; I2I-LR is given the LR targets, StarGAN v2 the corresponding HR
    images as references (their own domain). Returns ``(figure, info)``."""
    from lrkit.data.ops import make_lr
    from lrkit.evaluation.i2ilr_tables import ensure_model
    from lrkit.inference.i2ilr import load_i2ilr, translate
    from lrkit.inference.stargan2 import translate_ref
    from lrkit.train.i2ilr_config import preset_for_profile
    from lrkit.train.i2ilr_task import open_val_set
    from lrkit.viz import show_grid, versus_grid

    cfg = preset_for_profile(i2ilr_name, ctx.profile.name)
    runs_root = Path(ctx.run_dir).parent
    ckpt = (checkpoints or {}).get(i2ilr_name) or ensure_model(cfg, runs_root, data_root=data_root or None,
                                                              device=device, progress=progress)
    model = load_i2ilr(ckpt, device=device, expect={"hr_size": cfg.hr_size, "lr_size": cfg.lr_size})
    s_ckpt, source = baseline_checkpoint(stargan_name, ctx.profile.name, runs_root, checkpoints=stargan_checkpoints,
                                         data_root=data_root or None, device=device, progress=progress)
    nets = _load(s_ckpt, cfg.hr_size, _official_w_hpf(stargan_name, s_ckpt), device)
    val = open_val_set(cfg, data_root or None, n=max(cfg.synth_n_val, n_sources + n_targets))
    if len(val) < n_sources + n_targets:
        raise ValueError(f"the val set has {len(val)} images; the figure needs {n_sources + n_targets}")
    src = val.pool.get(list(range(n_sources)))
    tgt_idx = list(range(n_sources, n_sources + n_targets))
    refs = val.pool.get(tgt_idx)
    lr = make_lr(refs, cfg.lr_size)
    ref_domains = [val.domain_names[int(val.domain[i])] for i in tgt_idx]
    S, T = n_sources, n_targets
    ours = translate(model.G, src.repeat_interleave(T, 0), lr.repeat(S, 1, 1, 1)).view(S, T, *src.shape[1:])
    theirs = translate_ref(nets, src.repeat_interleave(T, 0), refs.repeat(S, 1, 1, 1), ref_domains * S)
    grid = versus_grid(src, lr, refs, ours, theirs.view(S, T, *src.shape[1:]))
    title = (f"Fig. 6 layout: LR targets on top, the same targets' HR images (StarGAN v2's references) at the "
             f"bottom; for each source (left) I2I-LR {cfg.preset} ({model.label}) then StarGAN v2 ({nets.label}, "
             f"{source})")
    fig = show_grid(grid, title)
    label = ctx.record_dataset(val.name + "-val", val.fingerprint, n=len(val))
    ctx.record("model", preset=cfg.preset, checkpoint=str(ckpt))
    ctx.record("model", preset=stargan_name, checkpoint=str(s_ckpt), source=source)
    return fig, {"dataset": label, "weights": f"{model.label}; {nets.label}", "grid": grid,
                 "outputs": {"ours": ours, "stargan": theirs}}
