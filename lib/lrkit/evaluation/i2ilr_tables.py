"""The I2I-LR tables' shared steps: get a trained model for a preset, evaluate it with the paper's protocol and
the offline metrics, and the column definitions.

``ensure_model`` makes notebooks cheap to re-run: a preset's model lives in ``<runs>/models/i2ilr/<preset>-<h>``
(``h`` = hash of the whole config, so a changed config never reuses a stale model); a finished one is reused, an
unfinished one is resumed, and a file lock keeps two notebooks of a parallel batch from training the same model
twice. A user with a checkpoint (e.g. trained for days with ``lrkit train i2ilr``) passes it instead.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
from pathlib import Path

from lrkit.data.training_sets import ImageSet
from lrkit.evaluation.paper_compare import cells_from_records
from lrkit.evaluation.translations import bicubic_baseline, pool_images, score, translate_eval_set
from lrkit.inference.i2ilr import load_i2ilr
from lrkit.train.checkpoint import load_checkpoint
from lrkit.train.i2ilr_config import I2ILRConfig, preset_for_profile  # noqa: F401 (notebooks use it here)
from lrkit.train.i2ilr_task import open_training_set, open_val_set, train_i2ilr

__all__ = ["ensure_model", "evaluate_preset", "reproduce_table", "figure_grid", "default_n_targets", "PAPER_COLUMNS", "OFFLINE_COLUMNS", "offline_metrics",
           "model_dir"]

# Column name -> (metric, key). Paper columns carry the paper's names (suffix "@128" etc. added per table).
PAPER_COLUMNS = {
    "FID": ("fid_starganv2", "fid_starganv2"),
    "FID (pytorch-fid)": ("fid_pytorchfid", "fid_pytorchfid"),
    "LPIPS": ("lpips_diversity", "lpips_diversity"),
    "Density": ("prdc_vgg16", "density"),
    "Coverage": ("prdc_vgg16", "coverage"),
}
OFFLINE_COLUMNS = {
    "LR error (grey levels)": ("lr_consistency", "lr_error_mean"),
    "identity (fine factors)": ("synthfaces_factors", "identity_fine_agreement"),
    "faithfulness (coarse factors)": ("synthfaces_factors", "faithful_coarse_agreement"),
    "identity chance": ("synthfaces_factors", "chance_fine"),
    "FD EfficientNet-Lite0": ("fd_efficientnet_lite0", "fd_efficientnet_lite0"),
    "Density (EffNet-Lite0)": ("prdc_efflite0", "density"),
    "Coverage (EffNet-Lite0)": ("prdc_efflite0", "coverage"),
}


def offline_metrics(cfg: I2ILRConfig) -> list[str]:
    names = ["lr_consistency", "fd_efficientnet_lite0"]
    if cfg.dataset == "synthfaces":
        names.insert(1, "synthfaces_factors")
    return names


def _trainer(cfg):
    """(task name, train function) for an I2I-LR or a StarGAN v2 config."""
    from lrkit.train.stargan2_config import Stargan2Config

    if isinstance(cfg, Stargan2Config):
        from lrkit.train.stargan2_task import train_stargan2

        return "stargan2", train_stargan2
    if isinstance(cfg, I2ILRConfig):
        return "i2ilr", train_i2ilr
    raise TypeError(f"ensure_model takes an I2ILRConfig or a Stargan2Config, got {type(cfg).__name__}")


def model_dir(cfg, runs_root: str | Path) -> Path:
    h = hashlib.sha256(json.dumps(cfg.to_dict(), sort_keys=True).encode()).hexdigest()[:10]
    return Path(runs_root) / "models" / _trainer(cfg)[0] / f"{cfg.preset}-{h}"


def ensure_model(cfg, runs_root: str | Path, *, data_root: str | None = None, device: str = "cpu",
                 progress: bool = True) -> Path:
    """The checkpoint of ``cfg`` (an I2I-LR or StarGAN v2 config) trained to ``cfg.steps``: reused, resumed or
    trained (see module docstring)."""
    task, train_fn = _trainer(cfg)
    run_dir = model_dir(cfg, runs_root)
    run_dir.mkdir(parents=True, exist_ok=True)
    latest = run_dir / "checkpoints" / "latest.pt"
    with open(run_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes or the process dies
        try:
            if latest.exists():
                step = int(load_checkpoint(latest, task=task)["step"])
                if step >= cfg.steps:
                    return latest
            train_fn(cfg, run_dir, data_root=data_root, device=device, resume=latest.exists(), progress=progress)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return latest


def evaluate_preset(cfg: I2ILRConfig, checkpoint: str | Path, metrics: list[str], *, n_targets: int,
                    n_per_target: int = 10, data_root: str | None = None, device: str = "cpu",
                    results_file=None, context: dict | None = None, probes=None, baseline: bool = True,
                    expect: dict | None = None) -> dict:
    """Translate the protocol's pairs with the checkpoint's G_ema (and the bicubic baseline) and score them.

    Returns ``{"records": {method: [records]}, "sets": {method: TranslationSet}, "train": ImageSet,
    "val": ImageSet, "model": LoadedGenerator}``. Small synthetic sets are smaller than the feature dimensions,
    so Fréchet distances are computed with ``allow_singular`` there (and flagged in their records).
    """
    model = load_i2ilr(checkpoint, device=device,
                       expect=expect or {"hr_size": cfg.hr_size, "lr_size": cfg.lr_size})
    train_set: ImageSet = open_training_set(cfg, data_root)
    val: ImageSet = open_val_set(cfg, data_root)
    if len(val) < n_per_target + 1:
        raise ValueError(f"the val set has {len(val)} images: too few for {n_per_target} sources per target "
                         f"(need {n_per_target + 1})")
    n_targets = min(n_targets, len(val))
    ctx = {"preset": cfg.preset, "checkpoint": model.label, "val": val.label, "train": train_set.label,
           **(context or {})}
    sets = {"Ours": translate_eval_set(model.G, val, cfg.lr_size, n_targets=n_targets, n_per_target=n_per_target,
                                       method="Ours")}
    if baseline:
        b = bicubic_baseline(val, cfg.lr_size, cfg.hr_size, n_targets=n_targets, n_per_target=n_per_target)
        sets[b.method] = b
    real = pool_images(train_set)
    small = cfg.dataset == "synthfaces"
    records = {m: score(s, val, real, metrics, device=device, results_file=results_file, context=ctx,
                        probes=probes, allow_singular=small) for m, s in sets.items()}
    return {"records": records, "sets": sets, "train": train_set, "val": val, "model": model}


def cells(result: dict, suffix: str = "", offline: bool = True) -> dict[str, dict[str, object]]:
    """``{method: {column: value}}`` for ``with_paper`` from ``evaluate_preset``'s result."""
    cols = dict(PAPER_COLUMNS, **(OFFLINE_COLUMNS if offline else {}))
    return {m: cells_from_records(recs, cols, suffix) for m, recs in result["records"].items()}


def _weights_summary(records: list[dict]) -> str:
    labels = []
    for r in records:
        labels += r.get("weights", []) if r["status"] == "ok" else [f"{r['metric']}: unavailable (weights missing)"]
    return "; ".join(dict.fromkeys(labels)) or "none"


def reproduce_table(ctx, key: str, settings: dict[str, str], paper_columns: list[str], *, data_root: str = "",
                    device: str = "cpu", n_targets: int = 100, n_per_target: int = 10,
                    checkpoints: dict[str, str] | None = None, layout: str = "methods", offline: bool = True,
                    probe_size: int = 0, progress: bool = True, reported_only_notes: dict[str, str] | None = None,
                    method_names: dict[str, str] | None = None, extra_metrics: tuple[str, ...] = (),
                    stargan: dict[str, tuple[str, str | None]] | None = None,
                    stargan_checkpoints: dict[str, str] | None = None):
    """Train/reuse one model per setting, evaluate it, and build the table next to the paper's numbers.

    ``settings``: column suffix (e.g. "@128", or "LR 4x4" for ``layout="metrics"``) -> paper preset name (mapped to
    the run profile's preset by ``preset_for_profile``). ``paper_columns``: names of ``PAPER_COLUMNS`` to compute.
    ``extra_metrics``: further metrics (e.g. "prdc_efflite0", the offline stand-in of Table 2's VGG16 PRDC).
    ``layout``: "methods" (rows = methods, columns = metric + suffix: Tables 1-3) or "metrics" (rows = metrics,
    columns = settings: Table 4). ``checkpoints``: paper preset -> checkpoint file to use instead of training.
    ``stargan``: column suffix -> (StarGAN v2 paper preset, same-domain task's domain or None for the official
    cross-domain tasks): adds the "Stargan-v2" row, evaluated with StarGAN v2's protocol on the same val set
    (``stargan2_baseline``); ``stargan_checkpoints``: StarGAN v2 paper preset -> checkpoint (official or lrkit).
    Returns ``(table, results, info)`` where ``results[suffix]`` is ``evaluate_preset``'s output (plus
    ``"stargan"``: ``evaluate_baseline``'s).
    """
    from lrkit.evaluation.paper_compare import with_paper
    from lrkit.metrics.factor_probes import load_or_train_probes
    from lrkit.train.i2ilr_config import preset_for_profile

    metrics = list(dict.fromkeys([PAPER_COLUMNS[c][0] for c in paper_columns] + list(extra_metrics)))
    runs_root = Path(ctx.run_dir).parent
    results, cells_by_method, datasets, weights = {}, {}, [], []
    for suffix, name in settings.items():
        cfg = preset_for_profile(name, ctx.profile.name)
        ckpt = (checkpoints or {}).get(name) or ensure_model(cfg, runs_root, data_root=data_root or None,
                                                            device=device, progress=progress)
        ctx.record("model", preset=cfg.preset, checkpoint=str(ckpt))
        mets = metrics + (offline_metrics(cfg) if offline else [])
        probes = None
        if "synthfaces_factors" in mets and probe_size:
            probes = load_or_train_probes(cfg.synth_variant, probe_size, device=device)
        res = evaluate_preset(cfg, ckpt, mets, n_targets=n_targets, n_per_target=n_per_target,
                              data_root=data_root or None, device=device, results_file=ctx.run_dir / "metrics.jsonl",
                              context={"run_id": ctx.run_id, "notebook": ctx.notebook, "setting": suffix},
                              probes=probes)
        results[suffix] = res
        if stargan and suffix in stargan:
            from lrkit.evaluation.stargan2_baseline import evaluate_baseline

            s_name, same = stargan[suffix]
            base = evaluate_baseline(s_name, same, res, cfg, mets, profile=ctx.profile.name, runs_root=runs_root,
                                     n_sources=n_targets, checkpoints=stargan_checkpoints,
                                     data_root=data_root or None, device=device,
                                     results_file=ctx.run_dir / "metrics.jsonl",
                                     context={"run_id": ctx.run_id, "notebook": ctx.notebook, "setting": suffix,
                                              "preset": s_name}, probes=probes, progress=progress)
            ctx.record("model", preset=s_name, checkpoint=base["checkpoint"], source=base["source"])
            res["stargan"] = base
            res["records"]["Stargan-v2"] = base["records"]
            weights.append(f"Stargan-v2 model: {base['label']} ({base['source']})")
        datasets += [ctx.record_dataset(res["train"].name + "-train", res["train"].fingerprint, n=len(res["train"])),
                     ctx.record_dataset(res["val"].name + "-val", res["val"].fingerprint, n=len(res["val"]))]
        cols = {c: PAPER_COLUMNS[c] for c in paper_columns}
        if offline:
            cols.update(OFFLINE_COLUMNS)
        for method, recs in res["records"].items():
            ctx.record_metric_weights(recs)
            weights.append(_weights_summary(recs))
            got = cells_from_records(recs, cols)
            if layout == "methods":
                cells_by_method.setdefault(method, {}).update({f"{c}{suffix}": v for c, v in got.items()})
            else:
                for c, v in got.items():
                    row = c if method == "Ours" else f"{c} [{method}]"
                    cells_by_method.setdefault(row, {})[suffix] = v
    table = with_paper(cells_by_method, key, method_names=method_names, reported_only_notes=reported_only_notes)
    info = {"dataset": ", ".join(dict.fromkeys(datasets)), "weights": "; ".join(dict.fromkeys(weights))}
    return table, results, info


def default_n_targets(profile: str) -> int:
    """LR targets per evaluation: 16 (smoke, CPU minutes), 500 (quick), every val image (paper)."""
    return {"smoke": 16, "quick": 500}.get(profile, 10 ** 9)


def figure_grid(ctx, name: str, *, n_sources: int = 5, n_targets: int = 4, data_root: str = "", device: str = "cpu",
                checkpoints: dict[str, str] | None = None, steps: int = 0, progress: bool = True):
    """The Fig. 5 / Fig. 8 grid for paper preset ``name`` under the run's profile: the first ``n_sources`` val
    images across the top, the next ``n_targets`` as LR targets down the side, G_ema's translations inside and
    the real HR targets on the right. Returns ``(figure, info)``."""
    from lrkit.train.i2ilr_config import preset_for_profile
    from lrkit.train.i2ilr_task import sample_panel
    from lrkit.viz import show_grid

    cfg = preset_for_profile(name, ctx.profile.name, steps)
    ckpt = (checkpoints or {}).get(name) or ensure_model(cfg, Path(ctx.run_dir).parent, data_root=data_root or None,
                                                        device=device, progress=progress)
    model = load_i2ilr(ckpt, device=device, expect={"hr_size": cfg.hr_size, "lr_size": cfg.lr_size})
    val = open_val_set(cfg, data_root or None, n=max(cfg.synth_n_val, n_sources + n_targets))
    if len(val) < n_sources + n_targets:
        raise ValueError(f"the val set has {len(val)} images; the grid needs {n_sources + n_targets}")
    imgs = val.pool.get(list(range(n_sources + n_targets)))
    grid = sample_panel(model.G, imgs[:n_sources], imgs[n_sources:], cfg.lr_size)
    title = (f"I2I-LR {cfg.preset} ({model.label}): sources across the top, {cfg.lr_size}x{cfg.lr_size} LR targets "
             f"down the side, real HR target on the right")
    fig = show_grid(grid, title)
    label = ctx.record_dataset(val.name + "-val", val.fingerprint, n=len(val))
    ctx.record("model", preset=cfg.preset, checkpoint=str(ckpt))
    return fig, {"dataset": label, "weights": model.label, "checkpoint": str(ckpt), "config": cfg}
