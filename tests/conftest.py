"""Shared test settings: the tolerance table and paths."""

import re
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

#: Tolerances of oracle comparisons, per dtype, in one place. float64 checks
#: compare hand-written maths against autograd or torch.optim; float32 checks
#: compare two float32 computations of the same quantity.
TOLERANCES = {
    torch.float64: {"rtol": 1e-10, "atol": 1e-12},
    torch.float32: {"rtol": 1e-5, "atol": 1e-6},
}

#: A float32 run against the same run in float64: rounding errors of about
#: 1e-7 per operation grow over the steps of a short training run.
CROSS_DTYPE = {"rtol": 1e-4, "atol": 1e-5}


@pytest.fixture
def root() -> Path:
    """The repository root."""
    return ROOT


def run_chapter(stem: str, tmp_path: Path, **parameters):
    """Execute chapters/<stem>.ipynb with papermill and return the notebook.

    Results go to ``tmp_path/results``; ``parameters`` override the chapter's
    defaults and should be tiny, so that one execution takes seconds.
    """
    import papermill

    parameters.setdefault("results_dir", str(tmp_path / "results"))
    parameters.setdefault("profile", "test")
    output = tmp_path / f"{stem}.ipynb"
    notebook = papermill.execute_notebook(
        str(ROOT / "chapters" / f"{stem}.ipynb"),
        str(output),
        parameters=parameters,
        cwd=str(ROOT / "chapters"),
        kernel_name="python3",
        progress_bar=False,
    )
    check_glue(notebook)
    return notebook


GLUE_ROLE = re.compile(r"\{glue:text\}`([A-Za-z0-9_]+)(?::([^`]*))?`")


def check_glue(notebook):
    """Assert that every {glue:text} key of the Markdown and of the figure
    captions is glued and formats.

    myst-nb formats ``{glue:text}`key:.2f``` by converting the glued
    text/plain to a float, so a numpy scalar, glued as ``np.float64(...)``,
    fails the strict book build with a warning.
    """
    glued = {}
    for output in outputs_of(notebook):
        scrapbook = output.get("metadata", {}).get("scrapbook", {})
        if "name" in scrapbook:
            key = scrapbook.get("mime_prefix", "") + "text/plain"
            glued[scrapbook["name"]] = output["data"].get(key, "")
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            text = cell.source
        else:  # a figure cell's caption, from its mystnb.figure metadata
            text = cell.metadata.get("mystnb", {}).get("figure", {}).get("caption", "")
        for name, spec in GLUE_ROLE.findall(text):
            assert name in glued, f"{{glue:text}}`{name}` is cited but never glued"
            assert "np." not in glued[name], f"{name} is glued as {glued[name]}"
            if spec:
                format(float(glued[name]), spec)  # ValueError names the bad text


def outputs_of(notebook, output_type=None):
    """List every output of every code cell, optionally of one type."""
    found = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output_type is None or output.get("output_type") == output_type:
                found.append(output)
    return found


def image_outputs(notebook):
    """List the outputs that carry a PNG image."""
    return [o for o in outputs_of(notebook) if "image/png" in o.get("data", {})]


def glued_value(notebook, name):
    """Return the text/plain form of the value a chapter glued under ``name``."""
    for output in outputs_of(notebook, "display_data"):
        scrapbook = output.get("metadata", {}).get("scrapbook", {})
        if scrapbook.get("name") == name:
            return output["data"][scrapbook["mime_prefix"] + "text/plain"]
    raise KeyError(f"no glued value {name!r} in the notebook")


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true",
                     help="also run tests marked slow (thesis scale, minutes each)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow or `make test PROFILE=full`")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
