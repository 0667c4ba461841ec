"""The papers' reported numbers, transcribed into ``paper_tables/reference/`` (see its README)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


LONG_COLUMNS = ["paper", "table", "row", "column", "value", "better", "note"]


def reference_dir() -> Path:
    # Part of the kit itself (not a run output): found next to the package, wherever runs write.
    return Path(__file__).resolve().parents[2] / "paper_tables" / "reference"


def keys() -> list[str]:
    return sorted(p.stem for p in reference_dir().glob("*.csv"))


def _path(key: str) -> Path:
    path = reference_dir() / f"{key}.csv"
    if not path.exists():
        raise KeyError(f"no paper reference table {key!r}; known: {', '.join(keys())}")
    return path


def load_long(key: str) -> pd.DataFrame:
    path = _path(key)
    df = pd.read_csv(path, dtype={"note": str}, keep_default_na=False, na_values={"value": [""]})
    if list(df.columns) != LONG_COLUMNS:
        raise ValueError(f"{path}: expected columns {LONG_COLUMNS}, found {list(df.columns)}")
    return df


def load(key: str) -> pd.DataFrame:
    """The table as printed: rows and columns in the paper's order, NaN where the paper printed '–'."""
    long = load_long(key)
    rows = list(dict.fromkeys(long["row"]))
    cols = list(dict.fromkeys(long["column"]))
    wide = long.pivot(index="row", columns="column", values="value").reindex(index=rows, columns=cols)
    wide.index.name = f"{long['paper'].iloc[0]} {long['table'].iloc[0]}"
    wide.columns.name = None
    return wide


def title(key: str) -> str:
    long = load_long(key)
    return f"{long['paper'].iloc[0]}, {long['table'].iloc[0]} (as reported)"


def decimals(key: str, default: int = 2) -> dict[str, int]:
    """Per column of paper table ``key``: the most digits after the point among the values the paper printed there
    (read from the transcription's text, so "0.30" counts two); ``default`` for a column with no printed value."""
    raw = pd.read_csv(_path(key), dtype=str, keep_default_na=False)
    out: dict[str, int] = {}
    for col, text in zip(raw["column"], raw["value"]):
        text = text.strip()
        if not text:
            out.setdefault(col, -1)
            continue
        out[col] = max(out.get(col, -1), len(text.split(".", 1)[1]) if "." in text else 0)
    return {c: (default if d < 0 else d) for c, d in out.items()}
