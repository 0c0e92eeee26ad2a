"""Empirical NTK, kernel distance and laziness measures against direct maths."""

import pytest
import torch
import torch.nn.functional as F
from torch.func import jacrev

from conftest import TOLERANCES
from parity_learning.data import SparseParityTask
from parity_learning.kernels import (
    empirical_ntk,
    kernel_changes,
    kernel_distance,
    laziness_by_width,
    per_example_gradients,
    relative_change,
    weight_changes,
)
from parity_learning.lazy import LAZY_MODELS, build_model, fit_model
from parity_learning.seeding import torch_generator

F64 = TOLERANCES[torch.float64]
SIZES = (5, 7, 1)


def reference_logits(name, model, params, X):
    """The model's logits as a function of its trained tensors, written with
    torch.nn.functional, so that jacrev differentiates them independently."""
    trained_names = ("W1", "b1", "W2", "b2") if name == "bp" else model.TRAINED
    named = dict(zip(trained_names, params))
    W1 = named.get("W1", model.weights[0])
    b1 = named.get("b1", model.biases[0])
    a1 = F.linear(X, W1, b1)
    if name == "bp":
        h1 = torch.relu(a1)
    elif name.startswith("ntk"):
        g1 = F.linear(X, model.G1, model.c1)
        h1 = F.glu(torch.cat([a1, g1], -1), -1) if name == "ntk" else a1 * (g1 > 0)
    elif name == "fourier_features":
        h1 = torch.cos(a1)
    elif name == "linear_features":
        h1 = a1
    else:
        h1 = torch.relu(a1)
    return F.linear(h1, named["W2"], named["b2"])[:, 0]


def autograd_jacobian(name, model, X):
    params = tuple(p.clone() for p in model.parameters())
    jacobians = jacrev(lambda *p: reference_logits(name, model, p, X), argnums=tuple(
        range(len(params))))(*params)
    return torch.cat([j.reshape(X.shape[0], -1) for j in jacobians], dim=1)


def batch(count=9, seed=1, n_0=SIZES[0]):
    generator = torch_generator(seed, "test-batch")
    return torch.randn(count, n_0, generator=generator, dtype=torch.float64)


@pytest.mark.parametrize("name", ("bp",) + LAZY_MODELS)
def test_per_example_gradients_match_autograd(name):
    model = build_model(name, SIZES, 3, dtype=torch.float64)
    X = batch()
    J = per_example_gradients(model, X)
    expected = autograd_jacobian(name, model, X)
    assert J.shape == (X.shape[0], sum(p.numel() for p in model.parameters()))
    torch.testing.assert_close(J, expected, **F64)


@pytest.mark.parametrize("name", ("bp", "ntk"))
def test_empirical_ntk_is_gram_matrix(name):
    model = build_model(name, SIZES, 3, dtype=torch.float64)
    X1, X2 = batch(seed=1), batch(count=4, seed=2)
    K = empirical_ntk(model, X1)
    J1 = autograd_jacobian(name, model, X1)
    torch.testing.assert_close(K, J1 @ J1.T, **F64)
    assert torch.equal(K, K.T)
    assert torch.linalg.eigvalsh(K).min() > -1e-10

    cross = empirical_ntk(model, X1, X2)
    assert cross.shape == (9, 4)
    torch.testing.assert_close(cross, J1 @ autograd_jacobian(name, model, X2).T, **F64)


def test_random_features_kernel_is_feature_gram():
    model = build_model("relu_features", SIZES, 3, dtype=torch.float64)
    X = batch()
    features = model.forward(X).activations[1]
    torch.testing.assert_close(empirical_ntk(model, X), features @ features.T + 1, **F64)


def test_random_features_kernel_constant_in_training():
    task = SparseParityTask(6, 3, 200, 100, seed=0, dtype=torch.float64)
    X = task.evaluation_sets["test"].X[:30]
    initial = build_model("gaussian_features", (6, 16, 1), 0, dtype=torch.float64)
    trained, _ = fit_model(task, "gaussian_features", width=16, optimizer="sgd",
                           optimizer_options={"lr": 0.5}, epochs=3, batch_size=20, seed=0)
    assert not torch.equal(initial.W2, trained.W2)
    assert torch.equal(empirical_ntk(initial, X), empirical_ntk(trained, X))


def test_bp_kernel_moves_in_training():
    task = SparseParityTask(6, 3, 200, 100, seed=0, dtype=torch.float64)
    X = task.evaluation_sets["test"].X[:30]
    initial = build_model("bp", (6, 16, 1), 0, dtype=torch.float64)
    trained, _ = fit_model(task, "bp", width=16, optimizer="sgd",
                           optimizer_options={"lr": 0.5}, epochs=3, batch_size=20, seed=0)
    assert kernel_distance(empirical_ntk(initial, X), empirical_ntk(trained, X)) > 1e-3


def test_kernel_diagnostics_reject_ensembles():
    models = [build_model("ntk", SIZES, s, dtype=torch.float64) for s in range(2)]
    ensemble = type(models[0]).stack(models)
    with pytest.raises(ValueError, match="member"):
        empirical_ntk(ensemble, batch())


def test_kernel_distance_values():
    K = torch.tensor([[2.0, 1.0], [1.0, 3.0]], dtype=torch.float64)
    assert kernel_distance(K, 5 * K) == pytest.approx(0.0, abs=1e-15)
    first = torch.diag(torch.tensor([1.0, 0.0]))
    second = torch.diag(torch.tensor([0.0, 1.0]))
    assert kernel_distance(first, second) == 1.0
    other = torch.eye(2, dtype=torch.float64)
    expected = 1 - 5 / (torch.linalg.matrix_norm(K) * 2**0.5)
    assert kernel_distance(K, other) == pytest.approx(float(expected), rel=1e-12)


def test_kernel_distance_float32_in_float64():
    generator = torch_generator(0, "test-kernel")
    features = torch.randn(200, 50, generator=generator)
    K1 = features @ features.T  # float32
    K2 = K1 + 1e-3 * torch.randn(200, 200, generator=generator)
    expected = kernel_distance(K1.double(), K2.double())
    assert 0 < expected < 1e-5
    assert kernel_distance(K1, K2) == pytest.approx(expected, rel=1e-9)


def test_kernel_distance_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        kernel_distance(torch.eye(2), torch.eye(3))
    with pytest.raises(ValueError, match="zero kernel"):
        kernel_distance(torch.zeros(2, 2), torch.eye(2))


def test_relative_change_values():
    W0 = torch.tensor([[3.0, 0.0], [0.0, 4.0]], dtype=torch.float64)
    WT = W0 + torch.tensor([[0.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    assert float(relative_change(W0, WT)) == pytest.approx(1 / 5, rel=1e-15)

    stacked = relative_change(torch.stack([W0, W0]), torch.stack([W0, WT]))
    assert stacked.shape == (2,)
    assert stacked.tolist() == [0.0, pytest.approx(0.2)]
    with pytest.raises(ValueError, match="matrices"):
        relative_change(torch.ones(3), torch.ones(3))
    with pytest.raises(ValueError, match="shape"):
        relative_change(W0, torch.ones(3, 2))


def test_weight_changes_per_layer():
    model = build_model("ntk", SIZES, 0, dtype=torch.float64)
    initial = [W.clone() for W in model.weights]
    model.W2.mul_(1.5)
    changes = weight_changes(initial, model)
    assert changes["W1"] == 0.0
    assert changes["W2"] == pytest.approx(0.5, rel=1e-12)


def test_laziness_by_width_table():
    task = SparseParityTask(6, 3, 200, 100, seed=0)
    frame = laziness_by_width(task, ["bp", "relu_features"], [4, 8], optimizer="sgd",
                              optimizer_options={"lr": 0.1}, epochs=2, batch_size=50,
                              seed=0)
    assert len(frame) == 2 * 2 * 2  # models x widths x layers
    frozen = frame[(frame.model == "relu_features") & (frame.layer == "W1")]
    assert (frozen["relative change"] == 0).all()
    moved = frame[frame.layer == "W2"]
    assert (moved["relative change"] > 0).all()
    trained_first = frame[(frame.model == "bp") & (frame.layer == "W1")]
    assert (trained_first["relative change"] > 0).all()


def test_kernel_changes_table():
    task = SparseParityTask(6, 3, 200, 100, seed=0, dtype=torch.float64)
    test_set = task.evaluation_sets["test"]
    X, y = test_set.X[:20], test_set.y[:20]
    kernels, frame = kernel_changes(task, ["bp", "linear_features"], 8, X, y,
                                    optimizer="sgd", optimizer_options={"lr": 0.5},
                                    epochs=3, batch_size=20, seed=0)
    assert list(frame.model) == ["bp", "linear_features"]
    K0, KT = kernels["bp"]
    assert K0.shape == (20, 20)
    rows = frame.set_index("model")
    assert rows.loc["bp", "kernel distance"] == kernel_distance(K0, KT)
    assert rows.loc["bp", "kernel distance"] > 1e-3
    assert rows.loc["linear_features", "kernel distance"] == 0.0
    target = y[:, None] * y[None, :]
    expected = 1 - kernel_distance(KT, target)
    assert rows.loc["bp", "alignment after training"] == pytest.approx(expected, rel=1e-12)
