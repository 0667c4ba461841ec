"""Tables that show reproduced numbers next to the paper's, cell by cell.

``with_paper(cells, key)`` -> one row per (method, column) with ``reproduced`` (our number), ``paper``, ``better``
and a ``status``: "reproduced" (computed on the paper's dataset with the paper's protocol), "own measurement"
(computed by the kit on other data or a reduced protocol: not a reproduction of the paper's number; the caller
says why), "reported only" (the paper's value; we did not run that method), "unavailable" (the metric's weights
are missing here: never replaced), or "not in paper" (our extra columns such as the offline metrics and trivial
baselines).
"""

from __future__ import annotations

import math

import pandas as pd

from lrkit import reference

__all__ = ["with_paper", "cells_from_records", "UNAVAILABLE"]

UNAVAILABLE = "unavailable"
COLUMNS = ["method", "column", "reproduced", "paper", "better", "status", "note", "paper_row"]
# paper_row: the paper's label of the row (e.g. "Stargan-v2 [8]" for the kit's "Stargan-v2"), for the paper layout


def cells_from_records(records: list[dict], columns: dict[str, tuple[str, str]], suffix: str = "") -> dict[str, object]:
    """Table cells from metric records: ``columns`` maps a column name to ``(metric, key)``; a metric whose record
    is unavailable gives "unavailable" in all its columns; a metric not run gives no cell."""
    by_metric = {r["metric"]: r for r in records}
    out: dict[str, object] = {}
    for col, (metric, key) in columns.items():
        rec = by_metric.get(metric)
        if rec is None:
            continue
        name = f"{col}{suffix}"
        if rec["status"] != "ok":
            out[name] = UNAVAILABLE
        elif key in rec["values"]:
            out[name] = float(rec["values"][key])
    return out


def with_paper(cells: dict[str, dict[str, object]], key: str, *, method_names: dict[str, str] | None = None,
               reported_only_notes: dict[str, str] | None = None,
               own_measurement: list[str] | None = None) -> pd.DataFrame:
    """``cells[method][column]`` (our numbers or "unavailable") merged with paper table ``key``.

    ``method_names`` maps our method names to the paper's row labels (e.g. "Stargan-v2" -> "Stargan-v2 [8]").
    Paper rows we did not reproduce appear with status "reported only" (with ``reported_only_notes[row]``).
    ``own_measurement``: why our numbers are not a reproduction (e.g. ["synthfaces, not the paper's dataset"]);
    empty or None means dataset and protocol are the paper's, so matched cells are "reproduced".
    """
    matched = "own measurement" if own_measurement else "reproduced"
    own_note = "; ".join(own_measurement or [])
    ref = reference.load_long(key)
    names = method_names or {}
    rows = []
    seen = set()
    for method, cols in cells.items():
        paper_row = names.get(method, method)
        for col, value in cols.items():
            hit = ref[(ref["row"] == paper_row) & (ref["column"] == col)]
            paper = float(hit["value"].iloc[0]) if len(hit) else math.nan
            better = hit["better"].iloc[0] if len(hit) else ""
            if len(hit):
                seen.add((paper_row, col))
            status = UNAVAILABLE if value == UNAVAILABLE else (matched if len(hit) else "not in paper")
            note = hit["note"].iloc[0] if len(hit) else ""
            if status == "own measurement":
                note = "; ".join(x for x in (note, own_note) if x)
            rows.append({"method": method, "column": col, "reproduced": value, "paper": paper, "better": better,
                         "status": status, "note": note, "paper_row": paper_row if len(hit) else ""})
    for _, r in ref.iterrows():
        if (r["row"], r["column"]) in seen:
            continue
        rows.append({"method": r["row"], "column": r["column"], "reproduced": "", "paper": r["value"],
                     "better": r["better"], "status": "reported only",
                     "note": "; ".join(x for x in (r["note"], (reported_only_notes or {}).get(r["row"], "")) if x),
                     "paper_row": r["row"]})
    return pd.DataFrame(rows, columns=COLUMNS).set_index(["method", "column"])
