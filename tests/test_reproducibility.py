"""Two builds from clean give byte-identical tables and equal manifests."""

import json
import shutil

import pytest

from parity_learning import book
from test_book import copy_project, write_profile

TINY_PROFILE = """seed = 3
[chapters.parity_bp]
n = 8
k = 2
digit_k = 2
width = 16
num_train = 256
num_test = 128
epochs = 2
"""


def manifests_and_tables(results):
    found = {}
    for path in sorted(results.rglob("*")):
        if path.suffix == ".csv":
            found[str(path.relative_to(results))] = path.read_bytes()
        elif path.name == "manifest.json":
            manifest = json.loads(path.read_text())
            manifest.pop("created")
            found[str(path.relative_to(results))] = manifest
    return found


def build_twice(root, tmp_path, profile_text, chapters):
    outputs = []
    for attempt in ("first", "second"):
        project = copy_project(root, tmp_path / attempt, chapters=chapters)
        write_profile(project, profile_text, name="quick")
        book.build("quick", root=project, html=False)
        outputs.append(manifests_and_tables(project / "_build" / "results" / "quick"))
    return outputs


def test_two_tiny_builds_are_identical(root, tmp_path):
    first, second = build_twice(root, tmp_path, TINY_PROFILE, ["parity_bp"])
    assert any(name.endswith(".csv") for name in first)
    assert first.keys() == second.keys()
    for name in first:
        assert first[name] == second[name], name


@pytest.mark.slow
def test_two_quick_profile_builds_are_identical(root, tmp_path):
    chapters = book.toc_chapters(root)
    profile_text = (root / "profiles" / "quick.toml").read_text()
    first, second = build_twice(root, tmp_path, profile_text, chapters)
    assert first.keys() == second.keys()
    for name in first:
        assert first[name] == second[name], name
