"""Tables laid out as the papers print them: rows, grouped columns, the paper's precision, kit vs paper and Δ."""

from __future__ import annotations

import json

import pandas as pd

from lrkit import reference
from lrkit.evaluation import paper_layout as pl
from lrkit.evaluation.paper_compare import UNAVAILABLE, with_paper
from lrkit.runs import artifacts


def _table1() -> pd.DataFrame:
    cells = {
        "Ours": {"FID@128": 14.123456, "LPIPS@128": 0.30127, "FID@256": UNAVAILABLE,
                 "LR error (grey levels)@128": 0.0540234},
        "Stargan-v2": {"FID@128": 20.5, "LR error (grey levels)@128": 40.4123},
        "Bicubic-upsampled LR target": {"FID@128": UNAVAILABLE, "LR error (grey levels)@128": 2.8969},
    }
    return with_paper(cells, "i2ilr_table1", method_names={"Stargan-v2": "Stargan-v2 [8]"},
                      own_measurement=["synthfaces"])


def test_reference_decimals_follow_the_printed_values():
    d = reference.decimals("i2ilr_table1")
    assert d["FID@128"] == 2 and d["LPIPS@256"] == 3  # 25.89; 0.176 / 0.329
    assert reference.decimals("i2ilr_table4")["LR 4x4"] == 2  # "0.30" counts two


def test_paper_rows_columns_precision_and_difference():
    lay = pl.paper_layout(_table1(), "i2ilr_table1")
    # The paper's rows in its order; the kit's Stargan-v2 sits on the paper's "Stargan-v2 [8]" row.
    assert lay.rows == ["MUNIT [16]", "DRIT [22]", "MSGAN [27]", "Stargan-v2 [8]", "Ours"]
    assert lay.columns == ["FID@128", "LPIPS@128", "FID@256", "LPIPS@256"]
    assert [g for g, _ in lay.groups(lay.columns)] == ["128", "256"]
    assert lay.kit_text("Ours", "FID@128") == "14.12" and lay.paper_text("Ours", "FID@128") == "15.52"
    assert lay.diff_text("Ours", "FID@128") == "-1.40" and lay.verdict("Ours", "FID@128") == "better"  # lower
    assert lay.kit_text("Ours", "LPIPS@128") == "0.30" and lay.verdict("Ours", "LPIPS@128") == "worse"  # higher
    assert lay.kit_text("Stargan-v2 [8]", "FID@128") == "20.50" and lay.verdict("Stargan-v2 [8]", "FID@128") == "worse"
    assert lay.kit_text("Ours", "FID@256") == UNAVAILABLE and lay.diff_text("Ours", "FID@256") == pl.DASH
    assert lay.kit_text("MUNIT [16]", "FID@256") == pl.DASH and lay.paper_text("MUNIT [16]", "FID@256") == "107.10"
    # Block 2: what the paper's table does not have, three significant digits.
    assert lay.extra_columns == ["LR error (grey levels)@128", "FID@128"]
    assert lay.extra_rows == ["Ours", "Stargan-v2 [8]", "Bicubic-upsampled LR target"]
    assert lay.extra_text("Ours", "LR error (grey levels)@128") == "0.0540"
    assert lay.extra_text("Stargan-v2 [8]", "LR error (grey levels)@128") == "40.4"
    assert lay.extra_text("Bicubic-upsampled LR target", "FID@128") == UNAVAILABLE


def test_rows_are_placed_from_the_csv_as_written_before_paper_row():
    long = _table1().reset_index().drop(columns=["paper_row"])
    lay = pl.paper_layout(long, "i2ilr_table1")
    assert lay.kit_text("Stargan-v2 [8]", "FID@128") == "20.50"


def test_format_sig():
    assert [pl.format_sig(v) for v in (139.0307, 0.0540234, 0.43142, 2.8969, 1234.5, 0.0)] == \
        ["139", "0.0540", "0.431", "2.90", "1234", "0"]
    assert (pl.format_sig(float("inf")), pl.format_sig(float("-inf")), pl.format_sig(float("nan"))) == \
        ("inf", "-inf", pl.DASH)


def test_saved_table_reads_like_the_paper_and_keeps_every_digit(tmp_path):
    df = _table1()
    artifacts.save_table(df, "table1", root=tmp_path, run_id="runA", profile="smoke", title="I2I-LR Table 1",
                         dataset="synthfaces@abc", weights="w", device="cpu-test", reference="i2ilr_table1",
                         notes="own measurement")
    base = tmp_path / "paper_tables/smoke"
    md = (base / "table1.md").read_text()
    assert "| Ours " in md and "14.12" in md and "15.52" in md and "-1.40" in md and "14.123456" not in md
    assert "FID@128 kit" in md and "run runA" in md and "profile smoke" in md and "cpu-test" in md
    tex = (base / "table1.tex").read_text()
    assert r"\multicolumn{6}{c}{128}" in tex and r"$\Delta$" in tex and "14.12" in tex
    page = (base / "table1.html").read_text()
    assert "<td class='diff better'>-1.40</td>" in page and "synthfaces@abc" in page
    csv = artifacts.read_table_csv(base / "table1.csv")
    assert float(csv[csv["column"] == "FID@128"].loc["Ours", "reproduced"]) == 14.123456
    data = json.loads((base / "table1.json").read_text())["data"]
    row = [r for r in data["data"] if r[0] == "Ours" and r[1] == "FID@128"][0]
    assert float(row[2]) == 14.123456
    # the manifest's copy of the provenance carries no numbers
    assert "data" not in artifacts.run_artifacts(tmp_path, "runA")[0]


def test_plain_tables_are_rounded_with_a_caption(tmp_path):
    df = pd.DataFrame({"swd": [87.5123, 990.8], "n": [200, 200]}, index=pd.Index(["GAN", "untrained"], name="row"))
    artifacts.save_table(df, "check", root=tmp_path, run_id="runB", profile="cpu", title="Check",
                         dataset="d", weights="w", device="cpu")
    md = (tmp_path / "paper_tables/cpu/check.md").read_text()
    assert "87.5 " in md and "87.5123" not in md and "run runB" in md
    assert "<table" in (tmp_path / "paper_tables/cpu/check.html").read_text()


def test_rerender_keeps_the_numbers_and_applies_the_layout(tmp_path):
    artifacts.save_table(_table1(), "table1", root=tmp_path, run_id="runA", profile="cpu", title="T1",
                         dataset="d", weights="w", device="cpu", reference="i2ilr_table1")
    base = tmp_path / "paper_tables/cpu"
    csv_before = (base / "table1.csv").read_text()
    (base / "table1.md").write_text("an old layout")
    assert artifacts.rerender_tables(tmp_path, "cpu") == [base / "table1.csv"]
    assert "14.12" in (base / "table1.md").read_text() and (base / "table1.csv").read_text() == csv_before
    assert "run runA" in (base / "table1.html").read_text()
