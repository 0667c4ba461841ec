"""Reproduced tables laid out as the papers print them (Markdown, LaTeX, HTML).

``with_paper`` (``lrkit.evaluation.paper_compare``) gives one long row per (method, column) with every digit; that
frame is what the CSV/JSON keep and what ``lrkit compare`` reads. A reader wants the paper's table instead:

* **block 1, the paper's cells**: the paper's rows in its order, the paper's columns grouped as the paper groups
  them (the part after ``@``: resolution, domain; a column without ``@`` is its own group, e.g. Table 4's "LR 4x4"), and per column three sub-columns: the kit's
  number rounded to the paper's printed precision, the paper's number, and their difference (kit - paper). The HTML
  colours a difference by the column's "better" direction (green: the kit's number is better, red: worse);
* **block 2, the kit's extra measurements**: every cell whose row or column the paper does not have (offline
  metrics, trivial baselines), in the kit's order, rounded to three significant digits.

A cell the kit could not compute reads "unavailable" (its weights are missing; never replaced); a paper row the kit
did not run reads "–" in the kit column. The caption is the artifact's provenance line (run, profile, dataset,
weights, device) and its notes.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass

import pandas as pd

from lrkit import reference

__all__ = ["PaperLayout", "paper_layout", "render_markdown", "render_latex", "render_html", "format_sig",
           "split_column", "plain_html", "plain_markdown"]

DASH = "–"  # a cell with nothing to show (the paper printed none, or the kit did not run that row)
UNAVAILABLE = "unavailable"
SUBS = ("kit", "paper", "Δ")


def split_column(col: str) -> tuple[str, str]:
    """("128", "FID") for "FID@128"; ("LR 4x4", "") for a column without a group suffix."""
    if "@" in col:
        name, group = col.rsplit("@", 1)
        return group, name
    return col, ""


def format_sig(v: float, sig: int = 3) -> str:
    """``v`` with ``sig`` significant digits, never in exponent form for the magnitudes tables hold (139.03 ->
    "139", 0.05402 -> "0.054", 0.4314 -> "0.431")."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return DASH
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == 0:
        return "0"
    digits = max(0, sig - 1 - int(math.floor(math.log10(abs(v)))))
    return f"{v:.{digits}f}"


def _num(v) -> float | str | None:
    """A cell of the long frame as read back from CSV: float, "unavailable", or None (empty)."""
    if isinstance(v, str):
        s = v.strip()
        if s == "":
            return None
        if s == UNAVAILABLE:
            return UNAVAILABLE
        try:
            return float(s)
        except ValueError:
            return s
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return float(v)


@dataclass(frozen=True)
class PaperLayout:
    key: str  # the reference table (paper_tables/reference/<key>.csv)
    rows: list[str]  # block 1 row labels, paper order first
    columns: list[str]  # the paper's columns in its order
    decimals: dict[str, int]  # per paper column: digits after the point as the paper prints them
    better: dict[str, str]  # per paper column: "lower" | "higher" | ""
    kit: dict[tuple[str, str], float | str | None]  # (row label, column) -> the kit's value
    paper: dict[tuple[str, str], float | None]
    extra_rows: list[str]
    extra_columns: list[str]
    extra: dict[tuple[str, str], float | str | None]

    def kit_text(self, row: str, col: str) -> str:
        v = self.kit.get((row, col))
        if v is None:
            return DASH
        if isinstance(v, str):
            return v
        return f"{v:.{self.decimals[col]}f}"

    def paper_text(self, row: str, col: str) -> str:
        v = self.paper.get((row, col))
        return DASH if v is None else f"{v:.{self.decimals[col]}f}"

    def diff(self, row: str, col: str) -> float | None:
        k, p = self.kit.get((row, col)), self.paper.get((row, col))
        if isinstance(k, float) and p is not None:
            return k - p
        return None

    def diff_text(self, row: str, col: str) -> str:
        d = self.diff(row, col)
        return DASH if d is None else f"{d:+.{self.decimals[col]}f}"

    def verdict(self, row: str, col: str) -> str:
        """"better" / "worse" / "same" / "" for the kit's number against the paper's, by the column's direction."""
        d = self.diff(row, col)
        direction = self.better.get(col, "")
        if d is None or direction not in ("lower", "higher"):
            return ""
        if round(d, self.decimals[col]) == 0:
            return "same"
        return "better" if (d < 0) == (direction == "lower") else "worse"

    def extra_text(self, row: str, col: str) -> str:
        v = self.extra.get((row, col))
        if v is None:
            return DASH
        return v if isinstance(v, str) else format_sig(v)

    def groups(self, columns: list[str]) -> list[tuple[str, list[str]]]:
        """Consecutive columns sharing a group, in order: [("128", ["FID@128", "LPIPS@128"]), ...]."""
        out: list[tuple[str, list[str]]] = []
        for c in columns:
            g, _ = split_column(c)
            if out and out[-1][0] == g:
                out[-1][1].append(c)
            else:
                out.append((g, [c]))
        return out


def _paper_row_of(method: str, paper_row: object, paper_rows: list[str]) -> str:
    """The paper's label of one of the kit's methods: the recorded ``paper_row``, else the paper row that is the
    method's name or starts with it ("Stargan-v2" -> "Stargan-v2 [8]"; tables written before ``paper_row``)."""
    if isinstance(paper_row, str) and paper_row:
        return paper_row
    if method in paper_rows:
        return method
    hits = [r for r in paper_rows if r.startswith(method + " ")]
    return hits[0] if len(hits) == 1 else method


def paper_layout(df: pd.DataFrame, key: str) -> PaperLayout:
    """The layout of ``with_paper``'s long frame ``df`` (index or columns ``method``, ``column``; as returned or as
    read back from its CSV) for the paper's table ``key``."""
    long = df.reset_index() if "method" not in df.columns else df
    ref = reference.load_long(key)
    paper_rows = list(dict.fromkeys(ref["row"]))
    paper_cols = list(dict.fromkeys(ref["column"]))
    decimals = reference.decimals(key)
    better = {c: str(ref[ref["column"] == c]["better"].iloc[0]) for c in paper_cols}
    paper = {(r["row"], r["column"]): (None if pd.isna(r["value"]) else float(r["value"])) for _, r in ref.iterrows()}
    kit: dict[tuple[str, str], float | str | None] = {}
    extra: dict[tuple[str, str], float | str | None] = {}
    extra_rows: list[str] = []
    extra_cols: list[str] = []
    for _, r in long.iterrows():
        if str(r.get("status", "")) == "reported only":
            continue
        col, value = str(r["column"]), _num(r["reproduced"])
        label = _paper_row_of(str(r["method"]), r.get("paper_row", ""), paper_rows)
        if label in paper_rows and col in paper_cols:  # a cell the paper's table has: block 1
            kit[(label, col)] = value
        else:  # a row or a column of the kit's own: block 2
            extra[(label, col)] = value
            extra_rows += [] if label in extra_rows else [label]
            extra_cols += [] if col in extra_cols else [col]
    # block 2 grouped like block 1 (all "@128" columns, then all "@256"), first appearance order otherwise
    first = list(dict.fromkeys(split_column(c)[0] for c in extra_cols))
    extra_cols.sort(key=lambda c: first.index(split_column(c)[0]))
    return PaperLayout(key, paper_rows, paper_cols, decimals, better, kit, paper, extra_rows, extra_cols,
                       extra)


def _header(tuples: list[tuple[str, ...]]) -> pd.MultiIndex:
    """Column header levels, without the metric level when no column has one (Table 4's "LR 4x4")."""
    if all(t[1] == "" for t in tuples):
        tuples = [(t[0], *t[2:]) for t in tuples]
    if all(len(t) == 1 for t in tuples):
        return pd.Index([t[0] for t in tuples])
    return pd.MultiIndex.from_tuples(tuples)


def _block1_frame(lay: PaperLayout) -> pd.DataFrame:
    cols = _header([(*split_column(c), s) for c in lay.columns for s in SUBS])
    data = [[f(r, c) for c in lay.columns for f in (lay.kit_text, lay.paper_text, lay.diff_text)] for r in lay.rows]
    return pd.DataFrame(data, index=pd.Index(lay.rows, name=""), columns=cols)


def _block2_frame(lay: PaperLayout) -> pd.DataFrame:
    cols = _header([split_column(c) for c in lay.extra_columns])
    data = [[lay.extra_text(r, c) for c in lay.extra_columns] for r in lay.extra_rows]
    return pd.DataFrame(data, index=pd.Index(lay.extra_rows, name=""), columns=cols)


def _flat(frame: pd.DataFrame, columns: list[str], subs: tuple[str, ...] = ()) -> pd.DataFrame:
    """One header line for Markdown: "FID@128 kit", "FID@128 paper", ... (or "LR error@128" without subs)."""
    out = frame.copy()
    out.columns = [f"{c} {s}" for c in columns for s in subs] if subs else list(columns)
    return out


LEGEND = ("kit: the kit's number, rounded as the paper prints it (every digit in the CSV/JSON); paper: as "
          "reported; Δ: kit - paper; 'unavailable': the metric's weights are missing here (never replaced); "
          f"'{DASH}': nothing to show (the paper printed none, or the kit did not run that row)")


def render_markdown(lay: PaperLayout, title: str, caption: str, notes: str = "") -> str:
    parts = [f"**{title}**", "", _flat(_block1_frame(lay), lay.columns, SUBS).to_markdown(disable_numparse=True), ""]
    if lay.extra_columns:
        parts += ["_The kit's extra measurements (rows and columns the paper does not have):_", "",
                  _flat(_block2_frame(lay), lay.extra_columns).to_markdown(disable_numparse=True), ""]
    parts += [f"_{caption}_", "", LEGEND]
    if notes:
        parts += ["", notes]
    return "\n".join(parts) + "\n"


def _tex_escape(s: str) -> str:
    return (s.replace("\\", r"\textbackslash{}").replace("&", r"\&").replace("%", r"\%").replace("_", r"\_")
            .replace("#", r"\#").replace("$", r"\$").replace("Δ", r"$\Delta$").replace("–", "--"))


def render_latex(lay: PaperLayout, title: str, caption: str) -> str:
    def tex(frame: pd.DataFrame) -> str:
        f = frame.copy()
        f.index = [_tex_escape(str(i)) for i in f.index]
        f.columns = (pd.MultiIndex.from_tuples([tuple(_tex_escape(str(x)) for x in c) for c in f.columns])
                     if isinstance(f.columns, pd.MultiIndex) else [_tex_escape(str(c)) for c in f.columns])
        f = f.map(lambda v: _tex_escape(str(v)))
        return f.to_latex(multicolumn=True, multicolumn_format="c", escape=False)

    out = [f"% {title}", f"% {caption}", tex(_block1_frame(lay))]
    if lay.extra_columns:
        out += ["% the kit's extra measurements (rows and columns the paper does not have)", tex(_block2_frame(lay))]
    return "\n".join(out)


def _th(text: str, span: int = 1) -> str:
    return f"<th colspan='{span}'>{html.escape(text)}</th>" if span > 1 else f"<th>{html.escape(text)}</th>"


def render_html(lay: PaperLayout, title: str, caption: str, notes: str = "") -> str:
    """A self-contained ``<div class='lrkit-table'>``: both blocks, the caption and the legend."""
    g1 = lay.groups(lay.columns)
    head = ("<tr><th rowspan='3'></th>" + "".join(_th(g, 3 * len(cs)) for g, cs in g1) + "</tr><tr>"
            + "".join(_th(split_column(c)[1] or c, 3) for c in lay.columns) + "</tr><tr>"
            + "".join(_th(s) for _ in lay.columns for s in SUBS) + "</tr>")
    body = []
    for r in lay.rows:
        cells = []
        for c in lay.columns:
            k = lay.kit_text(r, c)
            cells.append(f"<td class='kit{' na' if k == UNAVAILABLE else ''}'>{html.escape(k)}</td>"
                         f"<td class='paper'>{html.escape(lay.paper_text(r, c))}</td>"
                         f"<td class='diff {lay.verdict(r, c)}'>{html.escape(lay.diff_text(r, c))}</td>")
        body.append(f"<tr><th class='row'>{html.escape(r)}</th>{''.join(cells)}</tr>")
    parts = [f"<div class='lrkit-table'><table class='paper-layout'><caption>{html.escape(title)}</caption>"
             f"<thead>{head}</thead><tbody>{''.join(body)}</tbody></table>"]
    if lay.extra_columns:
        g2 = lay.groups(lay.extra_columns)
        head2 = ("<tr><th rowspan='2'></th>" + "".join(_th(g, len(cs)) for g, cs in g2) + "</tr><tr>"
                 + "".join(_th(split_column(c)[1] or c) for c in lay.extra_columns) + "</tr>")
        body2 = "".join(
            f"<tr><th class='row'>{html.escape(r)}</th>"
            + "".join(f"<td>{html.escape(lay.extra_text(r, c))}</td>" for c in lay.extra_columns) + "</tr>"
            for r in lay.extra_rows)
        parts.append("<table class='kit-extra'><caption>The kit's extra measurements (rows and columns the paper "
                     f"does not have)</caption><thead>{head2}</thead><tbody>{body2}</tbody></table>")
    parts.append(f"<p class='prov'>{html.escape(caption)}</p><p class='legend'>{html.escape(LEGEND)}</p>")
    if notes:
        parts.append(f"<p class='notes'>{html.escape(notes)}</p>")
    return "".join(parts) + "</div>"


def _plain_display(df: pd.DataFrame) -> pd.DataFrame:
    """Any other table: floats to three significant digits (the CSV keeps every digit)."""
    return df.map(lambda v: format_sig(v) if isinstance(v, float) else v)


def plain_markdown(df: pd.DataFrame, title: str, caption: str, notes: str = "") -> str:
    md = f"**{title}**\n\n{_plain_display(df).to_markdown(disable_numparse=True)}\n\n_{caption}_\n"
    return md + (f"\n{notes}\n" if notes else "")


def plain_html(df: pd.DataFrame, title: str, caption: str, notes: str = "") -> str:
    body = _plain_display(df).to_html(border=0, na_rep=DASH, classes="plain")
    return (f"<div class='lrkit-table'><p class='title'><b>{html.escape(title)}</b></p>{body}"
            f"<p class='prov'>{html.escape(caption)}</p>"
            + (f"<p class='notes'>{html.escape(notes)}</p>" if notes else "") + "</div>")
