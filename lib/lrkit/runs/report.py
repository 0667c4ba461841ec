"""HTML reports: ``runs/<id>/index.html`` for one run, ``runs/index.html`` over all runs (``lrkit report``).

A run's page opens with what failed (error and log link), then the manifest in brief (commit, profile, device,
datasets, weights, overrides), then the papers' artifacts in the papers' order (the order of
``lrkit.runs.notebooks.NOTEBOOKS``: I2I-LR Tables 1-4, Figs. 5-8 with the PULSE comparison, then SR-NAM's figures),
then training and diagnostics (data factors, metric sanity). Each table is the paper layout its artifact wrote
(``<name>.html``: the kit's number beside the paper's with the difference coloured); each figure is shown with its
provenance line. Every notebook's own HTML is linked. Pages are self-contained (relative links only).
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

from lrkit import reference
from lrkit.fsutil import atomic_write_text, read_jsonl
from lrkit.runs import notebooks as nbreg
from lrkit.runs.artifacts import provenance_line, read_table_csv

__all__ = ["write_index", "write_runs_index", "CSS"]

CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1250px;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:.5em 0;font-size:90%}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f3f3f3}th.row{text-align:left}caption{text-align:left;font-weight:bold;padding:.3em 0}
.ok{color:#0a0;font-weight:bold}.failed{color:#c00;font-weight:bold}.pending{color:#888}
.prov{color:#666;font-size:85%}.legend{color:#666;font-size:80%}.notes{font-size:90%}
td.paper{color:#555}td.na{color:#999;font-style:italic}td.diff.better{background:#e3f6e3;color:#060}
td.diff.worse{background:#fbe3e3;color:#900}td.diff.same{background:#f3f3f3}
.lrkit-table{overflow-x:auto;margin-bottom:1.5em}table.kit-extra caption{white-space:nowrap;font-weight:normal}
.fail{border-left:4px solid #c00;padding:.3em 1em;background:#fff6f6}
img{max-width:100%;border:1px solid #ddd}code{background:#f6f6f6;padding:0 3px}
nav a{margin-right:1em}dl.summary{display:grid;grid-template-columns:12em 1fr;gap:.2em 1em}dl.summary dt{color:#555}
"""


def _rel(target: Path, start: Path) -> str:
    return html.escape(os.path.relpath(target, start))


def _df_html(df) -> str:
    return df.to_html(float_format=lambda v: f"{v:.4g}", na_rep="–", border=0)


def _table_block(meta: dict, out_root: Path) -> str:
    """The table as its artifact rendered it (``.html``); tables written before that are rendered from the CSV."""
    from lrkit.runs.artifacts import table_texts

    files = meta["files"]
    if files.get("html") and (out_root / files["html"]).is_file():
        return (out_root / files["html"]).read_text(encoding="utf-8")
    return table_texts(read_table_csv(out_root / files["csv"]), {"notes": "", **meta})["html"]


def _artifact_html(meta: dict, out_root: Path, run_dir: Path) -> str:
    links = " · ".join(f'<a href="{_rel(out_root / p, run_dir)}">{html.escape(ext)}</a>'
                       for ext, p in meta["files"].items())
    anchor = f"{meta['kind']}-{meta['name']}"
    if meta["kind"] == "table":
        return (f"<section id='{html.escape(anchor)}'>{_table_block(meta, out_root)}"
                f"<p class='prov'>files: {links}</p></section>")
    png = _rel(out_root / meta["files"]["png"], run_dir)
    return (f"<section id='{html.escape(anchor)}'><h4>{html.escape(meta['title'])}</h4>"
            f"<img src=\"{png}\" alt=\"{html.escape(meta['name'])}\">"
            f"<p class='prov'>{html.escape(provenance_line(meta))} · {links}</p>"
            + (f"<p class='notes'>{html.escape(meta['notes'])}</p>" if meta.get("notes") else "") + "</section>")


def _by_notebook(run_dir: Path, manifest: dict) -> dict[str, list[dict]]:
    """Artifacts grouped by the notebook that wrote them (from the run's events), in the order written."""
    order: dict[str, str] = {}
    for ev in read_jsonl(run_dir / "events.jsonl") if (run_dir / "events.jsonl").exists() else []:
        if ev.get("kind") == "artifact":
            order.setdefault(f"{ev['artifact_kind']}:{ev['name']}", ev.get("notebook") or "")
    keys = list(order)
    groups: dict[str, list[dict]] = {}
    arts = sorted(manifest.get("artifacts", []),
                  key=lambda m: keys.index(f"{m['kind']}:{m['name']}") if f"{m['kind']}:{m['name']}" in order
                  else len(keys))
    for meta in arts:
        groups.setdefault(order.get(f"{meta['kind']}:{meta['name']}", ""), []).append(meta)
    return groups


def _notebook_links(nb: dict) -> str:
    links = [f'<a href="{html.escape(nb[k])}">{label}</a>'
             for k, label in (("html", "notebook report"), ("notebook", "executed notebook"), ("log", "log"))
             if nb.get(k)]
    return " · ".join(links)


def _failures_section(manifest: dict) -> str:
    failed = {n: nb for n, nb in manifest.get("notebooks", {}).items() if nb.get("status") == "failed"}
    if not failed:
        return ""
    rows = "".join(f"<div class='fail'><b>{html.escape(n)}</b>: <code>{html.escape(str(nb.get('error')))}</code>"
                   f"<br>{_notebook_links(nb)}</div>" for n, nb in failed.items())
    return f"<h2 id='failures'>Failures ({len(failed)})</h2>{rows}"


def _summary_section(manifest: dict) -> str:
    env, git, prof = manifest.get("environment", {}), manifest.get("git", {}), manifest.get("profile", {})
    ds = manifest.get("datasets", [])
    ws = manifest.get("weights", [])
    items = [
        ("commit", f"<code>{html.escape(str(git.get('commit')))}</code>{' (dirty)' if git.get('dirty') else ''}"),
        ("profile", f"<b>{html.escape(str(prof.get('name')))}</b>: {html.escape(str(prof.get('description', '')))}"),
        ("device", html.escape(str(env.get("device_name")))),
        ("started / ended", f"{html.escape(str(manifest.get('started')))} / {html.escape(str(manifest.get('ended')))}"),
        ("software", html.escape(f"python {env.get('python')} · torch {env.get('packages', {}).get('torch')} · "
                                 f"papermill {env.get('packages', {}).get('papermill')}")),
        ("jobs", html.escape(f"{manifest.get('jobs', 1)} (kernel threads {manifest.get('kernel_threads') or 'all'}, "
                             f"cell timeout {manifest.get('cell_timeout_s', 0) or 'none'} s)")),
        ("datasets", "<br>".join(f"{html.escape(d['name'])} <code>{html.escape(d['fingerprint'][:12])}</code>"
                                 for d in ds) or "none recorded"),
        ("datasets given", html.escape(json.dumps(manifest.get("datasets_given") or {})) or "none"),
        ("weights", "<br>".join(f"{html.escape(w['name'])} <code>{html.escape(w['sha256'][:12])}</code>"
                                f"{'' if w.get('verified') else ' <b>unverified</b>'}" for w in ws) or "none used"),
        ("overrides", f"<code>{html.escape(json.dumps(manifest.get('overrides') or {}))}</code>"),
    ]
    body = "".join(f"<dt>{html.escape(k)}</dt><dd>{v}</dd>" for k, v in items)
    return f"<h2 id='summary'>Manifest summary</h2><dl class='summary'>{body}</dl>" \
           f"<p><a href='manifest.json'>manifest.json</a></p>"


def _sections(run_dir: Path, manifest: dict) -> tuple[str, list[tuple[str, str]]]:
    out_root = Path(manifest.get("output_root", run_dir))
    groups = _by_notebook(run_dir, manifest)
    notebooks = manifest.get("notebooks", {})
    parts, toc = [], []
    for section, heading in nbreg.SECTIONS:
        specs = [s for s in nbreg.NOTEBOOKS if s.section == section and (s.name in notebooks or s.name in groups)]
        if not specs:
            continue
        toc.append((section, heading))
        parts.append(f"<h2 id='{section}'>{html.escape(heading)}</h2>")
        for spec in specs:
            nb = notebooks.get(spec.name, {})
            status = nb.get("status", "ok" if spec.name in groups else "pending")
            parts.append(f"<h3 id='nb-{spec.name}'>{html.escape(spec.title)} <span class='{html.escape(status)}'>"
                         f"{html.escape(status)}</span></h3><p class='prov'><code>{spec.name}.ipynb</code> · "
                         f"{_notebook_links(nb)}</p>")
            arts = groups.get(spec.name, [])
            if not arts and status == "ok":
                parts.append("<p>This notebook wrote no table or figure.</p>")
            parts += [_artifact_html(m, out_root, run_dir) for m in arts]
    known = {s.name for s in nbreg.NOTEBOOKS}
    rest = [m for name, ms in groups.items() if name not in known for m in ms]
    if rest:
        toc.append(("other", "Other artifacts"))
        parts.append("<h2 id='other'>Other artifacts</h2>")
        parts += [_artifact_html(m, out_root, run_dir) for m in rest]
    return "".join(parts), toc


def _notebooks_section(manifest: dict) -> str:
    rows = []
    for name, nb in manifest.get("notebooks", {}).items():
        status = nb.get("status", "pending")
        err = f"<br><code>{html.escape(nb['error'])}</code>" if nb.get("error") else ""
        secs = f"{nb['seconds']:.1f} s" if "seconds" in nb else ""
        rows.append(f'<tr><td style="text-align:left">{html.escape(name)}{err}</td>'
                    f'<td class="{html.escape(status)}">{html.escape(status)}</td><td>{secs}</td>'
                    f'<td style="text-align:left">{_notebook_links(nb)}</td></tr>')
    if not rows:
        return ""
    return ("<h2 id='notebooks'>Notebooks</h2><table><tr><th>notebook</th><th>status</th><th>time</th>"
            "<th>outputs</th></tr>" + "".join(rows) + "</table>")


def _skipped_section(manifest: dict) -> str:
    skipped = manifest.get("skipped_images", [])
    total = sum(s["count"] for s in skipped)
    parts = [f"<h2 id='skipped'>Skipped (unreadable) input files: {total}</h2>"]
    for s in skipped:
        if s["count"]:
            items = "".join(f"<li><code>{html.escape(str(f[0]))}</code>: {html.escape(str(f[1]))}</li>"
                            for f in s["files"])
            parts.append(f"<p>{html.escape(s['dataset'])} ({s['count']}):</p><ul>{items}</ul>")
    return "".join(parts)


def _reference_section() -> str:
    parts = ["<h2 id='reference'>Paper reference numbers</h2>"]
    for key in reference.keys():
        parts.append(f"<details><summary>{html.escape(reference.title(key))} "
                     f"(<code>{key}</code>)</summary>{_df_html(reference.load(key))}</details>")
    return "".join(parts)


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body>{body}</body></html>")


def write_index(run_dir: Path, manifest: dict) -> Path:
    run_dir = Path(run_dir)
    git = manifest.get("git", {})
    statuses = [nb.get("status") for nb in manifest.get("notebooks", {}).values()]
    overall = "ok" if statuses and all(s == "ok" for s in statuses) else ("failed" if statuses else "interactive")
    sections, toc = _sections(run_dir, manifest)
    failures = _failures_section(manifest)
    nav = [("failures", "Failures")] if failures else []
    nav += [("summary", "Manifest")] + toc + [("notebooks", "Notebooks"), ("skipped", "Skipped files"),
                                              ("reference", "Paper numbers")]
    shot = ("<p class='prov'><a href='screenshot.png'>screenshot of this page</a> (headless Chromium)</p>"
            if (run_dir / "screenshot.png").exists() else "")
    head = (f"<h1>lrkit run {html.escape(manifest['run_id'])}</h1>"
            f"<p>Status: <span class='{overall}'>{overall}</span> · profile "
            f"<b>{html.escape(str(manifest.get('profile', {}).get('name')))}</b> · device "
            f"{html.escape(str(manifest.get('environment', {}).get('device_name')))} · git "
            f"<code>{html.escape(str(git.get('commit')))[:12]}</code>{' (dirty)' if git.get('dirty') else ''}"
            f" · <a href='../index.html'>all runs</a></p>{shot}"
            "<nav>" + "".join(f"<a href='#{k}'>{html.escape(v)}</a>" for k, v in nav) + "</nav>")
    body = (head + failures + _summary_section(manifest) + sections + _notebooks_section(manifest)
            + _skipped_section(manifest) + _reference_section())
    path = run_dir / "index.html"
    atomic_write_text(path, _page(f"lrkit run {manifest['run_id']}", body))
    return path


def _compare_page(runs_dir: Path, out_root: Path, a: str, b: str) -> str | None:
    """``compare/<a>__<b>.html`` (what ``lrkit compare a b`` prints, as a page); None when either run wrote no
    artifact under ``out_root``."""
    from lrkit.runs.compare import compare_runs

    try:
        res = compare_runs(a, b, out_root)
    except FileNotFoundError:
        return None
    changed = res.changed
    body = (f"<h1>compare {html.escape(a)} → {html.escape(b)}</h1><p><a href='../index.html'>all runs</a></p>"
            f"<p>{len(res.cells)} numbers compared, {len(changed)} changed.</p>"
            + (_df_html(changed) if len(changed) else "")
            + "<ul>" + "".join(f"<li>figure {html.escape(k)}: {html.escape(v)}</li>"
                               for k, v in sorted(res.figures.items()))
            + "".join(f"<li>only in {html.escape(a)}: {html.escape(x)}</li>" for x in res.only_in_a)
            + "".join(f"<li>only in {html.escape(b)}: {html.escape(x)}</li>" for x in res.only_in_b) + "</ul>")
    rel = f"compare/{a}__{b}.html"
    atomic_write_text(runs_dir / rel, _page(f"compare {a} {b}", body))
    return rel


def write_runs_index(runs_dir: Path, rebuild: bool = True) -> Path:
    """``runs/index.html``: every run newest first (status, profile, commit, device, notebooks), each run's page
    rebuilt from its manifest when ``rebuild``, and a compare page between consecutive runs of one profile."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise FileNotFoundError(f"no runs folder at {runs_dir}; `lrkit reproduce` creates one")
    manifests = []
    for mf in sorted(runs_dir.glob("*/manifest.json"), reverse=True):  # run ids start with the UTC time
        try:
            manifests.append((mf.parent, json.loads(mf.read_text(encoding="utf-8"))))
        except (OSError, json.JSONDecodeError) as exc:
            manifests.append((mf.parent, {"run_id": mf.parent.name, "error": f"unreadable manifest: {exc}"}))
    previous: dict[str, str] = {}  # profile -> the next newer run id seen so far
    rows = []
    for run_dir, m in manifests:
        if "error" in m:
            rows.append(f"<tr><td style='text-align:left'>{html.escape(m['run_id'])}</td>"
                        f"<td colspan='7' class='failed'>{html.escape(m['error'])}</td></tr>")
            continue
        if rebuild:
            write_index(run_dir, m)
        nbs = m.get("notebooks", {})
        ok = sum(nb.get("status") == "ok" for nb in nbs.values())
        failed = sum(nb.get("status") == "failed" for nb in nbs.values())
        status = "ok" if nbs and ok == len(nbs) else ("failed" if failed else m.get("kind", ""))
        prof = m.get("profile", {}).get("name", "")
        compare = ""
        newer = previous.get(prof)
        if newer and m.get("kind") == "reproduce":
            rel = _compare_page(runs_dir, Path(m.get("output_root", runs_dir.parent)), m["run_id"], newer)
            compare = f"<a href='{html.escape(rel)}'>changes → {html.escape(newer)}</a>" if rel else ""
        if m.get("kind") == "reproduce":
            previous[prof] = m["run_id"]
        rows.append(
            f"<tr><td style='text-align:left'><a href='{html.escape(run_dir.name)}/index.html'>"
            f"{html.escape(m['run_id'])}</a></td><td>{html.escape(str(m.get('kind')))}</td><td>{html.escape(prof)}</td>"
            f"<td class='{html.escape(status)}'>{html.escape(status)}</td><td>{ok}/{len(nbs)}</td>"
            f"<td><code>{html.escape(str(m.get('git', {}).get('short', '')))}</code></td>"
            f"<td>{html.escape(str(m.get('environment', {}).get('device_name', '')))}</td>"
            f"<td style='text-align:left'>{compare}</td></tr>")
    body = ("<h1>lrkit runs</h1><p>Newest first. Each run's page has its tables (the kit's numbers beside the "
            "papers'), figures, notebooks and manifest; 'changes' compares a run with the next newer run of the same "
            "profile (<code>lrkit compare</code>).</p><table><tr><th>run</th><th>kind</th><th>profile</th>"
            "<th>status</th><th>notebooks ok</th><th>commit</th><th>device</th><th>compare</th></tr>"
            + "".join(rows) + "</table>")
    path = runs_dir / "index.html"
    atomic_write_text(path, _page("lrkit runs", body))
    return path
