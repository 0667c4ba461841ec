"""Writes the I2I-LR notebooks (no outputs). Kept so their shared cells stay identical; edit here and re-run:

    .venv/bin/python tools/make_i2ilr_notebooks.py
"""

from __future__ import annotations

from pathlib import Path

import nbformat as nbf

NB_DIR = Path(__file__).resolve().parents[1] / "notebooks"

COMMON = '''profile = "smoke"
seed = 0
data_root = ""
device = "auto"
run_dir = ""
output_root = ""
checkpoints = {}
stargan_checkpoints = {}
'''

OPEN = '''from lrkit.evaluation import i2ilr_tables
from lrkit.profiles import resolve_device
from lrkit.runs.context import open_run

ctx = open_run(run_dir, profile, notebook="{name}", output_root=output_root or None)
dev = resolve_device(device, ctx.profile)
print(f"run {{ctx.run_id}}, profile {{profile}}, device {{dev}}")
'''

TABLE_NOTE = ("Profile smoke/quick: synthfaces, tiny/short training -- the protocol is reproduced, not the paper's "
              "numbers. Paper-comparable columns need the official weights (unavailable offline).")


def notebook(name: str, intro: str, params: str, cells: list[tuple[str, str]]) -> None:
    nb = nbf.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "lrkit", "display_name": "lrkit (venv)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells.append(nbf.v4.new_markdown_cell(intro))
    p = nbf.v4.new_code_cell(COMMON + params)
    p.metadata["tags"] = ["parameters"]
    nb.cells.append(p)
    nb.cells.append(nbf.v4.new_code_cell(OPEN.format(name=name)))
    for kind, src in cells:
        nb.cells.append(nbf.v4.new_markdown_cell(src) if kind == "md" else nbf.v4.new_code_cell(src))
    nbf.write(nb, NB_DIR / f"{name}.ipynb")


def table(name: str, title: str, intro: str, key: str, settings: dict, columns: list, layout: str = "methods",
          extra_md: str = "", extra_metrics: tuple = (), stargan: dict | None = None) -> None:
    row = "Stargan-v2 [8]" if key == "i2ilr_table1" else "Stargan-v2"
    method_names = {"Stargan-v2": row} if stargan else None
    code = f'''table, results, info = i2ilr_tables.reproduce_table(
    ctx, "{key}", {settings!r}, {columns!r},
    data_root=data_root, device=dev, n_targets=n_targets or i2ilr_tables.default_n_targets(profile),
    checkpoints=checkpoints, layout="{layout}", method_names={method_names!r},
    extra_metrics={extra_metrics!r}, stargan={stargan!r}, stargan_checkpoints=stargan_checkpoints,
)
ctx.save_table(table, "{name}", title="{title}", dataset=info["dataset"], weights=info["weights"],
               device=dev, reference="{key}", notes="{TABLE_NOTE}")
table
'''
    wide = f'''from lrkit import reference

reference.load("{key}")'''
    notebook(name, intro, "n_targets = 0\n", [("md", "## Reproduce the table\n\nEach setting's model is "
             "trained (or reused / resumed from the run folder's `models/`), then evaluated on the protocol's "
             "pairs. `status` says per cell whether it was reproduced, is unavailable (weights missing) or is "
             "reported only." + extra_md), ("code", code), ("md", "## The paper's numbers (as printed)"),
             ("code", wide)])


def main() -> None:
    notebook(
        "train_i2ilr",
        "# Train I2I-LR\n\nTrains (or resumes) one preset with `lrkit.train` -- the same function as "
        "`lrkit train i2ilr --preset NAME` -- then plots its losses and a sample grid drawn with the EMA "
        "generator. Under the smoke/quick profiles the preset's synthfaces version runs (`<preset>_smoke`, "
        "`<preset>_quick`); the paper profile trains on the real dataset (`data_root`).",
        'preset = "celebahq128"\nsteps = 0\n',
        [("code", '''cfg = i2ilr_tables.preset_for_profile(preset, profile, steps)
ckpt = i2ilr_tables.ensure_model(cfg, ctx.run_dir.parent, data_root=data_root or None, device=dev)
print(cfg)
print("checkpoint:", ckpt)'''),
         ("md", "## Losses\n\n`lr_err_grey` is the unrounded mean |DS(G(X, y)) - y| in 8-bit grey levels: the "
                "conditioning at work (it should fall towards 0)."),
         ("code", '''from lrkit import viz

fig = viz.loss_curves(ckpt.parent.parent / "losses.jsonl", title=f"I2I-LR {cfg.preset} training losses")
ctx.save_figure(fig, f"i2ilr_train_{cfg.preset}_losses", title=f"I2I-LR {cfg.preset}: training losses",
                dataset=cfg.dataset, weights=str(ckpt), device=dev)'''),
         ("md", "## Samples (EMA generator)"),
         ("code", '''fig, info = i2ilr_tables.figure_grid(ctx, preset, data_root=data_root, device=dev, checkpoints={preset: str(ckpt)})
ctx.save_figure(fig, f"i2ilr_train_{cfg.preset}_samples", title=f"I2I-LR {cfg.preset}: samples",
                dataset=info["dataset"], weights=info["weights"], device=dev)''')],
    )
    table("table1_celebahq_fid_lpips", "I2I-LR Table 1: FID and LPIPS diversity (CelebA-HQ protocol)",
          "# Table 1: FID and LPIPS on CelebA-HQ (128 and 256 px)\n\nOurs: for every LR target of the val split, "
          "ten HR sources drawn at random (seed 777) are translated; FID (StarGAN v2 protocol; the pytorch-fid "
          "protocol as a second column) against the train split, LPIPS diversity over the ten outputs of each "
          "target (45 pairs). A trivial baseline (the LR target upsampled bicubically) shows what the metrics give "
          "to an output that ignores the source. MUNIT/DRIT/MSGAN are reported only.\n\nStargan-v2: the "
          "baseline with its own reference-guided protocol on the same val images (10 outputs per source, a fresh "
          "reference batch each, per task: female->male and male->female on CelebA-HQ, the two hair domains on "
          "synthfaces; FID per task against the target domain's train images, averaged). Under the paper profile "
          "the official 256 px release is used when it can be had; every other setting trains the baseline here.",
          "i2ilr_table1", {"@128": "celebahq128", "@256": "celebahq256"}, ["FID", "FID (pytorch-fid)", "LPIPS"],
          stargan={"@128": ("celebahq128", None), "@256": ("celebahq256", None)})
    table("table2_density_coverage", "I2I-LR Table 2: density and coverage (VGG16 fc2, k=5)",
          "# Table 2: density and coverage on CelebA-HQ\n\nPRDC with k = 5 on ImageNet-VGG16 fc2 features "
          "(`prdc_vgg16`), outputs of the Table-1 protocol against the train split. Offline, the VGG16 weights are "
          "missing: those columns are unavailable, and `prdc_efflite0` (EfficientNet-Lite0 features, a "
          "stand-in with its own name) is shown instead.",
          "i2ilr_table2", {"@128": "celebahq128", "@256": "celebahq256"}, ["Density", "Coverage"],
          extra_metrics=("prdc_efflite0",),
          stargan={"@128": ("celebahq128", None), "@256": ("celebahq256", None)})
    table("table3_afhq", "I2I-LR Table 3: AFHQ per domain (trained separately)",
          "# Table 3: AFHQ, one model per domain\n\nAs the paper, each AFHQ domain (cat, dog, wild) has its own "
          "model; sources and targets come from the same domain. Stargan-v2: one three-domain model (128 px, as "
          "I2I-LR here), evaluated on each domain's same-domain task (sources and references from that domain, as "
          "the paper states).",
          "i2ilr_table3", {"@cat": "afhq_cat", "@dog": "afhq_dog", "@wild": "afhq_wild"}, ["FID", "LPIPS"],
          stargan={"@cat": ("afhq128", "cat"), "@dog": ("afhq128", "dog"), "@wild": ("afhq128", "wild")})
    table("table4_lr_resolution", "I2I-LR Table 4: effect of the LR resolution",
          "# Table 4: LR target resolution 4, 8, 16, 32\n\nOne model per LR size on CelebA-HQ 128 px. The paper "
          "finds LPIPS diversity falling as the LR size grows (the target fixes more of the output).",
          "i2ilr_table4", {"LR 4x4": "lr4", "LR 8x8": "lr8", "LR 16x16": "lr16", "LR 32x32": "lr32"},
          ["FID", "LPIPS"], layout="metrics")
    notebook("fig5_grid",
             "# Figure 5: sources x LR targets\n\nHR sources across the top, 8x8 LR targets down the left, the "
             "translations inside and the real HR target (never seen by the model) on the right.",
             'n_sources = 5\nn_targets = 4\n',
             [("code", '''fig, info = i2ilr_tables.figure_grid(ctx, "celebahq128", n_sources=n_sources, n_targets=n_targets,
                                     data_root=data_root, device=dev, checkpoints=checkpoints)
ctx.save_figure(fig, "i2ilr_fig5", title="I2I-LR Fig. 5: sources x LR targets", dataset=info["dataset"],
                weights=info["weights"], device=dev)''')])
    notebook("fig6_vs_stargan",
             "# Figure 6: I2I-LR vs StarGAN v2 (reference-guided)\n\nThe same HR sources (left) for both methods. "
             "I2I-LR gets the LR targets (top row); StarGAN v2 gets the corresponding HR images as references "
             "(bottom row), in their own domain. Each source has two rows: I2I-LR's outputs, then StarGAN v2's.",
             'n_sources = 3\nn_targets = 5\n',
             [("code", '''from lrkit.evaluation import stargan2_baseline

fig, info = stargan2_baseline.figure_vs_stargan(ctx, "celebahq128", "celebahq128", n_sources=n_sources,
                                                n_targets=n_targets, data_root=data_root, device=dev,
                                                checkpoints=checkpoints, stargan_checkpoints=stargan_checkpoints)
ctx.save_figure(fig, "i2ilr_fig6_vs_stargan", title="I2I-LR Fig. 6: I2I-LR (LR targets) vs StarGAN v2 (HR references)",
                dataset=info["dataset"], weights=info["weights"], device=dev)'''),
              ("md", "The offline metrics of both methods side by side (identity kept from the source, faithfulness "
                     "to the target / reference, LR error against the target's LR image) are in Table 1's "
                     "notebook, rows Ours and Stargan-v2.")])
    notebook("fig8_afhq",
             "# Figure 8: AFHQ\n\nThe Fig. 5 layout for each AFHQ domain's model (cat, dog, wild).",
             'n_sources = 4\nn_targets = 3\n',
             [("code", '''fig_cat, info_cat = i2ilr_tables.figure_grid(ctx, "afhq_cat", n_sources=n_sources, n_targets=n_targets,
                                             data_root=data_root, device=dev, checkpoints=checkpoints)
ctx.save_figure(fig_cat, "i2ilr_fig8_cat", title="I2I-LR Fig. 8: AFHQ cat", dataset=info_cat["dataset"],
                weights=info_cat["weights"], device=dev)'''),
              ("code", '''fig_dog, info_dog = i2ilr_tables.figure_grid(ctx, "afhq_dog", n_sources=n_sources, n_targets=n_targets,
                                             data_root=data_root, device=dev, checkpoints=checkpoints)
ctx.save_figure(fig_dog, "i2ilr_fig8_dog", title="I2I-LR Fig. 8: AFHQ dog", dataset=info_dog["dataset"],
                weights=info_dog["weights"], device=dev)'''),
              ("code", '''fig_wild, info_wild = i2ilr_tables.figure_grid(ctx, "afhq_wild", n_sources=n_sources, n_targets=n_targets,
                                               data_root=data_root, device=dev, checkpoints=checkpoints)
ctx.save_figure(fig_wild, "i2ilr_fig8_wild", title="I2I-LR Fig. 8: AFHQ wild", dataset=info_wild["dataset"],
                weights=info_wild["weights"], device=dev)''')])


if __name__ == "__main__":
    main()
