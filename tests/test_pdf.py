"""The optional PDF of the book (`make pdf`) contains every page of _toc.yml.

Skipped when no PDF has been built. Text is extracted with pdftotext from
Debian's poppler-utils, which `make pdf` installs.
"""

import re
import shutil
import subprocess
import unicodedata

import nbformat
import pytest

from conftest import ROOT
from parity_learning.book import toc_files

PDF = ROOT / "_build" / "pdf" / "book.pdf"


def page_title(name: str) -> str:
    """Return the H1 title of a table-of-contents entry (.md or .ipynb)."""
    notebook = ROOT / f"{name}.ipynb"
    if notebook.is_file():
        cells = nbformat.read(notebook, as_version=4).cells
        source = "\n".join(cell.source for cell in cells if cell.cell_type == "markdown")
    else:
        source = (ROOT / f"{name}.md").read_text()
    for line in source.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    raise ValueError(f"{name} has no H1 title")


def normalize(text: str) -> str:
    """Fold ligatures and hyphenated line breaks, collapse whitespace, lowercase."""
    text = unicodedata.normalize("NFKC", text).replace("-\n", "")
    return " ".join(text.split()).lower()


def title_fragments(title: str) -> list[str]:
    """Split a title at inline math, which LaTeX typesets as symbols."""
    return [part.strip() for part in re.split(r"\$[^$]*\$", title) if part.strip()]


@pytest.fixture(scope="module")
def pdf_text():
    if not PDF.is_file():
        pytest.skip(f"no PDF build at {PDF}: `make pdf` builds it (optional)")
    assert PDF.read_bytes()[:5] == b"%PDF-"
    pdftotext = shutil.which("pdftotext")
    if pdftotext is None:
        pytest.fail("pdftotext not found: install Debian's poppler-utils "
                    "(`make tex-packages` does)")
    completed = subprocess.run([pdftotext, "-layout", str(PDF), "-"],
                               capture_output=True, text=True, check=True)
    return normalize(completed.stdout)


@pytest.mark.parametrize("name", toc_files(ROOT / "_toc.yml"))
def test_pdf_contains_chapter(pdf_text, name):
    if name.endswith("bibliography"):
        # LaTeX prints the bibliography under its own heading, "Bibliography".
        assert "bibliography" in pdf_text
        return
    # Once in the table of contents and once (at least) as the chapter heading.
    for fragment in title_fragments(page_title(name)):
        count = pdf_text.count(normalize(fragment))
        assert count >= 2, f"{name}: {fragment!r} appears {count} times in {PDF}"


def test_title_fragments_skip_math():
    assert title_fragments("Sparse parity on $\\mathcal{D}_A$ with BP") == [
        "Sparse parity on", "with BP"]
