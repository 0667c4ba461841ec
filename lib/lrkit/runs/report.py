"""``runs/<id>/index.html``: one self-contained page linking everything a run produced."""

from __future__ import annotations

import html
import os
from pathlib import Path

from lrkit import reference
from lrkit.fsutil import atomic_write_text
from lrkit.runs.artifacts import provenance_line, read_table_csv

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}.ok{color:#0a0;font-weight:bold}.failed{color:#c00;font-weight:bold}
.pending{color:#888}.prov{color:#666;font-size:90%}.pair{display:flex;gap:2em;flex-wrap:wrap;align-items:flex-start}
img{max-width:100%;border:1px solid #ddd}code{background:#f6f6f6;padding:0 3px}
"""


def _rel(target: Path, start: Path) -> str:
    return html.escape(os.path.relpath(target, start))


def _df_html(df) -> str:
    return df.to_html(float_format=lambda v: f"{v:.4g}", na_rep="–", border=0)


def _notebooks_section(run_dir: Path, manifest: dict) -> str:
    rows = []
    for name, nb in manifest.get("notebooks", {}).items():
        status = nb.get("status", "pending")
        links = []
        for key, label in (("html", "report"), ("notebook", "notebook"), ("log", "log")):
            if nb.get(key):
                links.append(f'<a href="{html.escape(nb[key])}">{label}</a>')
        err = f"<br><code>{html.escape(nb['error'])}</code>" if nb.get("error") else ""
        secs = f"{nb['seconds']:.1f} s" if "seconds" in nb else ""
        rows.append(
            f'<tr><td style="text-align:left">{html.escape(name)}{err}</td>'
            f'<td class="{html.escape(status)}">{html.escape(status)}</td><td>{secs}</td>'
            f'<td style="text-align:left">{" · ".join(links)}</td></tr>'
        )
    return ("<h2>Notebooks</h2><table><tr><th>notebook</th><th>status</th><th>time</th><th>outputs</th></tr>"
            + "".join(rows) + "</table>")


def _artifacts_section(run_dir: Path, manifest: dict) -> str:
    out_root = Path(manifest.get("output_root", run_dir))
    tables = [a for a in manifest.get("artifacts", []) if a["kind"] == "table"]
    figures = [a for a in manifest.get("artifacts", []) if a["kind"] == "figure"]
    parts = ["<h2>Tables</h2>"]
    if not tables:
        parts.append("<p>This run wrote no table.</p>")
    for meta in tables:
        csv = out_root / meta["files"]["csv"]
        body = _df_html(read_table_csv(csv))
        block = f"<div><h4>reproduced</h4>{body}</div>"
        if meta.get("reference"):
            ref = reference.load(meta["reference"])
            block += f"<div><h4>{html.escape(reference.title(meta['reference']))}</h4>{_df_html(ref)}</div>"
        links = " · ".join(f'<a href="{_rel(out_root / p, run_dir)}">{ext}</a>' for ext, p in meta["files"].items())
        parts.append(
            f"<h3>{html.escape(meta['title'])}</h3><p class='prov'>{html.escape(provenance_line(meta))} · {links}</p>"
            f"<div class='pair'>{block}</div>"
            + (f"<p>{html.escape(meta['notes'])}</p>" if meta.get("notes") else "")
        )
    parts.append("<h2>Figures</h2>")
    if not figures:
        parts.append("<p>This run wrote no figure.</p>")
    for meta in figures:
        png = _rel(out_root / meta["files"]["png"], run_dir)
        pdf = _rel(out_root / meta["files"]["pdf"], run_dir)
        parts.append(
            f"<h3>{html.escape(meta['title'])}</h3><p class='prov'>{html.escape(provenance_line(meta))} · "
            f'<a href="{pdf}">pdf</a></p><img src="{png}" alt="{html.escape(meta["name"])}">'
            + (f"<p>{html.escape(meta['notes'])}</p>" if meta.get("notes") else "")
        )
    return "".join(parts)


def _inputs_section(manifest: dict) -> str:
    parts = ["<h2>Inputs</h2><h4>Datasets (content fingerprints)</h4>"]
    ds = manifest.get("datasets", [])
    parts.append("<ul>" + "".join(
        f"<li>{html.escape(d['name'])}: <code>{html.escape(d['fingerprint'][:16])}…</code></li>" for d in ds
    ) + "</ul>" if ds else "<p>none recorded</p>")
    parts.append("<h4>Weight files</h4>")
    ws = manifest.get("weights", [])
    parts.append("<ul>" + "".join(
        f"<li>{html.escape(w['name'])}: <code>{html.escape(w['sha256'][:16])}…</code>"
        f"{'' if w.get('verified') else ' <b>unverified weights</b>'}</li>" for w in ws
    ) + "</ul>" if ws else "<p>none used</p>")
    skipped = manifest.get("skipped_images", [])
    total = sum(s["count"] for s in skipped)
    parts.append(f"<h4>Skipped (unreadable) images: {total}</h4>")
    for s in skipped:
        if s["count"]:
            items = "".join(f"<li><code>{html.escape(str(f[0]))}</code>: {html.escape(str(f[1]))}</li>"
                            for f in s["files"])
            parts.append(f"<p>{html.escape(s['dataset'])} ({s['count']}):</p><ul>{items}</ul>")
    return "".join(parts)


def _reference_section() -> str:
    parts = ["<h2>Paper reference numbers</h2>"]
    for key in reference.keys():
        parts.append(f"<details><summary>{html.escape(reference.title(key))} "
                     f"(<code>{key}</code>)</summary>{_df_html(reference.load(key))}</details>")
    return "".join(parts)


def write_index(run_dir: Path, manifest: dict) -> Path:
    run_dir = Path(run_dir)
    env = manifest.get("environment", {})
    git = manifest.get("git", {})
    statuses = [nb.get("status") for nb in manifest.get("notebooks", {}).values()]
    overall = "ok" if statuses and all(s == "ok" for s in statuses) else "failed"
    head = (
        f"<h1>lrkit run {html.escape(manifest['run_id'])}</h1>"
        f"<p>Status: <span class='{overall}'>{overall}</span> · profile <b>{html.escape(manifest['profile']['name'])}</b>"
        f" · device {html.escape(str(env.get('device_name')))} · git <code>{html.escape(str(git.get('commit')))[:12]}</code>"
        f"{' (dirty)' if git.get('dirty') else ''} · python {html.escape(str(env.get('python')))}"
        f" · torch {html.escape(str(env.get('packages', {}).get('torch')))}<br>"
        f"started {html.escape(str(manifest.get('started')))} · ended {html.escape(str(manifest.get('ended')))}"
        f" · <a href='manifest.json'>manifest.json</a></p>"
    )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>lrkit run {html.escape(manifest['run_id'])}"
        f"</title><style>{_CSS}</style></head><body>{head}{_notebooks_section(run_dir, manifest)}"
        f"{_artifacts_section(run_dir, manifest)}{_inputs_section(manifest)}{_reference_section()}</body></html>"
    )
    path = run_dir / "index.html"
    atomic_write_text(path, page)
    return path
