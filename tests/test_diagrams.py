"""Error-transport diagrams: which matrix each rule draws on the way back."""

import matplotlib.pyplot as plt
import pytest
from matplotlib.patches import FancyArrowPatch

from parity_learning.diagrams import alignment_curves, error_transport, error_transport_panels


def texts(ax):
    return [t.get_text() for t in ax.texts]


@pytest.mark.parametrize("hidden_layers", [1, 2, 4])
def test_bp_draws_transposed_weights(hidden_layers):
    ax = error_transport("bp", hidden_layers)
    labels = texts(ax)
    for layer in range(2, hidden_layers + 2):
        assert f"$W_{{{layer}}}^T$" in labels
    assert not any(label.startswith("$B_") for label in labels)
    plt.close("all")


@pytest.mark.parametrize("method", ["fa", "dfa"])
@pytest.mark.parametrize("hidden_layers", [1, 3])
def test_feedback_rules_draw_random_matrices(method, hidden_layers):
    ax = error_transport(method, hidden_layers)
    labels = texts(ax)
    assert [label for label in labels if label.startswith("$B_")] == [
        f"$B_{{{layer}}}$" for layer in range(hidden_layers, 0, -1)
    ]
    assert not any("^T" in label for label in labels)
    forward = [label for label in labels if label.startswith("$W_")]
    assert len(forward) == hidden_layers + 1
    plt.close("all")


def test_arrow_counts_per_method():
    counts = {}
    for method in ("bp", "fa", "dfa"):
        ax = error_transport(method, 3)
        counts[method] = sum(isinstance(p, FancyArrowPatch) for p in ax.patches)
    # 4 forward arrows, 3 feedback arrows and the line from y_hat to e.
    assert counts == {"bp": 8, "fa": 8, "dfa": 8}
    plt.close("all")


def test_panels_one_axis_per_method():
    fig = error_transport_panels(("bp", "dfa"), hidden_layers=2)
    assert [ax.get_title() for ax in fig.axes] == [
        "Backpropagation", "Direct feedback alignment"
    ]
    plt.close(fig)


def test_invalid_arguments_rejected():
    with pytest.raises(ValueError, match="method must be one of"):
        error_transport("ifa")
    with pytest.raises(ValueError, match="hidden_layers"):
        error_transport("bp", 0)
    with pytest.raises(ValueError, match="method must be one of"):
        error_transport_panels(("bp", "sgd"))


def test_alignment_curves_one_line_per_layer():
    from parity_learning.train import History

    history = History(ensemble_shape=())
    for epoch in range(3):
        history.append("angle_update_layer1", 80.0 - epoch)
        history.append("angle_update_layer2", 60.0 - epoch)
        history.append("angle_feedback_layer1", 85.0)
    fig = alignment_curves({"DFA": history, "FA": history})
    assert [ax.get_title() for ax in fig.axes] == ["DFA", "FA"]
    lines = [line for line in fig.axes[0].get_lines() if line.get_label().startswith("layer")]
    assert [line.get_label() for line in lines] == ["layer 1", "layer 2"]
    assert list(lines[1].get_ydata()) == [60.0, 59.0, 58.0]
    with pytest.raises(ValueError, match="recorded no angle_update_layer"):
        alignment_curves({"BP": History(ensemble_shape=())})
    plt.close("all")
