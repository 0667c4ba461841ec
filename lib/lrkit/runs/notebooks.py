"""The notebooks ``lrkit reproduce`` knows, and which profile batches each one belongs to."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lrkit.runs.provenance import repo_root


@dataclass(frozen=True)
class NotebookSpec:
    name: str  # file stem under notebooks/
    title: str
    profiles: tuple[str, ...]  # the profile batches that run it
    datasets: tuple[str, ...] = ()  # real datasets it reads under the paper profile (a test checks them against
    # the method specs the notebook names)
    section: str = "paper"  # where the run report shows its outputs: "paper" (the papers' tables and figures, in
    # the order of NOTEBOOKS), "training", "diagnostics" (data and metric checks), "explore"


SECTIONS = (("paper", "Paper artifacts"), ("training", "Training"), ("diagnostics", "Diagnostics"),
            ("explore", "Explorer"))


ALL = ("smoke", "cpu", "quick", "paper")

NOTEBOOKS: tuple[NotebookSpec, ...] = (
    NotebookSpec("00_data_overview", "Data overview: synthfaces (and the real datasets given) at HR and LR", ALL,
                 section="diagnostics"),
    NotebookSpec("metrics_sanity", "Metric sanity: real vs real, real vs degraded, factor probe accuracy", ALL,
                 section="diagnostics"),
    NotebookSpec("train_i2ilr", "I2I-LR training: losses and samples of one preset", ALL, ("celeba_hq",),
                 section="training"),
    NotebookSpec("table1_celebahq_fid_lpips", "I2I-LR Table 1: FID and LPIPS diversity at 128 and 256 px", ALL,
                 ("celeba_hq",)),
    NotebookSpec("table2_density_coverage", "I2I-LR Table 2: density and coverage", ALL, ("celeba_hq",)),
    NotebookSpec("table3_afhq", "I2I-LR Table 3: AFHQ per domain", ALL, ("afhq",)),
    NotebookSpec("table4_lr_resolution", "I2I-LR Table 4: LR resolution 4/8/16/32", ALL, ("celeba_hq",)),
    NotebookSpec("fig5_grid", "I2I-LR Fig. 5: sources x LR targets", ALL, ("celeba_hq",)),
    NotebookSpec("fig6_vs_stargan", "I2I-LR Fig. 6: I2I-LR vs reference-guided StarGAN v2", ALL, ("celeba_hq",)),
    NotebookSpec("fig7_pulse_comparison", "I2I-LR Fig. 7: I2I-LR vs PULSE, with timings", ALL, ("celeba_hq",)),
    NotebookSpec("fig8_afhq", "I2I-LR Fig. 8: AFHQ per domain", ALL, ("afhq",)),
    NotebookSpec("srnam_degradation", "SR-NAM Fig. 4: the degradation GAN's LR samples vs the true degradation", ALL,
                 ("celeba_hq",)),
    NotebookSpec("srnam_progan_growth", "SR-NAM Fig. 5: the progressive generator at 4 to 64 px", ALL,
                 ("celeba_hq",)),
    NotebookSpec("srnam_grids", "SR-NAM Figs. 6-7: search grids, and the landmark table (eq. 7)", ALL,
                 ("celeba_hq",)),
    NotebookSpec("srnam_failures", "SR-NAM Fig. 8: failure cases by final L1", ALL, ("celeba_hq",)),
    NotebookSpec("explore", "Explorer: every method on one input (static panels in a batch, widgets in JupyterLab)",
                 ALL, section="explore"),
    NotebookSpec("i2ilr_training_study", "I2I-LR training study: what makes a small-scale G use its source",
                 ("smoke", "cpu"), section="training"),
)


def notebook_dir() -> Path:
    return repo_root() / "notebooks"


def select(profile: str, only: list[str] | None = None) -> list[NotebookSpec]:
    """The notebooks of a profile's batch, or exactly those named in ``only`` (any profile)."""
    if only:
        by_name = {nb.name: nb for nb in NOTEBOOKS}
        unknown = [n for n in only if n not in by_name]
        if unknown:
            raise ValueError(f"unknown notebook(s) {unknown}; known: {', '.join(by_name)}")
        return [by_name[n] for n in only]
    return [nb for nb in NOTEBOOKS if profile in nb.profiles]


def notebook_parameters(name: str) -> dict[str, object]:
    """The parameters a notebook declares (its ``parameters`` cell), name -> papermill's inferred info."""
    import papermill as pm

    return dict(pm.inspect_notebook(str(notebook_dir() / f"{name}.ipynb")))
