"""Shared learning-curve plot: panels, bands, diverged members, given axes."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from parity_learning.plots import learning_curves  # noqa: E402
from parity_learning.train import History  # noqa: E402


def history(members=3, diverged=()):
    """A history of 3 epochs (4 rows with the initial one) whose test accuracy
    rises; the members in ``diverged`` are NaN."""
    record = History((members,))
    for epoch in range(4):
        accuracy = np.full(members, 0.5 + 0.1 * epoch)
        loss = np.full(members, 1.0 - 0.2 * epoch)
        accuracy[list(diverged)] = np.nan
        loss[list(diverged)] = np.nan
        record.append("test_accuracy", accuracy)
        record.append("train_loss", loss)
    steps = np.full(members, -1)
    steps[list(diverged)] = 3
    record.diverged_step = steps
    return record


def test_one_panel_per_metric():
    fig = learning_curves({"BP": history()}, title="sparse parity")
    assert len(fig.axes) == 2
    assert fig.axes[0].get_ylabel() == "train loss"
    assert fig.axes[1].get_ylabel() == "test accuracy"
    assert fig._suptitle.get_text() == "sparse parity"
    plt.close(fig)


def test_diverged_members_counted_in_legend():
    fig = learning_curves({"DFA": history(diverged=[1]), "BP": history(members=1, diverged=[0])})
    labels = [text.get_text() for text in fig.axes[1].get_legend().get_texts()]
    assert labels == ["DFA (1 diverged)", "BP (1 diverged): diverged"]
    (line,) = [line for line in fig.axes[1].get_lines() if line.get_label() == "DFA (1 diverged)"]
    np.testing.assert_allclose(line.get_ydata(), [0.5, 0.6, 0.7, 0.8])
    plt.close(fig)


def test_draws_into_given_axes():
    fig, grid = plt.subplots(2, 2)
    for row, task in zip(grid, ("first task", "second task")):
        assert learning_curves({"BP": history()}, title=task, axes=row) is fig
    assert len(fig.axes) == 4
    assert grid[1][0].get_title(loc="left") == "second task"
    assert all(ax.get_lines() for ax in grid.flat)
    plt.close(fig)


def test_axes_must_match_metrics():
    fig, grid = plt.subplots(1, 3)
    with pytest.raises(ValueError, match="need one axis per metric: 2 metrics, 3 axes"):
        learning_curves({"BP": history()}, axes=grid)
    plt.close(fig)
