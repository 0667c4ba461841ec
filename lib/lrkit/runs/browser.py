"""Open a run's HTML report in a real headless browser and check what a reader would see.

Uses Selenium with the system's Chromium and chromedriver (Debian: ``apt-get install chromium chromium-driver``;
``tests/setup_browser.sh`` does it). Selenium's own driver manager would download a driver from the internet: the
driver path is always given explicitly, so nothing is fetched. Checks, for ``index.html`` and every local ``.html``
page it links (each notebook's report, compare pages):

* no console message of level SEVERE (script errors, failed loads of local files);
* every ``<img>`` finished loading with a natural width and height > 0;
* (index only) each expected string is present in the page's visible text (the tables' numbers as text, not
  pictures of them);

and saves a PNG screenshot of the index (full page height) next to it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from lrkit.errors import UserError

__all__ = ["BrowserUnavailable", "PageCheck", "find_browser", "check_report"]

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
DRIVER_NAMES = ("chromedriver",)


class BrowserUnavailable(UserError):
    """No Chromium / chromedriver / selenium here (one line naming the fix)."""


@dataclass
class PageCheck:
    url: str
    console_errors: list[str] = field(default_factory=list)
    broken_images: list[str] = field(default_factory=list)
    images: int = 0
    missing_text: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.console_errors or self.broken_images or self.missing_text)

    def problems(self) -> str:
        out = [f"console: {m}" for m in self.console_errors] + [f"image not loaded: {s}" for s in self.broken_images]
        out += [f"text not on the page: {t!r}" for t in self.missing_text]
        return f"{self.url}: " + "; ".join(out) if out else f"{self.url}: ok"


def find_browser() -> tuple[str, str]:
    """(chromium binary, chromedriver) or BrowserUnavailable with the install line."""
    try:
        import selenium  # noqa: F401
    except ImportError as exc:
        raise BrowserUnavailable("selenium is not installed: pip install selenium (the kit's test extras have "
                                 "it)") from exc
    binary = next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)
    driver = next((p for p in map(shutil.which, DRIVER_NAMES) if p), None)
    if not binary or not driver:
        raise BrowserUnavailable("no headless Chromium here: install Debian's chromium and chromium-driver "
                                 "(sudo apt-get install chromium chromium-driver, or bash tests/setup_browser.sh)")
    return binary, driver


def _driver(width: int = 1300, height: int = 900):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = find_browser()
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", "--allow-file-access-from-files"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=opts, service=Service(executable_path=driver))


_IMAGES_JS = """
return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth, i.naturalHeight]);
"""
_LINKS_JS = "return Array.from(document.querySelectorAll('a[href]')).map(a => a.href);"


def _check_page(drv, url: str, expect_text: list[str]) -> PageCheck:
    drv.get(url)  # returns after the load event: the images have loaded or failed
    res = PageCheck(url)
    images = drv.execute_script(_IMAGES_JS)
    res.images = len(images)
    res.broken_images = [src for src, complete, w, h in images if not (complete and w > 0 and h > 0)]
    res.console_errors = [e["message"] for e in drv.get_log("browser") if e.get("level") == "SEVERE"]
    if expect_text:
        text = drv.execute_script("return document.body.innerText")
        res.missing_text = [t for t in expect_text if t not in text]
    return res


def check_report(index: Path, expect_text: list[str] | None = None, screenshot: Path | None = None
                 ) -> list[PageCheck]:
    """Check ``index`` and every local HTML page it links (see the module docstring); the index first."""
    index = Path(index).resolve()
    if not index.is_file():
        raise FileNotFoundError(f"no report at {index}; `lrkit reproduce` or `lrkit report` writes it")
    drv = _driver()
    try:
        checks = [_check_page(drv, index.as_uri(), list(expect_text or []))]
        if screenshot is not None:
            height = int(drv.execute_script("return document.documentElement.scrollHeight"))
            drv.set_window_size(1300, min(max(height, 900), 16000))
            drv.save_screenshot(str(screenshot))
        pages = []
        for href in drv.execute_script(_LINKS_JS):
            u = urlparse(href)
            path = Path(unquote(u.path))
            if u.scheme == "file" and path.suffix == ".html" and path != index and path.is_file():
                pages.append(path.as_uri())
        for page in dict.fromkeys(pages):
            checks.append(_check_page(drv, page, []))
    finally:
        drv.quit()
    return checks
