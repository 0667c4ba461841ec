"""Versioned tables and figures.

Layout (``root`` is the checkout unless a run says otherwise)::

    paper_tables/<profile>/<name>.{csv,md,tex,html,json}                  latest version
    paper_tables/<profile>/history/<name>/<run_id>.{csv,md,tex,html,json} every version ever written
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


def is_paper_frame(df: pd.DataFrame) -> bool:
    """Whether ``df`` is ``with_paper``'s long frame (one row per method and column, next to the paper's)."""
    cols = set(df.reset_index().columns)
    return {"method", "column", "reproduced", "paper", "status"} <= cols


def table_texts(df: pd.DataFrame, meta: dict) -> dict[str, str]:
    """CSV with every digit; Markdown, LaTeX and HTML for reading: laid out as the paper's table when the frame
    is ``with_paper``'s and names its reference (``lrkit.evaluation.paper_layout``), else rounded as it is."""
    from lrkit.evaluation import paper_layout as pl

    prov = provenance_line(meta)
    csv = f"# {meta['title']}\n# {prov}\n" + df.to_csv(float_format="%.10g")
    if meta.get("reference") and is_paper_frame(df):
        lay = pl.paper_layout(df, meta["reference"])
        md = pl.render_markdown(lay, meta["title"], prov, meta["notes"])
        tex = pl.render_latex(lay, meta["title"], prov)
        page = pl.render_html(lay, meta["title"], prov, meta["notes"])
    else:
        md = pl.plain_markdown(df, meta["title"], prov, meta["notes"])
        tex = f"% {meta['title']}\n% {prov}\n" + df.to_latex(float_format="%.4g", na_rep="--")
        page = pl.plain_html(df, meta["title"], prov, meta["notes"])
    return {"csv": csv, "md": md, "tex": tex, "html": page}


def save_table(df: pd.DataFrame, name: str, *, root: Path, run_id: str, profile: str, title: str,
               dataset: str, weights: str, device: str, reference: str | None = None, notes: str = "") -> dict:
    """Write ``df`` as CSV, Markdown and LaTeX (latest + history). Returns the provenance dict."""
    _check_name(name)
    if not isinstance(df, pd.DataFrame) or df.empty:
        raise ValueError(f"table {name!r}: expected a non-empty pandas DataFrame")
    meta = _meta("table", name, run_id, profile, title, dataset, weights, device, reference, notes)
    payload = {ext: text.encode("utf-8") for ext, text in table_texts(df, meta).items()}
    # The sidecar also carries the numbers with every digit (the CSV's content), for tools that read JSON.
    data = json.loads(df.reset_index().to_json(orient="split", index=False, double_precision=15))
    return _write_versions(Path(root), TABLE_DIR, meta, payload, sidecar_extra={"data": data})


def _write_versions(root: Path, top: str, meta: dict, payload: dict[str, bytes],
                    sidecar_extra: dict | None = None) -> dict:
    """Write ``payload`` (extension -> bytes) and the provenance sidecar: history copy first, then the latest."""
    base = root / top / meta["profile"]
    hist = base / "history" / meta["name"]
    meta["files"] = {ext: str((hist / f"{meta['run_id']}.{ext}").relative_to(root)) for ext in payload}
    for stem, folder in ((meta["run_id"], hist), (meta["name"], base)):
        for ext, data in payload.items():
            atomic_write_bytes(folder / f"{stem}.{ext}", data)
        atomic_write_json(folder / f"{stem}.json", {**meta, **(sidecar_extra or {})})
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
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
            meta.pop("data", None)  # a table's numbers: the CSV is their home
            found.append(meta)
    return found


def rerender_tables(root: Path, profile: str) -> list[Path]:
    """Rewrite the Markdown, LaTeX and HTML of ``paper_tables/<profile>/*`` (latest copies) from their CSV and
    sidecar: the same run's numbers in the current layout (a table written before it, e.g.). The CSV, the sidecar's
    provenance and every history copy are left as they are. Returns the CSVs re-rendered."""
    base = Path(root) / TABLE_DIR / profile
    done = []
    for csv in sorted(base.glob("*.csv")):
        meta_file = csv.with_suffix(".json")
        if not meta_file.is_file():
            continue
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        texts = table_texts(read_table_csv(csv), meta)
        for ext in ("md", "tex", "html"):
            atomic_write_bytes(csv.with_suffix(f".{ext}"), texts[ext].encode("utf-8"))
        done.append(csv)
    return done


def read_table_csv(path: Path) -> pd.DataFrame:
    """Read a table written by :func:`save_table` (its first column is the index)."""
    return pd.read_csv(path, comment="#", index_col=0)
