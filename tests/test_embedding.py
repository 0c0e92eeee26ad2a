"""t-SNE of hidden representations: perplexity limits, seeding, plotting."""

import logging

import matplotlib
import numpy as np
import pytest
import torch

from parity_learning.embedding import (
    hidden_representation,
    max_perplexity,
    plot_embeddings,
    tsne,
)
from parity_learning.models import MLP
from parity_learning.seeding import numpy_generator, torch_generator


def clustered_points(count=40, seed=0):
    rng = numpy_generator(seed, "test-points")
    labels = np.arange(count) % 2
    points = rng.normal(size=(count, 5)) + 6.0 * labels[:, None]
    return points, labels


def test_max_perplexity_formula():
    assert max_perplexity(31) == 10.0
    assert max_perplexity(4) == 1.0


def test_tsne_rejects_unsupported_perplexity():
    points, _ = clustered_points(count=30)
    with pytest.raises(ValueError) as error:
        tsne(points, seed=0, perplexity=30.0)
    message = str(error.value)
    assert "perplexity 30.0" in message
    assert "30 points" in message
    assert "9.667" in message
    assert "clamp=True" in message


def test_tsne_clamps_with_warning(caplog):
    points, _ = clustered_points(count=31)
    with caplog.at_level(logging.WARNING, logger="parity_learning.embedding"):
        embedding = tsne(points, seed=0, perplexity=30.0, clamp=True, max_iter=250)
    assert embedding.perplexity == 10.0
    assert embedding.requested_perplexity == 30.0
    assert embedding.clamped
    assert any("perplexity 30.0 is too large" in r.getMessage() for r in caplog.records)


def test_tsne_at_limit_is_not_clamped(caplog):
    points, _ = clustered_points(count=31)
    with caplog.at_level(logging.WARNING, logger="parity_learning.embedding"):
        embedding = tsne(points, seed=0, perplexity=10.0, max_iter=250)
    assert not embedding.clamped
    assert not caplog.records


@pytest.mark.parametrize("perplexity", [0.0, -1.0, float("nan")])
def test_tsne_rejects_invalid_perplexity(perplexity):
    points, _ = clustered_points()
    with pytest.raises(ValueError, match="perplexity"):
        tsne(points, seed=0, perplexity=perplexity)


def test_tsne_rejects_bad_shapes():
    with pytest.raises(ValueError, match="at least 4 points"):
        tsne(np.zeros((3, 2)), seed=0, perplexity=1.0)
    with pytest.raises(ValueError, match="shape"):
        tsne(np.zeros(10), seed=0, perplexity=1.0)


def test_tsne_reproducible_and_separates():
    points, labels = clustered_points()
    first = tsne(points, seed=0, perplexity=5.0, max_iter=250)
    again = tsne(points, seed=0, perplexity=5.0, max_iter=250)
    assert first.coordinates.shape == (40, 2)
    np.testing.assert_array_equal(first.coordinates, again.coordinates)
    centres = [first.coordinates[labels == value].mean(axis=0) for value in (0, 1)]
    spread = max(first.coordinates[labels == value].std(axis=0).max() for value in (0, 1))
    assert np.linalg.norm(centres[0] - centres[1]) > 2 * spread


def test_hidden_representation_shape_and_values():
    model = MLP((6, 5, 4, 1), "relu", generator=torch_generator(0, "init"))
    X = torch.randn(9, 6, generator=torch_generator(0, "x"))
    h2 = hidden_representation(model, X, layer=2)
    assert h2.shape == (9, 4)
    np.testing.assert_allclose(h2, model.forward(X).activations[2].numpy(), rtol=1e-6)
    for bad in (0, 3, True):
        with pytest.raises(ValueError, match="hidden layer"):
            hidden_representation(model, X, layer=bad)


def test_hidden_representation_rejects_ensemble():
    members = [MLP((6, 5, 1), generator=torch_generator(s, "init")) for s in range(2)]
    with pytest.raises(ValueError, match="member"):
        hidden_representation(MLP.stack(members), torch.zeros(3, 6), layer=1)


def test_plot_embeddings_side_by_side():
    points, labels = clustered_points()
    embedding = tsne(points, seed=0, perplexity=5.0, max_iter=250)
    fig = plot_embeddings({"BP": embedding, "DFA": embedding}, labels, label_name="class")
    assert isinstance(fig, matplotlib.figure.Figure)
    assert [ax.get_title() for ax in fig.axes] == ["BP (perplexity 5)", "DFA (perplexity 5)"]
    with pytest.raises(ValueError, match="40 points but 39 labels"):
        plot_embeddings({"BP": embedding}, labels[:-1])


def test_tsne_thread_limit_same_map():
    points, _ = clustered_points()
    default = tsne(points, seed=0, perplexity=5.0, max_iter=250)
    limited = tsne(points, seed=0, perplexity=5.0, max_iter=250, threads=1)
    np.testing.assert_allclose(limited.coordinates, default.coordinates, rtol=1e-6, atol=1e-6)
