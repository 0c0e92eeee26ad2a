"""The throughput benchmark's report, on a few steps (no timing is asserted)."""

import math

import pytest
import torch

from parity_learning.throughput import SHAPES, TARGETS, run, step_products, summary_lines

RATIOS = ("library_vs_torch", "ensemble_vs_sequential", "matmul_fraction")


def test_step_products_count_bp_flops():
    n_0, width, batch = SHAPES["full"]
    flops = sum(2 * m * k * n for m, k, n in step_products(SHAPES["full"]))
    # forward X W1^T and h W2^T, backward delta_2 W2, delta_1^T X, delta_2^T h
    expected = 2 * (2 * batch * n_0 * width + 3 * batch * width)
    assert flops == expected


def test_report_has_every_ratio():
    threads = torch.get_num_threads()
    report = run("cpu", steps=2, repeats=1, threads=1)
    assert torch.get_num_threads() == threads
    assert report["targets"] == TARGETS
    for shape in SHAPES:
        for ratio in RATIOS:
            value = report[shape][ratio]
            assert math.isfinite(value)
            assert value > 0
    lines = summary_lines(report)
    assert len(lines) == 5
    assert all(("meets" in line) != ("misses" in line) for line in lines[1:])


@pytest.mark.parametrize("field, value", [("steps", 0), ("repeats", -1), ("steps", 2.5)])
def test_report_rejects_bad_counts(field, value):
    arguments = dict(steps=2, repeats=1)
    arguments[field] = value
    with pytest.raises(ValueError, match=f"{field} must be a positive integer, got {value}"):
        run("cpu", threads=1, **arguments)
