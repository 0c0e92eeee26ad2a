"""One figure style for the book, and the plots that several chapters share."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator
import numpy as np
import seaborn as sns

__all__ = ["use_style", "learning_curves", "METRIC_LABELS"]

METRIC_LABELS = {
    "train_loss": "train loss",
    "train_accuracy": "train accuracy",
    "test_loss": "test loss",
    "test_accuracy": "test accuracy",
    "validation_loss": "validation loss",
    "validation_accuracy": "validation accuracy",
    "test_uniform_accuracy": "test accuracy, uniform part",
    "test_structured_accuracy": "test accuracy, structured part",
}

#: Width of a figure that spans the text column of the book, in inches.
PAGE_WIDTH = 7.5


def use_style() -> None:
    """Set the book's plotting style: seaborn's whitegrid at page size."""
    sns.set_theme(style="whitegrid", context="notebook", palette="colorblind")
    plt.rcParams.update(
        {
            "figure.figsize": (PAGE_WIDTH, 3.2),
            "figure.dpi": 100,
            "savefig.dpi": 150,
            "axes.titlesize": "medium",
            "legend.frameon": False,
        }
    )


def learning_curves(
    histories: Mapping[str, object],
    metrics: Sequence[str] = ("train_loss", "test_accuracy"),
    title: str | None = None,
    axes: Sequence | None = None,
):
    """Plot one panel per metric, one line per history, over epochs.

    Each value of ``histories`` is a ``History``; an ensemble history is drawn
    as its mean over members with a band of one standard deviation. Members
    that diverged are left out of the mean and counted in the legend. With
    ``axes`` (one per metric) the panels go there, ``title`` becomes the
    first panel's title, and the caller lays out the figure.
    """
    own_figure = axes is None
    if own_figure:
        fig, grid = plt.subplots(1, len(metrics), figsize=(PAGE_WIDTH, 3.0), squeeze=False)
        axes = grid[0]
    else:
        if len(axes) != len(metrics):
            raise ValueError(f"need one axis per metric: {len(metrics)} metrics, "
                             f"{len(axes)} axes")
        fig = axes[0].figure
    for ax, metric in zip(axes, metrics):
        for label, history in histories.items():
            values = history.array(metric)  # (epochs + 1, *E)
            values = values.reshape(values.shape[0], -1)
            epochs = np.arange(values.shape[0])
            diverged = int(np.sum(history.diverged))
            if diverged:
                label = f"{label} ({diverged} diverged)"
            finite = ~np.isnan(values).all(axis=0)
            if not finite.any():
                ax.plot([], [], label=f"{label}: diverged")
                continue
            mean = np.nanmean(values[:, finite], axis=1)
            (line,) = ax.plot(epochs, mean, label=label)
            if finite.sum() > 1:
                std = np.nanstd(values[:, finite], axis=1)
                ax.fill_between(epochs, mean - std, mean + std, color=line.get_color(), alpha=0.2)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(METRIC_LABELS.get(metric, metric))
        if metric.endswith("accuracy"):
            ax.axhline(0.5, color="0.5", linewidth=0.8, linestyle=":")
            # Below-chance curves (the uniform half of D_A) must stay visible.
            lowest = min(0.4, ax.get_ylim()[0])
            ax.set_ylim(max(lowest, 0.0), 1.02)
    axes[-1].legend(fontsize="small")
    if not own_figure:
        if title:
            axes[0].set_title(title, loc="left")
        return fig
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
