"""Figures of the feedback-alignment chapters, drawn with matplotlib.

``error_transport`` draws how BP, FA and DFA carry the error back;
``alignment_curves`` plots the alignment angles a run recorded.

A diagram shows the layers of a network as boxes from the input X to the
output y_hat. Forward arrows carry the weights W_l above the boxes; the
arrows below show which matrix carries the error back to each hidden layer:
W_{l+1}^T from the layer above (BP), a fixed random B_l from the layer above
(FA), or a fixed random B_l straight from the output error e (DFA).
"""

from __future__ import annotations

import re

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

__all__ = ["TRANSPORTS", "error_transport", "error_transport_panels", "alignment_curves"]

#: Learning rules a diagram can show, with the title of their panel.
TRANSPORTS = {
    "bp": "Backpropagation",
    "fa": "Feedback alignment",
    "dfa": "Direct feedback alignment",
}

FORWARD_COLOUR = "0.35"
FEEDBACK_COLOURS = {"bp": "#0072B2", "fa": "#D55E00", "dfa": "#009E73"}
BOX_WIDTH, BOX_HEIGHT, GAP = 0.9, 0.8, 0.8


def _node_labels(hidden_layers: int) -> list[str]:
    hidden = [f"$h_{{{l}}}$" for l in range(1, hidden_layers + 1)]
    return ["$X$", *hidden, r"$\hat{y}$"]


def _arrow(ax, start, end, colour, rad=0.0, style="-|>", dashed=False):
    ax.add_patch(FancyArrowPatch(
        start, end, arrowstyle=style, mutation_scale=12, color=colour, linewidth=1.4,
        connectionstyle=f"arc3,rad={rad}", linestyle="--" if dashed else "-",
        shrinkA=2, shrinkB=2,
    ))


def _check(method: str, hidden_layers: int) -> None:
    if method not in TRANSPORTS:
        raise ValueError(f"method must be one of {sorted(TRANSPORTS)}, got {method!r}")
    if isinstance(hidden_layers, bool) or not isinstance(hidden_layers, int) or hidden_layers < 1:
        raise ValueError(f"hidden_layers must be a positive int, got {hidden_layers!r}")


def error_transport(method: str, hidden_layers: int = 2, ax=None):
    """Draw the error transport of ``method`` ("bp", "fa" or "dfa") on ``ax``.

    The network has ``hidden_layers`` hidden layers; biases are left out.
    Returns the axes. A new figure is created when ``ax`` is None.
    """
    _check(method, hidden_layers)
    if ax is None:
        _, ax = plt.subplots(figsize=(1.5 * (hidden_layers + 3), 2.6))
    labels = _node_labels(hidden_layers)
    step = BOX_WIDTH + GAP
    centres = [i * step for i in range(len(labels))]
    colour = FEEDBACK_COLOURS[method]

    for x, label in zip(centres, labels):
        ax.add_patch(FancyBboxPatch(
            (x - BOX_WIDTH / 2, -BOX_HEIGHT / 2), BOX_WIDTH, BOX_HEIGHT,
            boxstyle="round,pad=0.02,rounding_size=0.12", facecolor="white",
            edgecolor="0.2", linewidth=1.2,
        ))
        ax.text(x, 0, label, ha="center", va="center", fontsize=12)

    # Forward pass: W_l from box l - 1 to box l, above the boxes.
    for layer in range(1, len(labels)):
        start = (centres[layer - 1] + BOX_WIDTH / 2, 0.15)
        end = (centres[layer] - BOX_WIDTH / 2, 0.15)
        _arrow(ax, start, end, FORWARD_COLOUR)
        ax.text((start[0] + end[0]) / 2, 0.32, f"$W_{{{layer}}}$", ha="center",
                va="bottom", fontsize=10, color=FORWARD_COLOUR)

    # The output error e = y_hat - y, computed against the target y.
    output = centres[-1]
    ax.text(output, -1.05, r"$e = \hat{y} - y$", ha="center", va="center",
            fontsize=10, color=colour)
    _arrow(ax, (output, -BOX_HEIGHT / 2), (output, -0.88), colour, style="-")

    last_hidden = len(labels) - 2
    for layer in range(last_hidden, 0, -1):
        if method == "dfa":
            # Each hidden layer hears e directly, along its own arc below the boxes.
            start = (output - 0.55, -1.05)
            end = (centres[layer], -BOX_HEIGHT / 2)
            rad = -0.3
            _arrow(ax, start, end, colour, rad=rad)
            # Midpoint of matplotlib's arc3 curve: the chord midpoint moved by
            # rad / 2 times the chord turned a quarter turn clockwise.
            dx, dy = end[0] - start[0], end[1] - start[1]
            middle = ((start[0] + end[0]) / 2 + rad * dy / 2,
                      (start[1] + end[1]) / 2 - rad * dx / 2)
            ax.text(middle[0], middle[1] - 0.12, f"$B_{{{layer}}}$", ha="center",
                    va="top", fontsize=10, color=colour)
        else:
            start = (centres[layer + 1] - BOX_WIDTH / 2, -0.15)
            end = (centres[layer] + BOX_WIDTH / 2, -0.15)
            _arrow(ax, start, end, colour)
            text = f"$W_{{{layer + 1}}}^T$" if method == "bp" else f"$B_{{{layer}}}$"
            ax.text((start[0] + end[0]) / 2, -0.32, text, ha="center", va="top",
                    fontsize=10, color=colour)

    bottom = -1.4 - 0.3 * last_hidden if method == "dfa" else -1.35
    ax.set_xlim(centres[0] - BOX_WIDTH, centres[-1] + BOX_WIDTH)
    ax.set_ylim(bottom, 0.9)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(TRANSPORTS[method], fontsize="medium")
    return ax


def error_transport_panels(methods=("bp", "fa", "dfa"), hidden_layers: int = 2):
    """Draw one error-transport diagram per method, stacked, and return the figure."""
    from .plots import PAGE_WIDTH

    for method in methods:
        _check(method, hidden_layers)
    heights = [2.0 + (0.4 * hidden_layers if m == "dfa" else 0.0) for m in methods]
    fig, axes = plt.subplots(len(methods), 1, figsize=(PAGE_WIDTH, sum(heights)),
                             squeeze=False, gridspec_kw={"height_ratios": heights})
    for ax, method in zip(axes[:, 0], methods):
        error_transport(method, hidden_layers, ax=ax)
    fig.tight_layout()
    return fig


def alignment_curves(histories, metric: str = "angle_update", title: str | None = None):
    """Plot a recorded alignment angle over epochs, one panel per run.

    ``histories`` maps a panel title to a ``History`` of FA or DFA; every
    ``<metric>_layer{l}`` it recorded becomes one line. An ensemble history is
    drawn as its mean over members. The dotted line at 90 degrees separates
    updates that descend (below) from those that do not.
    """
    from .plots import PAGE_WIDTH

    pattern = re.compile(rf"^{re.escape(metric)}_layer(\d+)$")
    fig, axes = plt.subplots(1, len(histories), figsize=(PAGE_WIDTH, 3.0), squeeze=False,
                             sharey=True)
    for ax, (name, history) in zip(axes[0], histories.items()):
        layers = sorted(int(m.group(1)) for key in history.values
                        if (m := pattern.match(key)))
        if not layers:
            raise ValueError(
                f"history {name!r} recorded no {metric}_layer<l> metric; recorded: "
                f"{sorted(history.values)}"
            )
        for layer in layers:
            values = history.array(f"{metric}_layer{layer}")  # (epochs, *E)
            values = values.reshape(values.shape[0], -1)
            epochs = np.arange(1, values.shape[0] + 1)
            # Mean over members, ignoring undefined (NaN) angles of zero updates.
            finite = np.isfinite(values)
            counts = finite.sum(axis=1)
            sums = np.where(finite, values, 0.0).sum(axis=1)
            mean = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
            ax.plot(epochs, mean, marker=".", label=f"layer {layer}")
        ax.axhline(90, color="0.5", linewidth=0.8, linestyle=":")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.set_ylim(0, 120)
    axes[0][0].set_ylabel("angle to BP (degrees)")
    axes[0][-1].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
