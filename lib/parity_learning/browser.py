"""Check a built HTML book in headless Chromium, as a reader would see it.

``python -m parity_learning.browser`` (run by ``make book`` after the HTML
build) serves ``_build/html`` from a local ``http.server`` on 127.0.0.1, opens
every page of ``_toc.yml`` in Debian's Chromium through Selenium and Debian's
chromedriver, and reports, per page:

- console errors, including resources that failed to load;
- images that did not load (``naturalWidth`` of 0);
- the text ``<Figure size``, which a figure that was printed instead of
  drawn leaves behind;
- math that MathJax did not typeset, and raw ``$$`` left in the text;
- scripts, stylesheets or other resources loaded from another origin;
- internal links whose target page or anchor does not exist.

It saves a full-page screenshot of every page under ``_build/screenshots/``
and exits with status 1 when any page has a problem.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import logging
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .book import toc_files

__all__ = [
    "CHROMIUM",
    "CHROMEDRIVER",
    "CHROMIUM_FLAGS",
    "LOOPBACK_ONLY_FLAGS",
    "BrowserUnavailable",
    "PageReport",
    "toc_pages",
    "check_site",
    "main",
]

log = logging.getLogger("parity_learning.browser")

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: Flags under which Debian's Chromium runs headless as root in a container,
#: with no traffic of its own (updates, sync, first-run pages).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
#: Keep the browser on loopback: every request to another host goes to a
#: closed local port and fails at once, and no host name is resolved except
#: localhost. A page that references a CDN then logs an error, as it should.
LOOPBACK_ONLY_FLAGS = (
    "--proxy-server=http://127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
)
WINDOW_WIDTH = 1280
#: Screenshots stop at this height in pixels; a longer page is cut off.
MAX_SCREENSHOT_HEIGHT = 16000
PAGE_TIMEOUT_S = 60
MATHJAX_TIMEOUT_S = 30

# Runs in the page once it has loaded, MathJax has typeset and every image has
# settled. Returns what the checks need as plain JSON.
_COLLECT_SCRIPT = """
const textOf = (root) => {
  const copy = root.cloneNode(true);
  copy.querySelectorAll('pre, code, script, style, textarea').forEach(e => e.remove());
  return copy.textContent;
};
const resources = performance.getEntriesByType('resource').map(e => e.name);
document.querySelectorAll('script[src]').forEach(s => resources.push(s.src));
document.querySelectorAll('link[href]').forEach(l => {
  if (l.rel !== 'canonical' && l.rel !== 'prev' && l.rel !== 'next'
      && l.rel !== 'index' && l.rel !== 'search') resources.push(l.href);
});
const untypeset = [];
document.querySelectorAll('.math').forEach(e => {
  if (!e.querySelector('mjx-container')) untypeset.push(e.textContent.slice(0, 80));
});
const text = textOf(document.body);
return {
  images: Array.from(document.images).map(i => ({src: i.currentSrc || i.src,
                                                  width: i.naturalWidth})),
  figureReprs: text.split('<Figure size').length - 1,
  rawDisplayMath: text.split('$$').length - 1,
  untypeset: untypeset,
  typeset: document.querySelectorAll('mjx-container').length,
  resources: resources,
  links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
  height: Math.max(document.body.scrollHeight, document.documentElement.scrollHeight),
};
"""

# Waits for MathJax (when the page loads it) to finish its first typeset pass.
_MATHJAX_SCRIPT = """
const done = arguments[arguments.length - 1];
const deadline = Date.now() + arguments[0] * 1000;
const poll = () => {
  const mj = window.MathJax;
  if (!document.querySelector('script[src*="mathjax"]')) {
    done('absent');
  } else if (mj && mj.startup && mj.startup.promise) {
    mj.startup.promise.then(() => done('typeset'), (e) => done('error: ' + e));
  } else if (Date.now() > deadline) {
    done('timeout');
  } else {
    setTimeout(poll, 50);
  }
};
poll();
"""

_IMAGES_SETTLED_SCRIPT = "return Array.from(document.images).every(i => i.complete);"


class BrowserUnavailable(FileNotFoundError):
    """Chromium or chromedriver is not installed where the checker expects it."""


@dataclass
class PageReport:
    """The findings of the browser on one page; ``problems`` is empty for a good page."""

    page: str
    console_errors: list[str] = field(default_factory=list)
    broken_images: list[str] = field(default_factory=list)
    figure_reprs: int = 0
    untypeset_math: list[str] = field(default_factory=list)
    raw_display_math: int = 0
    typeset_math: int = 0
    mathjax: str = ""
    external_resources: list[str] = field(default_factory=list)
    broken_links: list[str] = field(default_factory=list)
    screenshot: Path | None = None

    @property
    def problems(self) -> list[str]:
        """One sentence per failed check, naming the offending values."""
        found = []
        if self.console_errors:
            found.append(f"console errors: {self.console_errors}")
        if self.broken_images:
            found.append(f"images that did not load: {self.broken_images}")
        if self.figure_reprs:
            found.append(f"'<Figure size' appears {self.figure_reprs} times")
        if self.mathjax not in ("typeset", "absent"):
            found.append(f"MathJax did not finish: {self.mathjax}")
        if self.untypeset_math:
            found.append(f"math not typeset by MathJax: {self.untypeset_math}")
        if self.raw_display_math:
            found.append(f"raw '$$' left in the text {self.raw_display_math} times")
        if self.external_resources:
            found.append(f"resources from another origin: {self.external_resources}")
        if self.broken_links:
            found.append(f"internal links that do not resolve: {self.broken_links}")
        return found


def toc_pages(toc_path: str | Path) -> list[str]:
    """Return the HTML paths of the pages of a jupyter-book ``_toc.yml``, in order."""
    pages = []
    for name in toc_files(Path(toc_path)):
        stem = name.rsplit(".", 1)[0] if name.endswith((".md", ".ipynb")) else name
        pages.append(f"{stem}.html")
    return pages


class _AnchorParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.anchors: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name == "id" or (tag == "a" and name == "name"):
                self.anchors.add(value or "")


@functools.lru_cache(maxsize=None)
def _anchors_of(path: Path) -> frozenset[str]:
    parser = _AnchorParser()
    parser.feed(path.read_text(errors="replace"))
    return frozenset(parser.anchors)


def _resolve_link(html_dir: Path, url: str) -> str | None:
    """Return why an internal link is broken, or None when it resolves."""
    parts = urlsplit(url)
    relative = unquote(parts.path).lstrip("/")
    target = (html_dir / relative).resolve()
    if target.is_dir():
        target = target / "index.html"
    if html_dir.resolve() not in target.parents or not target.is_file():
        return f"{url} (no file {relative or 'index.html'})"
    fragment = unquote(parts.fragment)
    if fragment and target.suffix == ".html" and fragment not in _anchors_of(target):
        return f"{url} (no anchor #{fragment} in {relative})"
    return None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        log.debug("http: " + format, *args)


def _serve(html_dir: Path) -> http.server.ThreadingHTTPServer:
    handler = functools.partial(_QuietHandler, directory=str(html_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _start_browser(profile_dir: Path, chromium: str, chromedriver: str):
    for path, package in ((chromium, "chromium"), (chromedriver, "chromium-driver")):
        if not Path(path).is_file():
            raise BrowserUnavailable(
                f"{path} not found: install Debian's {package} package "
                "(`make browser-packages` does, as root)"
            )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS + LOOPBACK_ONLY_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile_dir}")
    options.add_argument(f"--window-size={WINDOW_WIDTH},1000")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path keeps Selenium Manager from downloading one.
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    driver.set_page_load_timeout(PAGE_TIMEOUT_S)
    driver.set_script_timeout(MATHJAX_TIMEOUT_S + 5)
    return driver


def _wait_for_images(driver, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not driver.execute_script(_IMAGES_SETTLED_SCRIPT):
        if time.monotonic() > deadline:
            return  # the report lists whatever has not loaded by now
        time.sleep(0.05)


def _check_page(driver, base_url: str, html_dir: Path, page: str,
                screenshots: Path | None) -> PageReport:
    report = PageReport(page=page)
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(f"{base_url}/{page}")
    report.mathjax = driver.execute_async_script(_MATHJAX_SCRIPT, MATHJAX_TIMEOUT_S)
    _wait_for_images(driver)
    found = driver.execute_script(_COLLECT_SCRIPT)

    report.console_errors = [entry["message"] for entry in driver.get_log("browser")
                             if entry.get("level") == "SEVERE"]
    report.broken_images = [image["src"] for image in found["images"]
                            if not image["width"]]
    report.figure_reprs = found["figureReprs"]
    report.untypeset_math = found["untypeset"]
    report.raw_display_math = found["rawDisplayMath"]
    report.typeset_math = found["typeset"]

    origin = urlsplit(base_url)
    external = set()
    for url in found["resources"]:
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob", "about"):
            continue
        if (parts.scheme, parts.netloc) != (origin.scheme, origin.netloc):
            external.add(url)
    report.external_resources = sorted(external)

    broken = set()
    for url in found["links"]:
        parts = urlsplit(url)
        if (parts.scheme, parts.netloc) != (origin.scheme, origin.netloc):
            continue
        reason = _resolve_link(html_dir, url[len(base_url):])
        if reason:
            broken.add(reason)
    report.broken_links = sorted(broken)

    if screenshots is not None:
        height = min(max(int(found["height"]), 600), MAX_SCREENSHOT_HEIGHT)
        driver.set_window_size(WINDOW_WIDTH, height)
        path = screenshots / (page.replace("/", "__").removesuffix(".html") + ".png")
        driver.save_screenshot(str(path))
        driver.set_window_size(WINDOW_WIDTH, 1000)
        report.screenshot = path
    return report


def check_site(html_dir: str | Path, pages: list[str], *,
               screenshots: str | Path | None = None,
               chromium: str = CHROMIUM, chromedriver: str = CHROMEDRIVER,
               ) -> list[PageReport]:
    """Open each page (paths relative to ``html_dir``) and return one report per page.

    Raises FileNotFoundError when ``html_dir`` or a listed page is missing, and
    BrowserUnavailable when Chromium or chromedriver is not installed.
    """
    html_dir = Path(html_dir).resolve()
    if not html_dir.is_dir():
        raise FileNotFoundError(f"no built book at {html_dir}: run `make book` first")
    missing = [page for page in pages if not (html_dir / page).is_file()]
    if missing:
        raise FileNotFoundError(f"pages of the table of contents missing from "
                                f"{html_dir}: {missing}")
    screenshot_dir = None
    if screenshots is not None:
        screenshot_dir = Path(screenshots)
        if screenshot_dir.exists():
            shutil.rmtree(screenshot_dir)
        screenshot_dir.mkdir(parents=True)

    _anchors_of.cache_clear()
    server = _serve(html_dir)
    base_url = f"http://127.0.0.1:{server.server_address[1]}"
    profile_dir = Path(tempfile.mkdtemp(prefix="chromium-profile-"))
    reports = []
    try:
        driver = _start_browser(profile_dir, chromium, chromedriver)
        try:
            for page in pages:
                reports.append(_check_page(driver, base_url, html_dir, page,
                                           screenshot_dir))
                log.info("checked %s: %s", page,
                         "; ".join(reports[-1].problems) or "no problems")
        finally:
            driver.quit()
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(profile_dir, ignore_errors=True)
    return reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m parity_learning.browser",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("html_dir", nargs="?", default="_build/html",
                        help="folder of the built HTML book (default: _build/html)")
    parser.add_argument("--toc", default="_toc.yml",
                        help="table of contents whose pages are checked (default: _toc.yml)")
    parser.add_argument("--screenshots", default="_build/screenshots",
                        help="folder for one PNG per page, emptied first "
                             "(default: _build/screenshots)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        reports = check_site(args.html_dir, toc_pages(args.toc),
                             screenshots=args.screenshots)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    failed = [report for report in reports if report.problems]
    for report in failed:
        print(f"{report.page}:", file=sys.stderr)
        for problem in report.problems:
            print(f"  {problem}", file=sys.stderr)
    log.info("%d pages checked, %d with problems; screenshots in %s",
             len(reports), len(failed), args.screenshots)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
