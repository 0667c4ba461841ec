"""The I2I-LR paper's Tables 1-4 as data (one ``TableSpec`` each) and the one function that reproduces any of them.

A spec says which settings (column suffix -> I2I-LR paper preset, mapped to the run profile's preset), which
paper columns, which extra offline metrics, which StarGAN v2 rows (preset and task per setting) and which paper
table (``paper_tables/reference/<reference>.csv``) the numbers sit next to. A notebook names its spec; nothing
about a table lives in a notebook.

The StarGAN v2 rows use StarGAN v2's own protocol on the same val images (``lrkit.methods.stargan2.baseline``);
this module imports that method, never the reverse.

Labels. A cell is *reproduced* only when the dataset and the protocol are the paper's (paper profile, real
dataset, the preset's full training, every val image as a target); anything else that has a paper number next
to it is the kit's *own measurement*, and the table's note says why (e.g. "synthfaces, not CelebA-HQ").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lrkit import weights as W
from lrkit.data.roots import REAL_DATASETS
from lrkit.evaluation.paper_compare import cells_from_records, with_paper
from lrkit.metrics.factor_probes import load_or_train_probes
from lrkit.methods.i2ilr.config import preset_for_profile
from lrkit.profiles import model_profile
from lrkit.methods.i2ilr.evaluation import evaluate_preset, offline_metrics
from lrkit.methods.i2ilr.task import ensure_trained

__all__ = ["TableSpec", "TABLES", "PAPER_COLUMNS", "OFFLINE_COLUMNS", "get_table", "reproduce_table"]

# Column name -> (metric, key). Paper columns carry the paper's names (the setting's suffix is appended).
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
DATASET_NAMES = {"celeba_hq": "CelebA-HQ", "afhq": "AFHQ"}


@dataclass(frozen=True)
class TableSpec:
    name: str  # notebook stem and artifact name
    reference: str  # the paper's table in paper_tables/reference/
    title: str
    settings: tuple[tuple[str, str], ...]  # (column suffix / setting label, I2I-LR paper preset)
    columns: tuple[str, ...]  # PAPER_COLUMNS computed
    layout: str = "methods"  # "methods": rows = methods (Tables 1-3); "metrics": rows = metrics (Table 4)
    extra_metrics: tuple[str, ...] = ()  # further metrics, e.g. an offline stand-in with its own name
    # (setting suffix, StarGAN v2 paper preset, same-domain task's domain or None for the official cross-domain
    # tasks): the Stargan-v2 row
    stargan: tuple[tuple[str, str, str | None], ...] = ()
    row_labels: tuple[tuple[str, str], ...] = ()  # our row name -> the paper's row label

    @property
    def presets(self) -> tuple[str, ...]:
        return tuple(p for _, p in self.settings)


_CELEBA = (("@128", "celebahq128"), ("@256", "celebahq256"))
_STARGAN_CELEBA = (("@128", "celebahq128", None), ("@256", "celebahq256", None))

TABLES: dict[str, TableSpec] = {t.name: t for t in (
    TableSpec("table1_celebahq_fid_lpips", "i2ilr_table1", "I2I-LR Table 1: FID and LPIPS diversity (CelebA-HQ)",
              _CELEBA, ("FID", "FID (pytorch-fid)", "LPIPS"), stargan=_STARGAN_CELEBA,
              row_labels=(("Stargan-v2", "Stargan-v2 [8]"),)),
    TableSpec("table2_density_coverage", "i2ilr_table2", "I2I-LR Table 2: density and coverage (VGG16 fc2, k=5)",
              _CELEBA, ("Density", "Coverage"), extra_metrics=("prdc_efflite0",), stargan=_STARGAN_CELEBA),
    TableSpec("table3_afhq", "i2ilr_table3", "I2I-LR Table 3: AFHQ per domain (trained separately)",
              (("@cat", "afhq_cat"), ("@dog", "afhq_dog"), ("@wild", "afhq_wild")), ("FID", "LPIPS"),
              stargan=(("@cat", "afhq128", "cat"), ("@dog", "afhq128", "dog"), ("@wild", "afhq128", "wild"))),
    TableSpec("table4_lr_resolution", "i2ilr_table4", "I2I-LR Table 4: effect of the LR resolution",
              (("LR 4x4", "lr4"), ("LR 8x8", "lr8"), ("LR 16x16", "lr16"), ("LR 32x32", "lr32")), ("FID", "LPIPS"),
              layout="metrics"),
)}


def get_table(name: str) -> TableSpec:
    try:
        return TABLES[name]
    except KeyError:
        raise ValueError(f"unknown I2I-LR table {name!r}; known: {', '.join(TABLES)}") from None


def _weights_summary(records: list[dict]) -> list[str]:
    labels = []
    for r in records:
        if r.get("model_unavailable"):  # the whole row: its reason is stated once, with the model
            continue
        labels += r.get("weights", []) if r["status"] == "ok" else [f"{r['metric']}: unavailable (weights missing)"]
    return labels


def _not_reproduction(cfg, profile: str, steps: int, batch_size: int, n_targets: int, n_val: int,
                      given: bool) -> list[str]:
    """Why a setting's numbers are the kit's own measurement rather than a reproduction (empty: reproduced)."""
    why = []
    if cfg.dataset not in REAL_DATASETS:
        why.append(f"{cfg.dataset}, not the paper's dataset")
    if profile != "paper":
        why.append(f"profile {profile}")
    if steps and not given:
        why.append(f"{steps} training steps instead of the preset's")
    if batch_size and not given:
        why.append(f"batch {batch_size} instead of the preset's")
    if n_targets < n_val:
        why.append(f"{n_targets} of {n_val} val targets")
    return why


def reproduce_table(ctx, name: str, *, data_root=None, device: str = "cpu", n_eval_targets: int = 0,
                    steps: int = 0, batch_size: int = 0, checkpoints: dict[str, str] | None = None,
                    stargan_checkpoints: dict[str, str] | None = None, n_per_target: int = 10, probe_size: int = 0,
                    progress: bool = True):
    """Train/reuse one model per setting of table ``name``, evaluate it (and its StarGAN v2 row), save the table
    next to the paper's numbers under the run's profile, and return it.

    ``n_eval_targets``: LR targets per evaluation (0: the profile's ``eval_targets``; the paper profile's 0 means
    every val image). ``steps`` > 0 trains every model that many steps instead of the preset's and ``batch_size``
    > 0 with that batch (a miniature; the StarGAN v2 row too, where it is trained here).
    ``checkpoints`` / ``stargan_checkpoints``: paper preset -> checkpoint file to use instead of training
    (StarGAN v2: an official ``*_nets_ema.ckpt`` or an lrkit run's).
    """
    from lrkit.methods.stargan2.baseline import evaluate_baseline

    spec = get_table(name)
    prof = ctx.profile
    n_targets = int(n_eval_targets or prof.eval_targets or 10 ** 9)
    metrics = list(dict.fromkeys([PAPER_COLUMNS[c][0] for c in spec.columns] + list(spec.extra_metrics)))
    cols = {c: PAPER_COLUMNS[c] for c in spec.columns} | OFFLINE_COLUMNS
    stargan = {suffix: (preset, same) for suffix, preset, same in spec.stargan}
    runs_root = Path(ctx.run_dir).parent
    jsonl = ctx.run_dir / "metrics.jsonl"
    cells, datasets, weights, why_not, results = {}, [], [], {}, {}
    for suffix, paper_preset in spec.settings:
        given = (checkpoints or {}).get(paper_preset)
        # Under smoke the tables evaluate the shipped cpu models (profiles.Profile.eval_models), never train them.
        mprof, may_train = (prof.name, True) if given else model_profile(prof, steps, batch_size)
        cfg = preset_for_profile(paper_preset, mprof, steps, batch_size)
        ckpt = given or ensure_trained(cfg, runs_root, data_root=data_root, device=device, progress=progress,
                                       train=may_train)
        ctx.record("model", preset=cfg.preset, checkpoint=str(ckpt))
        mets = metrics + offline_metrics(cfg)
        probes = (load_or_train_probes(cfg.synth_variant, probe_size, device=device)
                  if "synthfaces_factors" in mets and probe_size else None)
        where = {"run_id": ctx.run_id, "notebook": ctx.notebook, "setting": suffix}
        res = evaluate_preset(cfg, ckpt, mets, n_targets=n_targets, n_per_target=n_per_target, n_real=prof.eval_real,
                              data_root=data_root, device=device, results_file=jsonl, context=where, probes=probes)
        if suffix in stargan:
            s_preset, same = stargan[suffix]
            try:
                base = evaluate_baseline(s_preset, same, res["val"], res["train"], mets, hr_size=cfg.hr_size,
                                         lr_size=cfg.lr_size, dataset=cfg.dataset,
                                         runs_root=runs_root, n_sources=n_targets, checkpoints=stargan_checkpoints,
                                         data_root=data_root, device=device, results_file=jsonl,
                                         context={**where, "preset": s_preset}, probes=probes, progress=progress,
                                         steps=steps, batch_size=batch_size, profile=mprof, may_train=may_train)
            except W.WeightsUnavailable as exc:  # e.g. the FAN (wing.ckpt) the CelebA-HQ setting needs, offline
                reason = str(exc).splitlines()[0]
                res["records"]["Stargan-v2"] = [{"metric": m, "status": "unavailable", "values": {}, "reason": reason,
                                                 "weights": [], "model_unavailable": True} for m in mets]
                weights.append(f"Stargan-v2{suffix}: unavailable ({reason[:200]})")
            else:
                ctx.record("model", preset=s_preset, checkpoint=base["checkpoint"], source=base["source"])
                res["stargan"] = base
                res["records"]["Stargan-v2"] = base["records"]
                weights.append(f"Stargan-v2{suffix}: {base['label']} ({base['source']})")
        results[suffix] = res
        why_not[suffix] = _not_reproduction(cfg, mprof, steps, batch_size, min(n_targets, len(res["val"])),
                                            len(res["val"]), bool(given))
        datasets += [ctx.record_dataset(res["train"].name + "-train", res["train"].fingerprint, n=len(res["train"])),
                     ctx.record_dataset(res["val"].name + "-val", res["val"].fingerprint, n=len(res["val"]))]
        weights.append(f"Ours{suffix}: {res['model'].label}")
        for method, recs in res["records"].items():
            ctx.record_metric_weights(recs)
            weights += _weights_summary(recs)
            got = cells_from_records(recs, cols)
            if spec.layout == "methods":
                cells.setdefault(method, {}).update({f"{c}{suffix}": v for c, v in got.items()})
            else:
                for c, v in got.items():
                    cells.setdefault(c if method == "Ours" else f"{c} [{method}]", {})[suffix] = v
    own = sorted({w for ws in why_not.values() for w in ws})
    table = with_paper(cells, spec.reference, method_names=dict(spec.row_labels), own_measurement=own)
    info = {"dataset": ", ".join(dict.fromkeys(datasets)), "weights": "; ".join(dict.fromkeys(weights)),
            "results": results}
    ctx.save_table(table, spec.name, title=spec.title, dataset=info["dataset"], weights=info["weights"],
                   device=device, reference=spec.reference, notes=_note(spec, prof.name, device, own, datasets))
    return table, info


def _note(spec: TableSpec, profile: str, device: str, own: list[str], datasets: list[str]) -> str:
    ran = f"Ran under profile {profile} on {device}, data {', '.join(dict.fromkeys(datasets))}."
    if own:
        label = ("Cells next to a paper number are the kit's own measurement, not a reproduction of the paper's "
                 f"number ({'; '.join(own)}).")
    else:
        label = "Cells next to a paper number are reproduced: the paper's dataset, training and protocol."
    return (f"{ran} {label} 'unavailable': the metric's pretrained weights are missing here (never replaced); "
            "'reported only': the paper's number for a method not run here; 'not in paper': the kit's extra columns "
            "(offline metrics, the bicubic baseline).")
