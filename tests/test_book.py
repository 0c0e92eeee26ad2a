"""The book builder: profiles, the table of contents, failing chapters."""

import json
import shutil

import nbformat
import pytest
import yaml

from parity_learning import book


def copy_project(root, tmp_path, chapters=("parity_bp",)):
    """A minimal copy of the book: config, toc with the given chapters, profiles."""
    target = tmp_path / "project"
    (target / "chapters").mkdir(parents=True)
    (target / "profiles").mkdir()
    shutil.copy(root / "_config.yml", target / "_config.yml")
    shutil.copy(root / "chapters" / "intro.md", target / "chapters" / "intro.md")
    for chapter in chapters:
        shutil.copy(root / "chapters" / f"{chapter}.ipynb", target / "chapters")
    toc = {"format": "jb-book", "root": "chapters/intro",
           "chapters": [{"file": f"chapters/{c}"} for c in chapters]}
    (target / "_toc.yml").write_text(yaml.safe_dump(toc))
    return target


def write_profile(project, text, name="custom"):
    path = project / "profiles" / f"{name}.toml"
    path.write_text(text)
    return path


def test_toc_lists_every_notebook_chapter(root):
    chapters = book.toc_chapters(root)
    notebooks = sorted(p.stem for p in (root / "chapters").glob("*.ipynb"))
    assert sorted(chapters) == notebooks
    assert "parity_bp" in chapters


@pytest.mark.parametrize("name", ["quick", "full"])
def test_shipped_profiles_are_valid(root, name):
    profile = book.load_profile(name, root)
    assert set(profile.chapters) == set(book.toc_chapters(root))


@pytest.mark.parametrize(
    "text, error, message",
    [
        ("colour = 'red'\n", ValueError, r"unknown keys \['colour'\]"),
        ("seed = -1\n", ValueError, "seed must be a non-negative integer, got -1"),
        ("seed = 'zero'\n", ValueError, "seed must be a non-negative integer, got 'zero'"),
        ("cell_timeout = 0\n", ValueError, "cell_timeout must be a positive integer"),
        ("[chapters.nowhere]\nn = 3\n", ValueError, "unknown chapter 'nowhere'"),
        ("[chapters.parity_bp]\nwidht = 3\n", ValueError,
         "chapters.parity_bp.widht is not a parameter of parity_bp"),
        ("[chapters.parity_bp]\nwidth = 'wide'\n", TypeError,
         "chapters.parity_bp.width = 'wide' is str, the chapter's default 256 is int"),
        ("[chapters.parity_bp]\nseed = 3\n", ValueError, "set by the builder"),
        ("[chapters.parity_bp]\nresults_dir = 'x'\n", ValueError, "set by the builder"),
        ("seed = [\n", ValueError, "not valid TOML"),
    ],
)
def test_bad_profiles_are_rejected(root, tmp_path, text, error, message):
    project = copy_project(root, tmp_path)
    path = write_profile(project, text)
    with pytest.raises(error, match=message):
        book.load_profile(path, project)


def test_missing_profile(root):
    with pytest.raises(FileNotFoundError, match="profile 'medium' not found"):
        book.load_profile("medium", root)


def test_failing_chapter_stops_the_build_and_keeps_results(root, tmp_path, capsys):
    project = copy_project(root, tmp_path)
    notebook = nbformat.read(project / "chapters" / "parity_bp.ipynb", as_version=4)
    parameters_index = next(i for i, c in enumerate(notebook.cells)
                            if "parameters" in c.metadata.get("tags", []))
    notebook.cells.insert(parameters_index + 1,
                          nbformat.v4.new_code_cell("raise ValueError('broken on purpose')"))
    nbformat.write(notebook, project / "chapters" / "parity_bp.ipynb")
    write_profile(project, "seed = 0\n[chapters.parity_bp]\nepochs = 1\n", name="quick")

    previous = project / "_build" / "results" / "quick" / "parity_bp"
    previous.mkdir(parents=True)
    (previous / "manifest.json").write_text('{"old": true}')

    with pytest.raises(book.BuildError) as failure:
        book.build("quick", root=project, html=False)
    message = str(failure.value)
    assert "chapter parity_bp failed in cell" in message
    assert "ValueError: broken on purpose" in message
    executed = project / "_build" / "book" / "chapters" / "parity_bp.ipynb"
    assert str(executed) in message
    assert executed.is_file()
    assert json.loads((previous / "manifest.json").read_text()) == {"old": True}
    assert sorted(p.name for p in previous.iterdir()) == ["manifest.json"]


def test_cli_reports_a_failing_profile(root, tmp_path, monkeypatch, capsys):
    project = copy_project(root, tmp_path)
    write_profile(project, "bogus = 1\n", name="quick")
    monkeypatch.chdir(project)
    assert book.main(["build", "--profile", "quick"]) == 1
    assert "unknown keys ['bogus']" in capsys.readouterr().err
