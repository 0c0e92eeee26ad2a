"""Two builds from clean give byte-identical tables and equal manifests.

Every chapter but the timing benchmarks is compared, at tiny sizes by
default and at the quick profile's sizes with --run-slow.
"""

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

[chapters.backprop]
check_width = 4
check_batch = 8
fd_entries = 3
deep_layers = 3
deep_width = 8

[chapters.dfa]
num_train = 200
num_test = 100
n = 8
k = 3
parity_train = 200
parity_test = 100
width = 16
epochs = 2
batch_size = 50
tsne_points = 60

[chapters.lazy]
n = 8
k = 3
digit_k = 2
width = 16
widths = [8, 32]
ntk_width = 16
ntk_points = 24
num_train = 300
num_test = 200
epochs = 2
laziness_epochs = 2

[chapters.optimizers]
quadratic_steps = 10
rosenbrock_steps = 20
lr_grid = [1e-4, 1e-3, 1e-2]
nesterov_steps = 20
adadelta_steps = 20
n = 8
k = 2
width = 8
num_train = 128
num_test = 64
epochs = 2

[chapters.parity_grid]
sparse_tasks = [[8, 3, 1]]
digit_ks = [2]
num_seeds = 2
width = 8
num_train = 200
digit_num_train = 100
num_validation = 100
num_test = 100
epochs = 2
digit_epochs = 1
lr_factors = [1.0]
workers = 1
"""

#: Chapters whose tables are wall-clock timings, which differ from run to run.
TIMING_CHAPTERS = {"benchmarks"}


def manifests_and_tables(results):
    found = {}
    for path in sorted(results.rglob("*")):
        if path.relative_to(results).parts[0] in TIMING_CHAPTERS:
            continue
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
    chapters = sorted(set(book.toc_chapters(root)) - TIMING_CHAPTERS)
    first, second = build_twice(root, tmp_path, TINY_PROFILE, chapters)
    for chapter in chapters:
        tables = [name for name in first
                  if name.startswith(f"{chapter}/") and name.endswith(".csv")]
        assert tables, f"chapter {chapter} saved no table"
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
