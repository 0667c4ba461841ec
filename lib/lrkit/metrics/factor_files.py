"""``synthfaces_factors`` from files: what ``lrkit metric synthfaces_factors`` computes.

The in-memory evaluations score translations with the true factors they hold (``evaluation.translations.score``);
a user with files has an ``lrkit data synth`` export (PNGs + ``factors.csv``) and the outputs of ``lrkit
translate`` named ``<target>__<source>.png``. This module pairs each output with the true factors of its source
and target through those names and runs the same probes.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from lrkit.data import synthfaces as sf

__all__ = ["synthfaces_factors_files"]


def _variant(factors_csv: Path) -> str:
    with open(factors_csv, newline="", encoding="utf-8") as fh:
        first = next(csv.DictReader(fh), None)
    for variant, domains in sf.DOMAINS.items():
        if first is not None and first["domain"] in domains:
            return variant
    raise ValueError(f"{factors_csv} names no synthfaces domain; write the folder with `lrkit data synth`")


def synthfaces_factors_files(real: str | Path | None, fake: str | Path, *, split: str = "val",
                             device: str = "cpu") -> dict[str, float]:
    """Identity/faithfulness of the outputs in ``fake`` (``<target>__<source>.png``; ``grid.png`` is skipped),
    whose sources and targets are images of ``split`` in the synthfaces export ``real``."""
    from lrkit.metrics.factor_probes import synthfaces_factors
    from lrkit.data.sampling import load_image_files

    if not real:
        raise ValueError("synthfaces_factors needs --real: the `lrkit data synth` folder the sources and targets "
                         "come from (it holds factors.csv)")
    table = Path(real) / "factors.csv"
    if not table.is_file():
        raise FileNotFoundError(f"{table} is missing: --real must be a folder written by `lrkit data synth`")
    variant = _variant(table)
    by_stem = {Path(r["file"]).stem: r["factors"] for r in sf.read_factors_csv(table, variant) if r["split"] == split}
    files = sorted(p for p in Path(fake).glob("*.png") if p.name != "grid.png")
    if not files:
        raise FileNotFoundError(f"no output PNGs in {fake}; write them with `lrkit translate`")
    src, tgt = [], []
    for p in files:
        target, sep, source = p.stem.partition("__")
        missing = [s for s in (target, source) if s not in by_stem] if sep else [p.stem]
        if missing:
            raise ValueError(f"{p.name}: outputs must be named <target>__<source>.png with stems of {split} images "
                             f"of {real} (as `lrkit translate` writes them); unknown: {missing}")
        src.append(by_stem[source])
        tgt.append(by_stem[target])
    stack = lambda rows: {k: np.asarray([r[k] for r in rows]) for k in rows[0]}  # noqa: E731
    return synthfaces_factors(load_image_files(files), stack(src), stack(tgt), variant=variant, device=device)
