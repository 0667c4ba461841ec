"""Run ids, versioned artifacts, compare and the HTML index (no notebook execution here)."""

from __future__ import annotations

import datetime as dt
import json
import threading

import matplotlib
import pandas as pd
import pytest
from PIL import Image

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from lrkit.runs import artifacts  # noqa: E402
from lrkit.runs.compare import compare_runs  # noqa: E402
from lrkit.runs.context import open_run  # noqa: E402
from lrkit.runs.report import write_index  # noqa: E402
from lrkit.runs.runid import RUN_ID_RE, create_run_dir  # noqa: E402
from run_fixtures import reproduce_like_run as _reproduce_like_run  # noqa: E402

NOW = dt.datetime(2026, 11, 22, 5, 35, 12, tzinfo=dt.timezone.utc)


def test_run_id_format_and_same_second_uniqueness(tmp_path):
    a, pa = create_run_dir(tmp_path, "abc1234", NOW)
    b, pb = create_run_dir(tmp_path, "abc1234", NOW)
    assert a == "20261122T053512Z-abc1234" and b == "20261122T053512Z-abc1234-2"
    assert RUN_ID_RE.match(a) and RUN_ID_RE.match(b) and pa.is_dir() and pb.is_dir()


def test_run_ids_unique_under_concurrency(tmp_path):
    ids = []
    lock = threading.Lock()

    def make():
        rid, _ = create_run_dir(tmp_path, "abc1234", NOW)
        with lock:
            ids.append(rid)

    threads = [threading.Thread(target=make) for _ in range(16)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(set(ids)) == 16


def _table(v: float) -> pd.DataFrame:
    return pd.DataFrame({"FID": [v, 2.0], "LPIPS": [0.3, 0.4]}, index=pd.Index(["Ours", "Base"], name="method"))


def _save(root, run_id, v, name="t1", reference=None):
    return artifacts.save_table(_table(v), name, root=root, run_id=run_id, profile="smoke", title="T",
                                dataset="synthfaces:fp", weights="none", device="cpu-test", reference=reference)


def test_table_versions_are_kept(tmp_path):
    _save(tmp_path, "runA", 1.0)
    first = (tmp_path / "paper_tables/smoke/history/t1/runA.csv").read_text()
    _save(tmp_path, "runB", 5.0)
    # Latest is the second run's; the first version is untouched in history.
    assert (tmp_path / "paper_tables/smoke/history/t1/runA.csv").read_text() == first
    latest = artifacts.read_table_csv(tmp_path / "paper_tables/smoke/t1.csv")
    assert latest.loc["Ours", "FID"] == 5.0
    assert artifacts.read_table_csv(tmp_path / "paper_tables/smoke/history/t1/runA.csv").loc["Ours", "FID"] == 1.0
    # Every format names the run, profile, dataset, weights and device.
    for ext in ("csv", "md", "tex"):
        text = (tmp_path / f"paper_tables/smoke/t1.{ext}").read_text()
        assert "run runB" in text and "profile smoke" in text and "synthfaces:fp" in text and "cpu-test" in text
    meta = json.loads((tmp_path / "paper_tables/smoke/t1.json").read_text())
    assert meta["run_id"] == "runB" and meta["weights"] == "none"


def test_bad_artifact_names_and_empty_tables(tmp_path):
    with pytest.raises(ValueError, match="not allowed"):
        _save(tmp_path, "r", 1.0, name="../evil")
    with pytest.raises(ValueError, match="non-empty"):
        artifacts.save_table(pd.DataFrame(), "t", root=tmp_path, run_id="r", profile="smoke", title="T",
                             dataset="d", weights="none", device="cpu")


def _fig(v):
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [0, v])
    return fig


def test_figure_provenance_in_png(tmp_path):
    artifacts.save_figure(_fig(1), "f1", root=tmp_path, run_id="runA", profile="smoke", title="F",
                          dataset="synthfaces:fp", weights="none", device="cpu-test")
    img = Image.open(tmp_path / "figures/smoke/f1.png")
    assert "run runA" in img.text["Description"]
    assert (tmp_path / "figures/smoke/history/f1/runA.pdf").read_bytes().startswith(b"%PDF")
    assert [m["name"] for m in artifacts.run_artifacts(tmp_path, "runA")] == ["f1"]


def test_compare_reports_changed_numbers(tmp_path):
    _save(tmp_path, "runA", 10.0)
    _save(tmp_path, "runB", 12.5)
    _save(tmp_path, "runA", 1.0, name="only_a")
    for rid, v in (("runA", 1), ("runB", 1)):
        artifacts.save_figure(_fig(v), "f1", root=tmp_path, run_id=rid, profile="smoke", title="F",
                              dataset="d", weights="none", device="cpu")
    res = compare_runs("runA", "runs/runB", tmp_path)
    changed = res.changed
    assert len(res.cells) == 4 and len(changed) == 1
    row = changed.iloc[0]
    assert (row["table"], row["row"], row["column"]) == ("smoke/t1", "Ours", "FID")
    assert row["abs_diff"] == pytest.approx(2.5) and row["rel_diff"] == pytest.approx(0.25)
    assert res.only_in_a == ["smoke/only_a"] and res.only_in_b == []
    assert res.figures == {"smoke/f1": "identical"}
    text = res.format()
    assert "4 numbers in 1 table(s) compared, 1 changed" in text and "only in runA: smoke/only_a" in text
    # A tolerance hides the change.
    assert len(compare_runs("runA", "runB", tmp_path, rtol=0.3).changed) == 0


def test_compare_unknown_run(tmp_path):
    _save(tmp_path, "runA", 1.0)
    with pytest.raises(FileNotFoundError, match="wrote no table"):
        compare_runs("runA", "nope", tmp_path)


def test_interactive_run_and_index(tmp_path):
    ctx = open_run("", profile="smoke", notebook="nb", output_root=tmp_path, runs_dir=tmp_path / "runs")
    manifest = json.loads((ctx.run_dir / "manifest.json").read_text())
    assert manifest["kind"] == "interactive" and manifest["profile"]["name"] == "smoke"
    assert ctx.run_dir.parent == tmp_path / "runs"
    ctx.record_dataset("synthfaces", "f" * 64, n=3)
    ctx.record_skipped("real", [("a/bad.png", "truncated")])
    ctx.save_table(_table(1.0), "t1", title="Table one", dataset="synthfaces", reference="i2ilr_table1")
    ctx.save_figure(_fig(1), "f1", title="Figure one", dataset="synthfaces")
    from lrkit.runs.reproduce import _fold_events

    manifest.update(_fold_events(ctx.run_dir))
    manifest["artifacts"] = artifacts.run_artifacts(tmp_path, ctx.run_id)
    manifest["output_root"] = str(tmp_path)
    manifest["notebooks"] = {"nb": {"status": "failed", "error": "ValueError: boom", "html": "notebooks/nb.html"}}
    page = write_index(ctx.run_dir, manifest).read_text()
    assert "Table one" in page and "I2I-LR, Table 1 (as reported)" in page and "15.52" in page
    assert '<img src="../../figures/smoke/history/f1/' in page
    assert "ValueError: boom" in page and "a/bad.png" in page and "truncated" in page
    assert manifest["datasets"][0]["fingerprint"] == "f" * 64


def test_index_opens_with_failures_then_the_papers_order(tmp_path):
    run_dir, manifest = _reproduce_like_run(tmp_path, "20261208T010000Z-aaaaaaa", 14.1234)
    page = write_index(run_dir, manifest).read_text()
    pos = {k: page.index(k) for k in ("id='failures'", "id='summary'", "I2I-LR Table 1 here", "Data overview figure",
                                      "id='notebooks'")}
    assert pos["id='failures'"] < pos["id='summary'"] < pos["I2I-LR Table 1 here"] < pos["Data overview figure"]
    assert "RuntimeError: no model" in page and 'href="logs/fig5_grid.log"' in page
    # the table is the paper layout: the kit's number at the paper's precision beside the paper's, Δ coloured
    assert "<td class='kit'>14.12</td><td class='paper'>15.52</td><td class='diff better'>-1.40</td>" in page
    assert "{&quot;steps&quot;: 2}" in page and "cpu-test" in page and "c" * 40 in page
    for meta in manifest["artifacts"]:  # a table written before tables had their .html: rendered from its CSV
        if meta["kind"] == "table":
            (tmp_path / meta["files"].pop("html")).unlink()
    again = write_index(run_dir, manifest).read_text()
    assert "<td class='kit'>14.12</td><td class='paper'>15.52</td><td class='diff better'>-1.40</td>" in again


def test_runs_index_newest_first_with_compare_pages(tmp_path):
    a, _ = _reproduce_like_run(tmp_path, "20261208T010000Z-aaaaaaa", 14.1234)
    b, _ = _reproduce_like_run(tmp_path, "20261208T020000Z-bbbbbbb", 16.0)
    assert not (a / "index.html").exists()
    from lrkit.runs.report import write_runs_index

    page = write_runs_index(tmp_path / "runs").read_text()
    assert page.index("20261208T020000Z-bbbbbbb") < page.index("20261208T010000Z-aaaaaaa")
    assert (a / "index.html").exists()  # each run's page rebuilt from its manifest
    rel = "compare/20261208T010000Z-aaaaaaa__20261208T020000Z-bbbbbbb.html"
    assert f"href='{rel}'" in page
    diff = (tmp_path / "runs" / rel).read_text()
    assert "2 numbers compared, 1 changed" in diff and "Ours · FID@128" in diff and "14.12" in diff
    assert "Ours · LR error" not in diff  # unchanged cells are not listed
