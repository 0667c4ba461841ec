"""Run reports in a real headless browser (Debian's chromium + chromium-driver; `bash tests/setup_browser.sh`).

The whole smoke batch's report is checked in tests/test_batches.py; here a small run folder, fast, and the checks
themselves must catch a broken image, a script fetched from a CDN, and a number missing from the page."""

from __future__ import annotations

import nbformat
import pytest

from lrkit.runs.browser import BrowserUnavailable, check_report, find_browser
from lrkit.runs.report import write_index
from lrkit.runs.reproduce import offline_html_exporter
from run_fixtures import reproduce_like_run

try:
    find_browser()
    REASON = ""
except BrowserUnavailable as exc:
    REASON = str(exc)
pytestmark = pytest.mark.skipif(bool(REASON), reason=REASON)


def _notebook_html(path, with_image: bool = True) -> None:
    """An executed notebook (markdown, a code cell with a PNG output) exported as the batch exports it."""
    import base64
    import io

    import matplotlib.pyplot as plt

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("plot()")
    if with_image:
        fig, ax = plt.subplots(figsize=(2, 2))
        ax.plot([0, 1])
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        cell.outputs = [nbformat.v4.new_output("display_data",
                                               {"image/png": base64.b64encode(buf.getvalue()).decode()})]
    nb.cells = [nbformat.v4.new_markdown_cell("# A notebook\nWith *markdown*."), cell]
    html, _ = offline_html_exporter().from_notebook_node(nb)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html)


def test_a_run_report_passes_every_check(tmp_path):
    run_dir, manifest = reproduce_like_run(tmp_path, "20261208T010000Z-aaaaaaa", 14.1234)
    _notebook_html(run_dir / "notebooks" / "00_data_overview.html")
    index = write_index(run_dir, manifest)
    checks = check_report(index, expect_text=["14.12", "15.52", "-1.40"], screenshot=run_dir / "screenshot.png")
    assert all(c.ok for c in checks), [c.problems() for c in checks]
    urls = [c.url for c in checks]
    assert urls[0].endswith("index.html") and any(u.endswith("notebooks/00_data_overview.html") for u in urls)
    assert checks[0].images == 1 and next(c for c in checks if "00_data" in c.url).images == 1
    assert (run_dir / "screenshot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_checks_catch_what_a_reader_would_see(tmp_path):
    run_dir, manifest = reproduce_like_run(tmp_path, "20261208T010000Z-aaaaaaa", 14.1234)
    page = run_dir / "notebooks" / "00_data_overview.html"
    _notebook_html(page)
    # a notebook page that fetches a script from a CDN (nbconvert's default lab template does), offline
    page.write_text(page.read_text().replace(
        "</head>", "<script src='https://cdnjs.cloudflare.com/ajax/libs/require.js/2.1.10/require.min.js'></script>"
                   "</head>"))
    index = write_index(run_dir, manifest)
    index.write_text(index.read_text().replace("</body>", "<img src='missing.png'></body>"))
    checks = check_report(index, expect_text=["14.12", "99.99"])
    first, nb = checks[0], next(c for c in checks if "00_data" in c.url)
    assert first.broken_images == ["missing.png"] and first.missing_text == ["99.99"]
    assert any("require.min.js" in m for m in nb.console_errors) and not nb.ok
