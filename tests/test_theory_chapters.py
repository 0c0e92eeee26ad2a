"""Execution of the Backpropagation, DFA and benchmarks chapters at tiny sizes."""

import json

import pytest

from conftest import image_outputs, outputs_of, run_chapter

TINY = {
    "backprop": dict(check_width=4, check_batch=8, fd_entries=3, deep_layers=3,
                     deep_width=8),
    "dfa": dict(num_train=200, num_test=100, n=8, k=3, parity_train=200,
                parity_test=100, width=16, epochs=2, batch_size=50, tsne_points=60,
                perplexity=30.0),
    "benchmarks": dict(dfa_depths=[1, 2], dfa_width=8, dfa_batch_size=4, dfa_repeats=2,
                       dfa_warmup=1, throughput_steps=2),
}


@pytest.mark.parametrize("stem", sorted(TINY))
def test_chapter_runs_and_commits(stem, tmp_path):
    notebook = run_chapter(stem, tmp_path, **TINY[stem])
    assert not outputs_of(notebook, "error")
    assert image_outputs(notebook)
    manifest = json.loads((tmp_path / "results" / stem / "manifest.json").read_text())
    assert manifest["chapter"] == stem
    for name, value in TINY[stem].items():
        assert manifest["parameters"][name] == value


def test_dfa_chapter_clamps_perplexity(tmp_path):
    # 60 points support a perplexity of at most 59 / 3; the chapter requests 30.
    notebook = run_chapter("dfa", tmp_path, **TINY["dfa"])
    streams = "".join(o.get("text", "") for o in outputs_of(notebook, "stream"))
    assert "perplexity 30.0 is too large for 60 points" in streams
    manifest = json.loads((tmp_path / "results" / "dfa" / "manifest.json").read_text())
    assert "perplexity 19.7" in manifest["captions"]["tsne_hidden"]
