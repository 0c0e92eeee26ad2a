"""The built book in headless Chromium, and the checker itself on a faulty site.

The checker runs against a small site written here, with one fault of each
kind, so that every check is seen to fail at least once. The built book in
``_build/html`` is checked page by page when it exists; ``make book`` builds
it and ``make test`` then runs these tests on it.
"""

import os
import shutil
from pathlib import Path

import pytest

from conftest import ROOT
from parity_learning import browser

HTML_DIR = ROOT / "_build" / "html"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def require_browser():
    """Skip when Chromium is not installed, except in CI, where it must be."""
    missing = [path for path in (browser.CHROMIUM, browser.CHROMEDRIVER)
               if not Path(path).is_file()]
    if not missing:
        return
    message = (f"{missing} not installed: `make browser-packages` installs "
               "Debian's chromium and chromium-driver (as root)")
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


MATHJAX_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>good</title>
<link rel="icon" href="data:,">
<script defer src="mathjax/es5/tex-mml-chtml.js"></script></head>
<body><h1 id="top">A good page</h1>
<p>Inline math <span class="math">\\(x^2 + 1\\)</span>.</p>
<img src="dot.png" alt="a dot">
<p><a href="faulty.html">the faulty page</a> and <a href="#top">the top</a>.</p>
</body></html>
"""

FAULTY_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>faulty</title>
<link rel="icon" href="data:,">
<script src="http://localhost:9/external.js"></script></head>
<body><h1>A faulty page</h1>
<script>console.error("deliberate error");</script>
<img src="missing.png" alt="missing">
<p>&lt;Figure size 640x480 with 1 Axes&gt;</p>
<p>Raw display math: $$a + b$$</p>
<p><span class="math">\\(y\\)</span></p>
<p><a href="nowhere.html">no such page</a>,
<a href="good.html#no-such-anchor">no such anchor</a>,
<a href="good.html#top">a good anchor</a>.</p>
</body></html>
"""


@pytest.fixture(scope="module")
def faulty_site(tmp_path_factory):
    """A two-page site: one page without faults, one with a fault of each kind."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    site = tmp_path_factory.mktemp("site")
    (site / "good.html").write_text(MATHJAX_PAGE)
    (site / "faulty.html").write_text(FAULTY_PAGE)
    shutil.copytree(ROOT / "vendor" / "mathjax", site / "mathjax")
    plt.imsave(site / "dot.png", [[0.0, 1.0], [1.0, 0.0]], cmap="gray")
    return site


@pytest.fixture(scope="module")
def faulty_reports(faulty_site, tmp_path_factory):
    require_browser()
    shots = tmp_path_factory.mktemp("shots")
    reports = browser.check_site(faulty_site, ["good.html", "faulty.html"],
                                 screenshots=shots)
    return {report.page: report for report in reports}


def test_good_page_passes(faulty_reports):
    good = faulty_reports["good.html"]
    assert good.problems == []
    assert good.mathjax == "typeset"
    assert good.typeset_math == 1


def test_console_error_detected(faulty_reports):
    errors = " ".join(faulty_reports["faulty.html"].console_errors)
    assert "deliberate error" in errors


def test_broken_image_detected(faulty_reports):
    broken = faulty_reports["faulty.html"].broken_images
    assert [url.rsplit("/", 1)[-1] for url in broken] == ["missing.png"]


def test_figure_repr_detected(faulty_reports):
    assert faulty_reports["faulty.html"].figure_reprs == 1


def test_raw_math_detected(faulty_reports):
    faulty = faulty_reports["faulty.html"]
    assert faulty.raw_display_math == 2
    assert faulty.untypeset_math == ["\\(y\\)"]


def test_external_script_detected(faulty_reports):
    external = faulty_reports["faulty.html"].external_resources
    assert "http://localhost:9/external.js" in external


def test_broken_links_detected(faulty_reports):
    broken = faulty_reports["faulty.html"].broken_links
    assert len(broken) == 2
    assert any("no file nowhere.html" in reason for reason in broken)
    assert any("no anchor #no-such-anchor" in reason for reason in broken)


def test_screenshots_saved(faulty_reports):
    for report in faulty_reports.values():
        assert report.screenshot is not None
        assert report.screenshot.read_bytes()[:8] == PNG_SIGNATURE


def test_toc_pages_in_book_order(tmp_path):
    toc = tmp_path / "_toc.yml"
    toc.write_text(
        "format: jb-book\nroot: chapters/intro\nparts:\n"
        "  - caption: One\n    chapters:\n      - file: chapters/a.ipynb\n"
        "      - file: chapters/b\n"
    )
    assert browser.toc_pages(toc) == [
        "chapters/intro.html", "chapters/a.html", "chapters/b.html",
    ]


def test_missing_page_rejected(faulty_site):
    with pytest.raises(FileNotFoundError, match="absent.html"):
        browser.check_site(faulty_site, ["good.html", "absent.html"])


# --- the built book ---------------------------------------------------------

BOOK_PAGES = browser.toc_pages(ROOT / "_toc.yml")


@pytest.fixture(scope="module")
def book_reports(tmp_path_factory):
    if not (HTML_DIR / "index.html").is_file():
        pytest.skip(f"no built book in {HTML_DIR}: run `make book` first")
    require_browser()
    built = [page for page in BOOK_PAGES if (HTML_DIR / page).is_file()]
    shots = tmp_path_factory.mktemp("book-shots")
    reports = browser.check_site(HTML_DIR, built, screenshots=shots)
    return {report.page: report for report in reports}


@pytest.mark.book
@pytest.mark.parametrize("page", BOOK_PAGES)
def test_book_page_in_browser(book_reports, page):
    assert page in book_reports, (
        f"{page} is in _toc.yml but not in {HTML_DIR}: rebuild with `make book`")
    report = book_reports[page]
    assert report.problems == []
    assert report.screenshot.read_bytes()[:8] == PNG_SIGNATURE
