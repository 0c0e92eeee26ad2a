"""The sparse-parity BP chapter, executed by papermill with tiny parameters."""

import json

from conftest import glued_value, image_outputs, outputs_of, run_chapter
from parity_learning.data import SparseParityTask

TINY = dict(n=8, k=2, digit_k=2, width=16, num_train=256, num_test=128, epochs=2,
            batch_size=64)


def test_chapter_runs_and_uses_the_injected_seed(tmp_path):
    notebook = run_chapter("parity_bp", tmp_path, seed=7, **TINY)
    assert not outputs_of(notebook, "error")
    assert len(image_outputs(notebook)) >= 2

    folder = tmp_path / "results" / "parity_bp"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["seed"] == 7
    assert manifest["parameters"]["seed"] == 7
    assert manifest["parameters"]["n"] == TINY["n"]
    for name in ("learning_curves.png", "learning_curves.pdf", "final_accuracy.csv",
                 "final_accuracy.md"):
        assert (folder / name).is_file(), name

    # The subset the chapter reports is the one seed 7 draws.
    expected = SparseParityTask(8, 2, 4, 4, seed=7).subset
    assert glued_value(notebook, "subset") == repr(str(expected))
