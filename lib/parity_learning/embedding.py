"""t-SNE maps of the hidden representations of a trained network.

The map uses scikit-learn's ``TSNE``. Its Barnes-Hut method builds the input
affinities from the 3 * perplexity + 1 nearest neighbours of each point
(``sklearn/manifold/_t_sne.py``, scikit-learn 1.9). With N points, a
perplexity above (N - 1) / 3 therefore cannot be met. scikit-learn then
quietly uses fewer neighbours, and it raises only once the perplexity
reaches N. Here the limit
is checked first. By default a perplexity above it raises ``ValueError``;
with ``clamp=True`` it is lowered to the limit and a warning is logged. The
perplexity actually used is stored in the result, for the caption.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Mapping

import matplotlib.pyplot as plt
import numpy as np
import torch

from .seeding import check_seed, stream_seed

__all__ = ["Embedding", "max_perplexity", "hidden_representation", "tsne", "plot_embeddings"]

log = logging.getLogger(__name__)

#: Minimum number of points for t-SNE; with 4 points the maximum perplexity is 1.
MIN_POINTS = 4


@dataclass(frozen=True)
class Embedding:
    """A two-dimensional t-SNE map: ``coordinates`` (N, 2) and its settings."""

    coordinates: np.ndarray
    perplexity: float
    requested_perplexity: float
    seed: int

    @property
    def clamped(self) -> bool:
        return self.perplexity != self.requested_perplexity


def max_perplexity(num_points: int) -> float:
    """Return the largest perplexity that ``num_points`` points support, (N - 1) / 3."""
    return (num_points - 1) / 3


@torch.no_grad()
def hidden_representation(model, X: torch.Tensor, layer: int) -> np.ndarray:
    """Return h_layer = f(a_layer) of a single model on X, shape (N, n_layer).

    ``layer`` counts hidden layers from 1 to L - 1; layer 0 would be X itself.
    """
    if model.ensemble_shape:
        raise ValueError(
            f"hidden_representation needs a single model, got ensemble shape "
            f"{model.ensemble_shape}: pass model.member(e)"
        )
    hidden_layers = model.num_layers - 1
    if isinstance(layer, bool) or not isinstance(layer, int) or not 1 <= layer <= hidden_layers:
        raise ValueError(
            f"layer must be a hidden layer in [1, {hidden_layers}], got {layer!r}"
        )
    cache = model.forward(X.to(model.dtype))
    return cache.activations[layer].to("cpu", torch.float64).numpy()


def tsne(features, *, seed: int, perplexity: float = 30.0, clamp: bool = False,
         max_iter: int = 1000, threads: int | None = None) -> Embedding:
    """Map ``features`` of shape (N, d) to two dimensions with t-SNE.

    The optimisation starts from scikit-learn's PCA initialisation and takes
    its random state from the stream ``tsne`` of ``seed``, so a run is
    reproducible. A ``perplexity`` above ``max_perplexity(N)`` raises
    ``ValueError``, unless ``clamp=True``, which lowers it and logs a warning.
    ``threads`` caps the OpenMP and BLAS threads of the fit, and None keeps
    the libraries' defaults. On a machine whose cores are busy, one thread can
    be several times faster for a few hundred points.
    """
    from sklearn.manifold import TSNE

    seed = check_seed(seed)
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise ValueError(f"features must have shape (N, d), got {features.shape}")
    count = features.shape[0]
    if count < MIN_POINTS:
        raise ValueError(f"t-SNE needs at least {MIN_POINTS} points, got {count}")
    if isinstance(perplexity, bool) or not isinstance(perplexity, (int, float)):
        raise TypeError(f"perplexity must be a positive number, got {perplexity!r}")
    if not (math.isfinite(perplexity) and perplexity > 0):
        raise ValueError(f"perplexity must be a positive finite number, got {perplexity}")

    limit = max_perplexity(count)
    used = float(perplexity)
    if used > limit:
        if not clamp:
            raise ValueError(
                f"perplexity {perplexity} is too large for {count} points: t-SNE "
                f"needs 3 * perplexity + 1 neighbours per point, so the maximum is "
                f"(N - 1) / 3 = {limit:.4g}; lower it, pass more points, or pass "
                "clamp=True"
            )
        log.warning(
            "perplexity %s is too large for %d points; using the maximum %.4g",
            perplexity, count, limit,
        )
        used = limit

    random_state = stream_seed(seed, "tsne") % 2**32
    model = TSNE(n_components=2, perplexity=used, init="pca", max_iter=max_iter,
                 random_state=random_state)
    if threads is None:
        coordinates = model.fit_transform(features)
    else:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=threads):
            coordinates = model.fit_transform(features)
    return Embedding(coordinates, used, float(perplexity), seed)


def plot_embeddings(embeddings: Mapping[str, Embedding], labels, *, label_name: str = "label",
                    title: str | None = None):
    """Draw t-SNE maps side by side, points coloured by ``labels``.

    ``labels`` has one integer per point, shared by every map; each panel's
    title names the map and the perplexity it used.
    """
    from .plots import PAGE_WIDTH

    labels = np.asarray(labels)
    values = np.unique(labels)
    fig, axes = plt.subplots(1, len(embeddings), figsize=(PAGE_WIDTH, PAGE_WIDTH / len(embeddings) + 0.6),
                             squeeze=False)
    if len(values) <= 10:
        colours = [plt.get_cmap("tab10")(i) for i in range(len(values))]
    else:
        colours = [plt.get_cmap("viridis")(x) for x in np.linspace(0, 1, len(values))]
    for ax, (name, embedding) in zip(axes[0], embeddings.items()):
        if len(embedding.coordinates) != len(labels):
            raise ValueError(
                f"embedding {name!r} has {len(embedding.coordinates)} points but "
                f"{len(labels)} labels were given"
            )
        for index, value in enumerate(values):
            mask = labels == value
            x, y = embedding.coordinates[mask].T
            ax.scatter(x, y, s=6, color=colours[index], label=str(value))
        ax.set_title(f"{name} (perplexity {embedding.perplexity:.3g})")
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][-1].legend(title=label_name, fontsize="small", markerscale=2,
                       loc="center left", bbox_to_anchor=(1.0, 0.5))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
