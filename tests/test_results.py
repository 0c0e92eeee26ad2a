"""Chapter results: all-or-nothing commits and the manifest."""

import json
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from parity_learning import __version__  # noqa: E402
from parity_learning.results import ChapterResults, markdown_table  # noqa: E402


def save_some(results):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    results.save_figure(fig, "curve", caption="a line")
    plt.close(fig)
    results.save_table(pd.DataFrame({"a": [1, 2], "b": [0.5, 0.25]}), "numbers")


def test_commit_writes_files_and_manifest(tmp_path):
    results = ChapterResults(tmp_path / "results", "demo", {"seed": 3, "n": 5}, seed=3)
    save_some(results)
    folder = results.commit()
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["curve.pdf", "curve.png", "manifest.json", "numbers.csv",
                     "numbers.md", "numbers.tex"]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["notebook"] == "chapters/demo.ipynb"
    assert manifest["parameters"] == {"seed": 3, "n": 5}
    assert manifest["seed"] == 3
    assert manifest["library_version"] == __version__
    assert "git_commit" in manifest
    assert set(manifest["files"]) == set(names) - {"manifest.json"}
    assert (folder / "numbers.csv").read_text() == "a,b\n1,0.5\n2,0.25\n"


def test_failed_run_writes_nothing(tmp_path):
    results_dir = tmp_path / "results"
    script = f"""
import matplotlib; matplotlib.use("Agg")
import matplotlib.pyplot as plt
from parity_learning.results import ChapterResults
results = ChapterResults({str(results_dir)!r}, "demo", {{}}, seed=0)
fig, ax = plt.subplots()
results.save_figure(fig, "curve")
raise RuntimeError("chapter failed half-way")
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode != 0
    assert not results_dir.exists() or not any(results_dir.iterdir())
    assert not list(tmp_path.glob(".staging-*"))


def test_previous_results_survive_a_failed_run(tmp_path):
    first = ChapterResults(tmp_path / "results", "demo", {"run": 1}, seed=0)
    save_some(first)
    first.commit()
    before = (tmp_path / "results" / "demo" / "manifest.json").read_text()

    second = ChapterResults(tmp_path / "results", "demo", {"run": 2}, seed=0)
    save_some(second)  # staged, never committed
    assert (tmp_path / "results" / "demo" / "manifest.json").read_text() == before

    third = ChapterResults(tmp_path / "results", "demo", {"run": 3}, seed=0)
    save_some(third)
    third.commit()
    manifest = json.loads((tmp_path / "results" / "demo" / "manifest.json").read_text())
    assert manifest["parameters"] == {"run": 3}


def test_figures_are_byte_identical_across_saves(tmp_path):
    paths = []
    for run in range(2):
        results = ChapterResults(tmp_path / f"r{run}", "demo", {}, seed=0)
        save_some(results)
        paths.append(results.commit())
    for name in ("curve.png", "curve.pdf", "numbers.csv"):
        assert (paths[0] / name).read_bytes() == (paths[1] / name).read_bytes(), name


@pytest.mark.parametrize("name", ["", "../escape", ".hidden", "a/b"])
def test_bad_result_names(tmp_path, name):
    results = ChapterResults(tmp_path / "results", "demo", {}, seed=0)
    with pytest.raises(ValueError, match="plain file stem"):
        results.save_table(pd.DataFrame({"a": [1]}), name)


def test_commit_twice_raises(tmp_path):
    results = ChapterResults(tmp_path / "results", "demo", {}, seed=0)
    results.commit()
    with pytest.raises(RuntimeError, match="already committed"):
        results.commit()


def test_markdown_table():
    text = markdown_table(pd.DataFrame({"x": ["a|b"], "y": [0.123456]}))
    assert text == "| x | y |\n|---|---|\n| a\\|b | 0.1235 |\n"


WRITER = """
import sys
import matplotlib; matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from parity_learning.results import ChapterResults
results_dir, tag = sys.argv[1], sys.argv[2]
for run in range(25):
    results = ChapterResults(results_dir, "shared", {"writer": tag, "run": run}, seed=0)
    fig, ax = plt.subplots()
    ax.plot([0, run], [1, 0])
    results.save_figure(fig, "curve")
    plt.close(fig)
    results.save_table(pd.DataFrame({"writer": [tag], "run": [run]}), "numbers")
    results.commit()
"""


def test_two_processes_committing_at_once_leave_one_complete_run(tmp_path):
    import hashlib

    results_dir = tmp_path / "results"
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(results_dir), tag])
               for tag in ("a", "b")]
    assert [w.wait(timeout=300) for w in writers] == [0, 0]

    folder = results_dir / "shared"
    manifest = json.loads((folder / "manifest.json").read_text())
    files = sorted(p.name for p in folder.iterdir() if p.name != "manifest.json")
    assert files == sorted(manifest["files"])
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name
    table = pd.read_csv(folder / "numbers.csv")
    assert table["writer"].item() == manifest["parameters"]["writer"]
    assert table["run"].item() == manifest["parameters"]["run"]
    assert not list(tmp_path.glob(".staging-*"))
    assert not list(tmp_path.glob(".old-*"))
