"""Result tables of a sweep: mean ± std over seeds, methods × optimizers, heatmaps.

The input is the long frame of ``sweep.results_frame`` (one row per run).
A diverged run (non-finite loss) has NaN metrics and counts as diverged: the
mean and standard deviation use the runs that did not diverge, and a cell
whose runs all diverged reads "diverged", never a 50 % accuracy.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

__all__ = ["summarize", "format_cell", "grid_table", "part_table", "heatmap", "heatmaps"]

KEYS = ("task_label", "method", "optimizer")
MISSING = "n/a"  # no run: the method is not defined for this task's depth


def summarize(frame: pd.DataFrame, metric: str = "test_accuracy",
              keys: Sequence[str] = KEYS) -> pd.DataFrame:
    """Return one row per ``keys``: mean, std (ddof=1), runs and diverged runs.

    Diverged runs are counted in ``runs`` and ``diverged`` and left out of
    ``mean`` and ``std``; ``std`` is NaN with fewer than two finite runs.
    """
    if metric not in frame.columns:
        raise ValueError(f"metric {metric!r} is not a column; columns: {list(frame.columns)}")
    keys = list(keys)
    finite = frame[~frame["diverged"]]
    stats = finite.groupby(keys, sort=False)[metric].agg(["mean", "std"])
    counts = frame.groupby(keys, sort=False).agg(runs=("diverged", "size"),
                                                 diverged=("diverged", "sum"))
    summary = counts.join(stats, how="left").reset_index()
    summary["diverged"] = summary["diverged"].astype(int)
    return summary[keys + ["mean", "std", "runs", "diverged"]]


def format_cell(mean: float, std: float, runs: int, diverged: int, digits: int = 3) -> str:
    """Render one cell: "0.953 ± 0.012", "diverged", or with a count of diverged runs."""
    if runs == 0:
        return MISSING
    if diverged == runs:
        return "diverged"
    text = f"{mean:.{digits}f}" if np.isnan(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"
    if diverged:
        text += f" ({diverged} of {runs} diverged)"
    return text


def _ordered(values, order):
    present = list(dict.fromkeys(values))
    if order is None:
        return present
    return [v for v in order if v in present] + [v for v in present if v not in order]


def grid_table(summary: pd.DataFrame, task_label: str, *,
               methods: Sequence[str] | None = None,
               optimizers: Sequence[str] | None = None,
               labels: dict[str, str] | None = None) -> pd.DataFrame:
    """Return a methods × optimizers table of formatted cells for one task.

    ``methods`` and ``optimizers`` fix the order of rows and columns, and a
    method of ``methods`` without runs on this task gets a row of "n/a".
    ``labels`` maps method names to the names shown in the first column.
    """
    part = summary[summary["task_label"] == task_label]
    if part.empty:
        raise ValueError(f"no runs for task {task_label!r}; tasks: "
                         f"{sorted(summary['task_label'].unique())}")
    methods = list(methods) if methods is not None else _ordered(part["method"], None)
    optimizers = _ordered(summary["optimizer"], optimizers)
    cells = {(row.method, row.optimizer): format_cell(row.mean, row.std, row.runs, row.diverged)
             for row in part.itertuples()}
    rows = []
    for method in methods:
        row = {"method": (labels or {}).get(method, method)}
        for optimizer in optimizers:
            row[optimizer] = cells.get((method, optimizer), MISSING)
        rows.append(row)
    return pd.DataFrame(rows, columns=["method", *optimizers])


def part_table(frame: pd.DataFrame, picks: pd.DataFrame, metrics: dict[str, str], *,
               labels: dict[str, str] | None = None) -> pd.DataFrame:
    """Return one row per row of ``picks`` with a formatted cell per metric.

    ``picks`` contains the ``KEYS`` columns of the cells to show, for example
    each method at its best optimizer. ``metrics`` maps a column of ``frame``
    to the heading of its column in the table.
    """
    keys = list(KEYS)
    table = picks[keys].copy()
    for metric, heading in metrics.items():
        summary = summarize(frame, metric)
        cells = summary.apply(
            lambda row: format_cell(row["mean"], row["std"], row["runs"], row["diverged"]),
            axis=1)
        summary = summary[keys].assign(**{heading: cells})
        table = table.merge(summary, on=keys, how="left")
    table["method"] = table["method"].map(lambda m: (labels or {}).get(m, m))
    return table.fillna(MISSING).reset_index(drop=True)


def heatmap(summary: pd.DataFrame, task_label: str, *, ax=None,
            methods: Sequence[str] | None = None,
            optimizers: Sequence[str] | None = None,
            labels: dict[str, str] | None = None, title: str | None = None,
            vmin: float = 0.4, vmax: float = 1.0):
    """Draw the mean of one task as a methods × optimizers heatmap on ``ax``.

    Cells are coloured and annotated with the mean in percent ("95", with
    "*" when some runs diverged); a cell whose runs all diverged is left
    uncoloured and reads "div.", one without runs reads "n/a".
    """
    part = summary[summary["task_label"] == task_label]
    if part.empty:
        raise ValueError(f"no runs for task {task_label!r}")
    methods = list(methods) if methods is not None else _ordered(part["method"], None)
    optimizers = _ordered(summary["optimizer"], optimizers)
    means = part.pivot(index="method", columns="optimizer", values="mean")
    means = means.reindex(index=methods, columns=optimizers)
    status = part.set_index(["method", "optimizer"])
    annotations = np.full(means.shape, MISSING, dtype=object)
    for i, method in enumerate(methods):
        for j, optimizer in enumerate(optimizers):
            if (method, optimizer) not in status.index:
                continue
            row = status.loc[(method, optimizer)]
            if row["diverged"] == row["runs"]:
                annotations[i, j] = "div."
            else:
                mark = "*" if row["diverged"] else ""
                annotations[i, j] = f"{100 * row['mean']:.0f}{mark}"
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 0.35 * len(methods) + 1.2))
    # Percentages: two or three digits fit a narrow cell, "0.95" does not.
    sns.heatmap(100 * means.astype(float), ax=ax, annot=annotations, fmt="",
                vmin=100 * vmin, vmax=100 * vmax, cmap="viridis",
                cbar_kws={"label": "mean accuracy (%)"}, linewidths=0.5,
                linecolor="white", annot_kws={"fontsize": "x-small"})
    # seaborn leaves NaN cells blank and unannotated, so label them here.
    ax.set_facecolor("0.85")
    for i, j in zip(*np.nonzero(np.isnan(means.to_numpy(dtype=float)))):
        ax.text(j + 0.5, i + 0.5, annotations[i, j], ha="center", va="center",
                fontsize="x-small", color="0.2")
    ax.set_yticklabels([(labels or {}).get(m, m) for m in methods], rotation=0)
    ax.set_xlabel("optimizer")
    ax.set_ylabel("")
    ax.set_title(title or task_label)
    return ax


def heatmaps(summary: pd.DataFrame, task_labels: Sequence[str], *, columns: int = 2,
             **options):
    """Draw one ``heatmap`` per task on a grid of panels; return the figure."""
    task_labels = list(task_labels)
    rows = -(-len(task_labels) // columns)
    methods = options.get("methods")
    height = 0.3 * (len(methods) if methods else 9) + 1.4
    fig, axes = plt.subplots(rows, columns, figsize=(7.5 * columns / 2 + 1, height * rows),
                             squeeze=False)
    for ax, task_label in zip(axes.flat, task_labels):
        heatmap(summary, task_label, ax=ax, **options)
    for ax in list(axes.flat)[len(task_labels):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig
