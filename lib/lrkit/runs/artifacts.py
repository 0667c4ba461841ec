"""Versioned tables and figures.

Layout (``root`` is the checkout unless a run says otherwise)::

    paper_tables/<profile>/<name>.{csv,md,tex,json}                  latest version
    paper_tables/<profile>/history/<name>/<run_id>.{csv,md,tex,json} every version ever written
    figures/<profile>/<name>.{png,pdf,json}
    figures/<profile>/history/<name>/<run_id>.{png,pdf,json}

The history copy is written first, then the latest copy, both atomically: a rerun replaces the *latest* file
but every earlier version stays in ``history/`` under the run id that made it, which is what
``lrkit compare`` reads. The ``.json`` sidecar holds the provenance (run id, profile, dataset, weights,
device); the CSV, Markdown and LaTeX files carry the same line as a comment, and PNG/PDF as metadata.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from pathlib import Path

import pandas as pd

from lrkit.fsutil import atomic_write_bytes, atomic_write_json

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")
TABLE_DIR = "paper_tables"
FIGURE_DIR = "figures"


def _check_name(name: str) -> None:
    if not _NAME_RE.match(name):
        raise ValueError(
            f"artifact name {name!r} is not allowed: use lower-case letters, digits, '_' and '-' "
            "(it becomes a file name), e.g. 'table1_celebahq'"
        )


def provenance_line(meta: dict) -> str:
    return (
        f"run {meta['run_id']} | profile {meta['profile']} | dataset {meta['dataset']} | "
        f"weights {meta['weights']} | device {meta['device']}"
    )


def _meta(kind: str, name: str, run_id: str, profile: str, title: str, dataset: str, weights: str,
          device: str, reference: str | None, notes: str) -> dict:
    return {
        "kind": kind,
        "name": name,
        "run_id": run_id,
        "profile": profile,
        "title": title,
        "dataset": dataset,
        "weights": weights,
        "device": device,
        "reference": reference,
        "notes": notes,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def _table_texts(df: pd.DataFrame, meta: dict) -> dict[str, str]:
    prov = provenance_line(meta)
    csv = f"# {meta['title']}\n# {prov}\n" + df.to_csv(float_format="%.6g")
    md = f"**{meta['title']}**\n\n{df.to_markdown(floatfmt='.4g')}\n\n_{prov}_\n"
    if meta["notes"]:
        md += f"\n{meta['notes']}\n"
    tex = f"% {meta['title']}\n% {prov}\n" + df.to_latex(float_format="%.4g", na_rep="--")
    return {"csv": csv, "md": md, "tex": tex}


def save_table(df: pd.DataFrame, name: str, *, root: Path, run_id: str, profile: str, title: str,
               dataset: str, weights: str, device: str, reference: str | None = None, notes: str = "") -> dict:
    """Write ``df`` as CSV, Markdown and LaTeX (latest + history). Returns the provenance dict."""
    _check_name(name)
    if not isinstance(df, pd.DataFrame) or df.empty:
        raise ValueError(f"table {name!r}: expected a non-empty pandas DataFrame")
    meta = _meta("table", name, run_id, profile, title, dataset, weights, device, reference, notes)
    payload = {ext: text.encode("utf-8") for ext, text in _table_texts(df, meta).items()}
    return _write_versions(Path(root), TABLE_DIR, meta, payload)


def _write_versions(root: Path, top: str, meta: dict, payload: dict[str, bytes]) -> dict:
    """Write ``payload`` (extension -> bytes) and the provenance sidecar: history copy first, then the latest."""
    base = root / top / meta["profile"]
    hist = base / "history" / meta["name"]
    meta["files"] = {ext: str((hist / f"{meta['run_id']}.{ext}").relative_to(root)) for ext in payload}
    for stem, folder in ((meta["run_id"], hist), (meta["name"], base)):
        for ext, data in payload.items():
            atomic_write_bytes(folder / f"{stem}.{ext}", data)
        atomic_write_json(folder / f"{stem}.json", meta)
    return meta


def save_figure(fig, name: str, *, root: Path, run_id: str, profile: str, title: str, dataset: str,
                weights: str, device: str, notes: str = "", dpi: int = 120) -> dict:
    """Write a matplotlib figure as PNG and PDF (latest + history) with provenance in their metadata."""
    _check_name(name)
    meta = _meta("figure", name, run_id, profile, title, dataset, weights, device, None, notes)
    prov = provenance_line(meta)
    payload = {}
    for ext in ("png", "pdf"):
        buf = io.BytesIO()
        md = {"Title": title, "Description": prov} if ext == "png" else {"Title": title, "Subject": prov}
        fig.savefig(buf, format=ext, dpi=dpi, bbox_inches="tight", metadata=md)
        payload[ext] = buf.getvalue()
    return _write_versions(Path(root), FIGURE_DIR, meta, payload)


def run_artifacts(root: Path, run_id: str) -> list[dict]:
    """Provenance dicts of every table and figure a run wrote, found in the history folders."""
    root = Path(root)
    found = []
    for top in (TABLE_DIR, FIGURE_DIR):
        for meta_file in sorted(root.glob(f"{top}/*/history/*/{run_id}.json")):
            found.append(json.loads(meta_file.read_text(encoding="utf-8")))
    return found


def read_table_csv(path: Path) -> pd.DataFrame:
    """Read a table written by :func:`save_table` (its first column is the index)."""
    return pd.read_csv(path, comment="#", index_col=0)
