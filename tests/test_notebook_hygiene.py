"""Every committed chapter notebook follows the chapter skeleton of the book.

A chapter is committed without outputs, runs on the kernel ``python3``, and
reads: one H1 title, "What you will learn", one imports cell, one cell tagged
``parameters`` (declaring ``seed``, ``profile`` and ``results_dir``, each
value with a comment), the sections, a closing "## What we found", and a last
code cell that calls ``results.commit()``. ``hygiene_problems`` lists the
rules a notebook breaks. The tests run it on every notebook in ``chapters/``
and on a notebook built to break each rule once.
"""

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT

CHAPTER_NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb"))
BUILDER_PARAMETERS = ("seed", "profile", "results_dir")


def markdown_headings(source: str) -> list[tuple[int, str]]:
    """Return (level, text) of the ATX headings outside code fences."""
    headings, fenced = [], False
    for line in source.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            marks, _, text = line.partition(" ")
            if set(marks) == {"#"}:
                headings.append((len(marks), text.strip()))
    return headings


def is_imports_cell(source: str) -> bool:
    """Return whether a code cell starts with imports and adds only setup calls.

    Calls such as ``torch.set_num_threads(1)`` are allowed after the imports.
    Assignments, definitions and loops belong in later cells.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    if not tree.body or not isinstance(tree.body[0], (ast.Import, ast.ImportFrom)):
        return False
    for node in tree.body:
        is_import = isinstance(node, (ast.Import, ast.ImportFrom))
        is_call = isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
        if not (is_import or is_call):
            return False
    return True


def parameter_problems(source: str) -> list[str]:
    """Check the parameters cell: plain assignments, each with a comment."""
    problems = []
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        return [f"parameters cell is not valid Python: {error}"]
    lines = source.splitlines()
    names = []
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)):
            problems.append(f"parameters cell line {node.lineno} is not a plain assignment")
            continue
        names.append(node.targets[0].id)
        if "#" not in lines[node.end_lineno - 1]:
            problems.append(f"parameter {node.targets[0].id} has no comment")
    for name in BUILDER_PARAMETERS:
        if name not in names:
            problems.append(f"parameters cell does not declare {name}")
    return problems


def hygiene_problems(notebook) -> list[str]:
    """Return one sentence per rule of the chapter skeleton that ``notebook`` breaks."""
    problems = []
    kernel = notebook.metadata.get("kernelspec", {}).get("name")
    if kernel != "python3":
        problems.append(f"kernelspec name is {kernel!r}, expected 'python3'")

    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    markdown = [cell for cell in notebook.cells if cell.cell_type == "markdown"]
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count")):
            problems.append(f"cell {index} has committed outputs or an execution count")

    headings = [h for cell in markdown for h in markdown_headings(cell.source)]
    titles = [text for level, text in headings if level == 1]
    if len(titles) != 1:
        problems.append(f"expected one H1 title, found {len(titles)}: {titles}")
    first = notebook.cells[0] if notebook.cells else None
    if first is None or first.cell_type != "markdown" or not first.source.startswith("# "):
        problems.append("the first cell is not a Markdown cell starting with the H1 title")
    elif "what you will learn" not in first.source.lower():
        problems.append("the title cell does not say what the reader will learn")

    tagged = [i for i, cell in enumerate(notebook.cells)
              if "parameters" in cell.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1:
        problems.append(f"expected one cell tagged 'parameters', found {len(tagged)}")
    elif code and notebook.cells[tagged[0]] is not (code[1] if len(code) > 1 else None):
        problems.append("the parameters cell is not the code cell after the imports cell")
    else:
        problems.extend(parameter_problems(notebook.cells[tagged[0]].source))
    if not code or not is_imports_cell(code[0].source):
        problems.append("the first code cell is not an imports cell "
                        "(imports, then setup calls only)")

    for index, cell in enumerate(code):
        if "figure" in cell.metadata.get("mystnb", {}) and not cell.source.rstrip().endswith(";"):
            # myst-nb wraps every output of a figure cell in the figure, so a
            # printed return value makes a second figure with the same name.
            body = ast.parse(cell.source).body
            if body and isinstance(body[-1], ast.Expr):
                problems.append(f"figure cell {index} ends with an expression without ';', "
                                "whose value would become a second figure")
        saved = re.search(r'save_figure\(\s*[\w.]+,\s*"(\w+)"', cell.source)
        if saved:
            figure = cell.metadata.get("mystnb", {}).get("figure", {})
            expected = f"{{glue:text}}`{saved.group(1)}_caption`"
            if figure.get("caption") != expected or not figure.get("name"):
                problems.append(f"code cell {index} saves figure {saved.group(1)!r} without "
                                f"mystnb.figure metadata (caption {expected} and a name)")

    sections = [text for level, text in headings if level == 2]
    if not sections or sections[-1] != "What we found":
        problems.append(f"the last section is not 'What we found': {sections[-1:]}")
    if len(sections) < 2:
        problems.append("no section between the setup and 'What we found'")
    if not code or "results.commit()" not in code[-1].source:
        problems.append("the last code cell does not call results.commit()")
    return problems


@pytest.mark.parametrize("path", CHAPTER_NOTEBOOKS, ids=lambda path: path.stem)
def test_chapter_follows_skeleton(path):
    notebook = nbformat.read(path, as_version=4)
    assert hygiene_problems(notebook) == []


def well_formed_notebook():
    cells = [
        nbformat.v4.new_markdown_cell("# A chapter\n\n**What you will learn**\n\n- x"),
        nbformat.v4.new_code_cell("import math\n\nmath.sqrt(4.0)  # a setup call"),
        nbformat.v4.new_code_cell(
            'seed = 0  # run seed\nprofile = "local"  # set by the builder\n'
            'results_dir = "../_build/results/local"  # saved here\n'
            "width = 8  # full: 512"),
        nbformat.v4.new_markdown_cell("## A section\n\n```python\n# not a title\n```"),
        nbformat.v4.new_markdown_cell("## What we found\n\n- a number"),
        nbformat.v4.new_code_cell("results.commit()"),
    ]
    cells[2].metadata["tags"] = ["parameters"]
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    return notebook


def test_well_formed_notebook_passes():
    assert hygiene_problems(well_formed_notebook()) == []


def break_outputs(nb):
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="hi")]


def break_kernel(nb):
    nb.metadata["kernelspec"]["name"] = "parity-venv"


def break_second_title(nb):
    nb.cells[3].source = "# Another title\n\n" + nb.cells[3].source


def break_what_you_learn(nb):
    nb.cells[0].source = "# A chapter\n\nIntroduction only."


def break_parameters_tag(nb):
    nb.cells[2].metadata["tags"] = []


def break_missing_seed(nb):
    nb.cells[2].source = nb.cells[2].source.replace("seed = 0  # run seed\n", "")


def break_parameter_comment(nb):
    nb.cells[2].source += "\nlr = 0.1"


def break_imports(nb):
    nb.cells[1].source = "import math\nx = math.pi"


def break_what_we_found(nb):
    nb.cells[4].source = "## Summary\n\n- a number"


def break_commit(nb):
    nb.cells[5].source = "print('done')"


@pytest.mark.parametrize("breaker, expected", [
    (break_outputs, "committed outputs"),
    (break_kernel, "kernelspec name is 'parity-venv'"),
    (break_second_title, "expected one H1 title, found 2"),
    (break_what_you_learn, "what the reader will learn"),
    (break_parameters_tag, "found 0"),
    (break_missing_seed, "does not declare seed"),
    (break_parameter_comment, "parameter lr has no comment"),
    (break_imports, "not an imports cell"),
    (break_what_we_found, "not 'What we found'"),
    (break_commit, "results.commit()"),
], ids=lambda value: getattr(value, "__name__", None))
def test_broken_notebook_flagged(breaker, expected):
    notebook = well_formed_notebook()
    breaker(notebook)
    problems = hygiene_problems(notebook)
    assert any(expected in problem for problem in problems), problems


def test_python3_kernel_is_this_environment():
    """`make lab` and papermill both start the kernel named python3: it must be
    the interpreter of this environment, so a chapter runs the same in both."""
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "jupyter"), "kernelspec", "list", "--json"],
        capture_output=True, text=True, check=True,
    )
    kernel = json.loads(completed.stdout)["kernelspecs"]["python3"]
    interpreter = kernel["spec"]["argv"][0]
    if interpreter in ("python", "python3"):
        # ipykernel's own spec: jupyter_client starts the interpreter that
        # runs the server, so the spec must be the one of this environment.
        assert Path(sys.prefix).resolve() in Path(kernel["resource_dir"]).resolve().parents
    else:
        assert Path(interpreter).resolve() == Path(sys.executable).resolve()
