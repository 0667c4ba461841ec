"""``lrkit compare RUN_A RUN_B``: which numbers changed between two runs, and by how much.

Runs are found through the artifact history (``paper_tables/*/history/*/<run_id>.*``), which outlives the
git-ignored ``runs/`` folder, so a run committed from another machine can be compared with a local one.
Tables are matched by (profile, name); cells by (row, column). Figures are compared by a hash of their decoded pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from lrkit.fsutil import sha256_bytes
from lrkit.runs.artifacts import read_table_csv, run_artifacts


@dataclass
class CompareResult:
    run_a: str
    run_b: str
    cells: pd.DataFrame  # one row per compared cell: table,row,column,a,b,abs_diff,rel_diff,changed
    only_in_a: list[str] = field(default_factory=list)
    only_in_b: list[str] = field(default_factory=list)
    figures: dict[str, str] = field(default_factory=dict)  # name -> "identical" | "changed"

    @property
    def changed(self) -> pd.DataFrame:
        return self.cells[self.cells["changed"]]

    def format(self, show_all: bool = False) -> str:
        lines = [f"compare {self.run_a} -> {self.run_b}"]
        n_tables = self.cells["table"].nunique() if len(self.cells) else 0
        lines.append(f"{len(self.cells)} numbers in {n_tables} table(s) compared, {len(self.changed)} changed")
        shown = self.cells if show_all else self.changed
        if len(shown):
            lines.append(shown.to_string(index=False, float_format=lambda v: f"{v:.6g}"))
        for name, state in sorted(self.figures.items()):
            lines.append(f"figure {name}: {state}")
        for name in self.only_in_a:
            lines.append(f"only in {self.run_a}: {name}")
        for name in self.only_in_b:
            lines.append(f"only in {self.run_b}: {name}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "run_a": self.run_a, "run_b": self.run_b,
            "cells": self.cells.to_dict(orient="records"),
            "only_in_a": self.only_in_a, "only_in_b": self.only_in_b, "figures": self.figures,
        }


def _run_id(arg: str) -> str:
    return Path(arg.rstrip("/")).name  # accept "runs/<id>" as well as "<id>"


def _as_number(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f


def _cells(table: str, a: pd.DataFrame, b: pd.DataFrame, rtol: float, atol: float) -> list[dict]:
    rows = list(dict.fromkeys([*map(str, a.index), *map(str, b.index)]))
    cols = list(dict.fromkeys([*map(str, a.columns), *map(str, b.columns)]))
    a = a.set_axis(a.index.map(str)).set_axis(a.columns.map(str), axis=1)
    b = b.set_axis(b.index.map(str)).set_axis(b.columns.map(str), axis=1)
    out = []
    for r in rows:
        for c in cols:
            va = a.at[r, c] if (r in a.index and c in a.columns) else None
            vb = b.at[r, c] if (r in b.index and c in b.columns) else None
            fa, fb = _as_number(va), _as_number(vb)
            if fa is not None and fb is not None:
                both_nan = math.isnan(fa) and math.isnan(fb)
                diff = 0.0 if both_nan else fb - fa
                rel = 0.0 if both_nan else (diff / abs(fa) if fa not in (0.0,) and not math.isnan(fa) else math.nan)
                changed = not both_nan and not (abs(diff) <= atol + rtol * abs(fa))  # NaN diff counts as changed
                out.append({"table": table, "row": r, "column": c, "a": fa, "b": fb,
                            "abs_diff": diff, "rel_diff": rel, "changed": bool(changed)})
            else:
                out.append({"table": table, "row": r, "column": c, "a": va, "b": vb, "abs_diff": math.nan,
                            "rel_diff": math.nan, "changed": str(va) != str(vb)})
    return out


def _comparable(path: Path) -> pd.DataFrame:
    """A table as compared cell by cell. A paper-comparison table (``with_paper``'s long frame: one row per
    (method, column), the method repeated) becomes one row per "method · column" with the kit's number; the
    paper's numbers are the same in every run."""
    from lrkit.runs.artifacts import is_paper_frame

    df = read_table_csv(path)
    if not is_paper_frame(df):
        return df
    long = df.reset_index()
    long = long[long["status"] != "reported only"]
    return pd.DataFrame({"reproduced": long["reproduced"].to_numpy()},
                        index=[f"{m} · {c}" for m, c in zip(long["method"], long["column"])])


def _pixel_hash(png: Path) -> str:
    """Hash of the decoded pixels: the PNG bytes differ between runs anyway (their metadata names the run)."""
    from PIL import Image

    with Image.open(png) as im:
        im = im.convert("RGBA")
        return sha256_bytes(f"{im.size}".encode() + im.tobytes())


def compare_runs(run_a: str, run_b: str, root: Path, rtol: float = 0.0, atol: float = 0.0) -> CompareResult:
    """Compare every table and figure the two runs wrote under ``root``."""
    ra, rb = _run_id(run_a), _run_id(run_b)
    arts = {}
    for rid in (ra, rb):
        found = run_artifacts(root, rid)
        if not found:
            raise FileNotFoundError(
                f"run {rid!r} wrote no table or figure under {root} (looked in paper_tables/*/history and "
                "figures/*/history); pass a run id printed by 'lrkit reproduce', e.g. 20261122T053512Z-abc1234"
            )
        arts[rid] = {f"{m['kind']}:{m['profile']}/{m['name']}": m for m in found}
    a, b = arts[ra], arts[rb]
    cells: list[dict] = []
    figures: dict[str, str] = {}
    for key in sorted(a.keys() & b.keys()):
        ma, mb = a[key], b[key]
        label = key.split(":", 1)[1]
        if ma["kind"] == "table":
            cells += _cells(label, _comparable(root / ma["files"]["csv"]), _comparable(root / mb["files"]["csv"]),
                            rtol, atol)
        else:
            same = _pixel_hash(root / ma["files"]["png"]) == _pixel_hash(root / mb["files"]["png"])
            figures[label] = "identical" if same else "changed"
    columns = ["table", "row", "column", "a", "b", "abs_diff", "rel_diff", "changed"]
    return CompareResult(
        ra, rb, pd.DataFrame(cells, columns=columns),
        only_in_a=sorted(k.split(":", 1)[1] for k in a.keys() - b.keys()),
        only_in_b=sorted(k.split(":", 1)[1] for k in b.keys() - a.keys()),
        figures=figures,
    )
