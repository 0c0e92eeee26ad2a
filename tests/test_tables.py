"""Result tables: mean ± std over seeds, diverged runs, heatmaps."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from parity_learning import tables


def runs(rows):
    """Build a results frame from (task, method, optimizer, accuracy or None)."""
    records = []
    for task, method, optimizer, accuracy in rows:
        records.append(dict(task_label=task, method=method, optimizer=optimizer,
                            diverged=accuracy is None,
                            test_accuracy=np.nan if accuracy is None else accuracy))
    return pd.DataFrame(records)


FRAME = runs([
    ("A", "bp", "sgd", 0.9), ("A", "bp", "sgd", 1.0), ("A", "bp", "sgd", None),
    ("A", "bp", "adam", 0.8), ("A", "bp", "adam", 0.6),
    ("A", "dfa", "sgd", None), ("A", "dfa", "sgd", None),
    ("A", "dfa", "adam", 0.7),
    ("B", "fa", "sgd", 0.55),
])


def test_summarize_leaves_diverged_runs_out_of_mean():
    summary = tables.summarize(FRAME).set_index(["task_label", "method", "optimizer"])
    row = summary.loc[("A", "bp", "sgd")]
    assert row["mean"] == pytest.approx(0.95)
    assert row["std"] == pytest.approx(np.std([0.9, 1.0], ddof=1))
    assert row["runs"] == 3
    assert row["diverged"] == 1


def test_summarize_all_diverged_has_nan_mean():
    summary = tables.summarize(FRAME).set_index(["task_label", "method", "optimizer"])
    row = summary.loc[("A", "dfa", "sgd")]
    assert np.isnan(row["mean"])
    assert row["diverged"] == row["runs"] == 2


def test_summarize_rejects_unknown_metric():
    with pytest.raises(ValueError, match="'loss'"):
        tables.summarize(FRAME, metric="loss")


@pytest.mark.parametrize(
    "arguments, expected",
    [((0.95, 0.0707, 2, 0), "0.950 ± 0.071"),
     ((0.95, np.nan, 1, 0), "0.950"),
     ((np.nan, np.nan, 2, 2), "diverged"),
     ((0.95, 0.0707, 3, 1), "0.950 ± 0.071 (1 of 3 diverged)"),
     ((np.nan, np.nan, 0, 0), "n/a")],
)
def test_format_cell(arguments, expected):
    assert tables.format_cell(*arguments) == expected


def test_grid_table_orders_and_fills_missing():
    summary = tables.summarize(FRAME)
    table = tables.grid_table(summary, "A", methods=["bp", "fa", "dfa"],
                              optimizers=["adam", "sgd"], labels={"bp": "BP"})
    assert list(table.columns) == ["method", "adam", "sgd"]
    assert table["method"].tolist() == ["BP", "fa", "dfa"]
    assert table.loc[1, "sgd"] == "n/a"
    assert table.loc[2, "sgd"] == "diverged"
    assert table.loc[0, "adam"] == "0.700 ± 0.141"


def test_grid_table_rejects_unknown_task():
    with pytest.raises(ValueError, match="'C'"):
        tables.grid_table(tables.summarize(FRAME), "C")


def test_heatmap_marks_diverged_and_missing_cells():
    summary = tables.summarize(FRAME)
    ax = tables.heatmap(summary, "A", methods=["bp", "fa", "dfa"], optimizers=["adam", "sgd"])
    cells = {(int(t.get_position()[1]), int(t.get_position()[0])): t.get_text()
             for t in ax.texts}
    assert cells == {(0, 0): "70", (0, 1): "95*", (1, 0): "n/a", (1, 1): "n/a",
                     (2, 0): "70", (2, 1): "div."}
    plt.close(ax.figure)


def test_heatmaps_draw_one_panel_per_task():
    fig = tables.heatmaps(tables.summarize(FRAME), ["A", "B", "A"], columns=2)
    visible = [ax for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert [ax.get_title() for ax in visible] == ["A", "B", "A"]
    plt.close(fig)


def test_part_table_formats_each_metric():
    frame = FRAME.assign(test_uniform_accuracy=FRAME["test_accuracy"] - 0.1)
    picks = pd.DataFrame([dict(task_label="A", method="bp", optimizer="adam"),
                          dict(task_label="A", method="dfa", optimizer="sgd")])
    table = tables.part_table(frame, picks, {"test_accuracy": "all",
                                             "test_uniform_accuracy": "uniform"},
                              labels={"bp": "BP"})
    assert table["method"].tolist() == ["BP", "dfa"]
    assert table["all"].tolist() == ["0.700 ± 0.141", "diverged"]
    assert table["uniform"].tolist() == ["0.600 ± 0.141", "diverged"]
