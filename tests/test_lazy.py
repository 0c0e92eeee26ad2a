"""Lazy models: gates, feature maps, gradients, ensembles, frozen tensors."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from conftest import TOLERANCES, image_outputs, run_chapter
from parity_learning.data import EvaluationSet
from parity_learning.lazy import (
    LAZY_MODELS,
    GatedNetwork,
    RandomFeatures,
    build_model,
    make_lazy_model,
)
from parity_learning.losses import bce_with_logits, hinge
from parity_learning.models import MLP
from parity_learning.optim import make_optimizer
from parity_learning.rules import make_rule
from parity_learning.seeding import torch_generator
from parity_learning.train import train

F64 = TOLERANCES[torch.float64]
SIZES = (6, 9, 1)
LOSSES = {"bce": bce_with_logits, "hinge": hinge}
RANDOM_FEATURES = ("gaussian_features", "relu_features", "linear_features", "fourier_features")

#: The seven optimizer configurations of the book's sweeps, with a small step.
OPTIMIZER_CONFIGS = {
    "sgd": {"lr": 0.1},
    "momentum": {"lr": 0.1, "momentum": 0.9},
    "nesterov": {"lr": 0.1, "momentum": 0.9},
    "adagrad": {"lr": 0.1},
    "adadelta": {"lr": 1.0},
    "rmsprop": {"lr": 0.01},
    "adam": {"lr": 0.01},
}


def lazy_model(name, sizes=SIZES, seed=1, dtype=torch.float64):
    return make_lazy_model(name, sizes, generator=torch_generator(seed, "init"), dtype=dtype)


def random_batch(n_0, seed, count=13, dtype=torch.float64):
    generator = torch_generator(seed, "test-batch")
    X = torch.randn(count, n_0, generator=generator, dtype=dtype)
    y = torch.randint(0, 2, (count,), generator=generator).to(dtype) * 2 - 1
    return X, y


def reference_hidden(model, X, W1, b1):
    """h_1 written with torch.nn.functional, independently of the library."""
    a1 = F.linear(X, W1, b1)
    if isinstance(model, GatedNetwork):
        g1 = F.linear(X, model.G1, model.c1)
        if model.name == "ntk":
            return F.glu(torch.cat([a1, g1], dim=-1), dim=-1)
        return a1 * (g1 > 0).to(a1.dtype)
    return {
        "gaussian_features": F.relu,
        "relu_features": F.relu,
        "linear_features": lambda t: t,
        "fourier_features": torch.cos,
    }[model.name](a1)


def autograd_loss(model, X, y, loss_name):
    """Loss and autograd gradients of the trained tensors, in parameters() order."""
    params = [p.clone().requires_grad_(True) for p in model.parameters()]
    named = dict(zip(model.TRAINED, params))
    W1 = named.get("W1", model.W1)
    b1 = named.get("b1", model.b1)
    h1 = reference_hidden(model, X, W1, b1)
    z = F.linear(h1, named["W2"], named["b2"])[..., 0]
    if loss_name == "bce":
        loss = F.binary_cross_entropy_with_logits(z, (y + 1) / 2)
    else:
        loss = torch.clamp(1 - y * z, min=0).mean()
    return loss, torch.autograd.grad(loss, params)


class TinyTask:
    """A fixed training set that doubles as the test set, for train()."""

    def __init__(self, X, y, name="tiny"):
        self.X, self.y, self.name = X, y, name
        self.input_dim = X.shape[-1]
        self.dtype = X.dtype
        self.evaluation_sets = {"test": EvaluationSet(X, y)}

    def training_set(self, epoch):
        return self.X, self.y


# --------------------------------------------------------------------------
# Forward pass: gates and feature maps


def test_glu_gate_equals_functional_glu():
    model = lazy_model("ntk")
    X, _ = random_batch(SIZES[0], seed=2)
    cache = model.forward(X)
    a1 = F.linear(X, model.W1, model.b1)
    g1 = F.linear(X, model.G1, model.c1)
    expected = F.glu(torch.cat([a1, g1], dim=-1), dim=-1)

    torch.testing.assert_close(cache.pre_activations[0], a1, **F64)
    torch.testing.assert_close(cache.activations[1], expected, **F64)
    torch.testing.assert_close(
        cache.logits, F.linear(expected, model.W2, model.b2)[:, 0], **F64
    )


def test_galu_masks_by_gate_sign():
    model = lazy_model("ntk_galu", sizes=(6, 40, 1))
    X, _ = random_batch(6, seed=3, count=50)
    cache = model.forward(X)
    trained_output = cache.pre_activations[0]
    gate_input = F.linear(X, model.G1, model.c1)
    mask = gate_input > 0

    # F.linear fuses the bias add, so it may round differently from the
    # model's X @ W.T + b. The mask is exact unless a gate input is that small.
    torch.testing.assert_close(trained_output, F.linear(X, model.W1, model.b1), **F64)
    assert gate_input.abs().min() > 1e-12
    assert 0 < mask.double().mean() < 1  # both gate states occur
    assert torch.equal(cache.activations[1], torch.where(mask, trained_output, 0.0))
    torch.testing.assert_close(
        cache.logits, F.linear(cache.activations[1], model.W2, model.b2)[:, 0], **F64
    )


def test_galu_gate_differs_from_relu_of_trained_layer():
    model = lazy_model("ntk_galu", sizes=(6, 40, 1))
    X, _ = random_batch(6, seed=3, count=50)
    relu = torch.relu(F.linear(X, model.W1, model.b1))
    assert not torch.equal(model.forward(X).activations[1], relu)


def test_linear_features_linear_in_input():
    model = lazy_model("linear_features", sizes=(5, 12, 1))
    model.b2.zero_()
    generator = torch_generator(4, "test-batch")
    x, z = torch.randn(2, 7, 5, generator=generator, dtype=torch.float64)
    a, b = 1.7, -0.4

    combined = model.forward(a * x + b * z).logits
    expected = a * model.forward(x).logits + b * model.forward(z).logits
    torch.testing.assert_close(combined, expected, **F64)
    assert torch.count_nonzero(model.b1) == 0


def test_linear_features_affine_with_output_bias():
    model = lazy_model("linear_features", sizes=(5, 12, 1))
    x = torch.ones(1, 5, dtype=torch.float64)
    doubled = model.forward(2 * x).logits
    assert not torch.allclose(doubled, 2 * model.forward(x).logits)


@pytest.mark.parametrize("name", RANDOM_FEATURES)
def test_feature_maps_match_definition(name):
    model = lazy_model(name, sizes=(8, 30, 1))
    X, _ = random_batch(8, seed=5)
    expected = reference_hidden(model, X, model.W1, model.b1)
    torch.testing.assert_close(model.forward(X).activations[1], expected, **F64)


def test_fourier_features_distribution():
    n_0, width = 16, 4000
    model = lazy_model("fourier_features", sizes=(n_0, width, 1))
    weight_std = float(model.W1.std())
    assert abs(weight_std - 4 / math.sqrt(n_0)) < 0.02
    assert float(model.b1.min()) >= 0
    assert float(model.b1.max()) <= 2 * math.pi
    assert abs(float(model.b1.mean()) - math.pi) < 0.1


def test_gaussian_features_distribution():
    n_0, width = 16, 4000
    model = lazy_model("gaussian_features", sizes=(n_0, width, 1))
    assert abs(float(model.W1.std()) - 1 / math.sqrt(n_0)) < 0.005
    assert torch.count_nonzero(model.b1) == 0


# --------------------------------------------------------------------------
# Gradients


@pytest.mark.parametrize("name, loss_name", list(itertools.product(LAZY_MODELS, LOSSES)))
def test_backward_matches_autograd(name, loss_name):
    model = lazy_model(name)
    X, y = random_batch(SIZES[0], seed=2)
    cache = model.forward(X)
    loss, dlogits = LOSSES[loss_name](cache.logits, y)
    expected_loss, expected_grads = autograd_loss(model, X, y, loss_name)

    torch.testing.assert_close(loss, expected_loss.detach(), **F64)
    grads = model.backward(cache, dlogits)
    assert len(grads) == len(expected_grads)
    for grad, expected in zip(grads, expected_grads):
        assert grad.shape == expected.shape
        torch.testing.assert_close(grad, expected, **F64)


@pytest.mark.parametrize("name", LAZY_MODELS)
def test_ensemble_matches_separate_models(name):
    models = [lazy_model(name, seed=s) for s in range(3)]
    ensemble = type(models[0]).stack(models)
    assert ensemble.ensemble_shape == (3,)
    X, y = random_batch(SIZES[0], seed=5)
    cache = ensemble.forward(X)
    assert cache.logits.shape == (3, X.shape[0])
    _, dlogits = bce_with_logits(cache.logits, y)
    grads = ensemble.backward(cache, dlogits)

    for index, model in enumerate(models):
        single = model.forward(X)
        _, single_dlogits = bce_with_logits(single.logits, y)
        torch.testing.assert_close(cache.logits[index], single.logits, **F64)
        for grad, expected in zip(grads, model.backward(single, single_dlogits)):
            torch.testing.assert_close(grad[index], expected, **F64)


@pytest.mark.parametrize("name", LAZY_MODELS)
def test_member_returns_views(name):
    models = [lazy_model(name, seed=s) for s in range(3)]
    ensemble = type(models[0]).stack(models)
    member = ensemble.member(1)
    assert member.ensemble_shape == ()
    for ours, theirs in zip(member.parameters() + member.frozen_tensors(),
                            models[1].parameters() + models[1].frozen_tensors()):
        assert torch.equal(ours, theirs)
    member.parameters()[0].add_(1.0)
    assert torch.equal(ensemble.parameters()[0][1], member.parameters()[0])


def test_stack_rejects_mixed_models():
    with pytest.raises(ValueError, match="ntk_galu"):
        GatedNetwork.stack([lazy_model("ntk"), lazy_model("ntk_galu")])
    with pytest.raises(ValueError, match="sizes"):
        RandomFeatures.stack([lazy_model("relu_features"),
                              lazy_model("relu_features", sizes=(6, 4, 1))])


# --------------------------------------------------------------------------
# Trained and frozen tensors


@pytest.mark.parametrize("name", LAZY_MODELS)
def test_trained_and_frozen_tensors(name):
    model = lazy_model(name)
    trained = {id(t) for t in model.parameters()}
    frozen = {id(t) for t in model.frozen_tensors()}
    assert trained.isdisjoint(frozen)
    if name.startswith("ntk"):
        assert model.parameters() == [model.W1, model.b1, model.W2, model.b2]
        assert model.frozen_tensors() == [model.G1, model.c1]
    else:
        assert model.parameters() == [model.W2, model.b2]
        assert model.frozen_tensors() == [model.W1, model.b1]


@pytest.mark.parametrize(
    "name, optimizer", list(itertools.product(LAZY_MODELS, OPTIMIZER_CONFIGS))
)
def test_frozen_tensors_unchanged_by_optimizer(name, optimizer):
    model = lazy_model(name, sizes=(6, 16, 1))
    X, y = random_batch(6, seed=6, count=40)
    frozen_before = [t.clone() for t in model.frozen_tensors()]
    trained_before = [t.clone() for t in model.parameters()]
    opt = make_optimizer(optimizer, model.parameters(), **OPTIMIZER_CONFIGS[optimizer])
    train(model, make_rule("bp"), opt, TinyTask(X, y), epochs=3, batch_size=8, seed=0,
          progress=False)

    for before, after in zip(frozen_before, model.frozen_tensors()):
        assert torch.equal(before, after)
    assert any(not torch.equal(before, after)
               for before, after in zip(trained_before, model.parameters()))


@pytest.mark.parametrize("name", RANDOM_FEATURES)
def test_random_features_fit_linear_target(name):
    """Labels that are the sign of a linear function of the frozen features
    are separable by the output layer, so the hinge loss can reach zero."""
    model = lazy_model(name, sizes=(10, 24, 1))
    generator = torch_generator(7, "test-target")
    X = torch.randn(400, 10, generator=generator, dtype=torch.float64)
    features = model.forward(X).activations[1]
    v = torch.randn(24, generator=generator, dtype=torch.float64)
    score = features @ v
    score = score - score.median()
    keep = score.abs() > 0.5 * score.abs().median()  # a margin, so SGD converges fast
    task = TinyTask(X[keep], torch.sign(score[keep]))
    opt = make_optimizer("sgd", model.parameters(), lr=0.5, momentum=0.9)
    history = train(model, make_rule("bp"), opt, task, epochs=200, batch_size=10**6,
                    seed=0, loss="hinge", progress=False)

    assert history.final("train_accuracy") == 1.0
    assert history.final("train_loss") < 1e-3


def test_random_features_cannot_fit_unrelated_target():
    model = lazy_model("relu_features", sizes=(10, 24, 1))
    generator = torch_generator(8, "test-target")
    X = torch.randn(400, 10, generator=generator, dtype=torch.float64)
    y = torch.randint(0, 2, (400,), generator=generator).double() * 2 - 1
    opt = make_optimizer("sgd", model.parameters(), lr=0.5, momentum=0.9)
    history = train(model, make_rule("bp"), opt, TinyTask(X, y), epochs=200,
                    batch_size=10**6, seed=0, loss="hinge", progress=False)
    assert history.final("train_loss") > 0.1


# --------------------------------------------------------------------------
# Construction


@pytest.mark.parametrize("name", LAZY_MODELS)
def test_same_generator_same_tensors(name):
    first, second = lazy_model(name, seed=3), lazy_model(name, seed=3)
    for a, b in zip(first.parameters() + first.frozen_tensors(),
                    second.parameters() + second.frozen_tensors()):
        assert torch.equal(a, b)
    other = lazy_model(name, seed=4)
    assert not torch.equal(first.W1, other.W1)


def test_gate_drawn_independently_of_trained_layer():
    model = lazy_model("ntk", sizes=(6, 50, 1))
    assert model.G1.shape == model.W1.shape
    assert model.c1.shape == model.b1.shape
    assert not torch.equal(model.G1, model.W1)


@pytest.mark.parametrize("name", ["ntk", "ntk_galu", "relu_features"])
def test_build_model_shares_initial_weights_with_mlp(name):
    mlp = build_model("bp", SIZES, 2, dtype=torch.float64)
    lazy = build_model(name, SIZES, 2, dtype=torch.float64)
    assert isinstance(mlp, MLP)
    for W_mlp, W_lazy in zip(mlp.weights, lazy.weights):
        assert torch.equal(W_mlp, W_lazy)
    for b_mlp, b_lazy in zip(mlp.biases, lazy.biases):
        assert torch.equal(b_mlp, b_lazy)


def test_make_lazy_model_rejects_bad_input():
    generator = torch_generator(0, "init")
    with pytest.raises(ValueError, match="'ntk_relu'"):
        make_lazy_model("ntk_relu", SIZES, generator=generator)
    with pytest.raises(ValueError, match=r"\(n_0, width, n_out\)"):
        make_lazy_model("ntk", (6, 9, 9, 1), generator=generator)
    with pytest.raises(ValueError, match="positive int"):
        make_lazy_model("ntk", (6, 0, 1), generator=generator)
    with pytest.raises(TypeError, match="dtype"):
        make_lazy_model("ntk", SIZES, generator=generator, dtype=torch.int64)
    model = make_lazy_model("relu_features", SIZES, generator=generator)
    with pytest.raises(ValueError, match="7 features"):
        model.forward(torch.zeros(2, 7))


def test_lazy_chapter_executes(tmp_path):
    notebook = run_chapter(
        "lazy", tmp_path, n=8, k=3, digit_k=2, width=16, widths=[8, 32],
        ntk_width=16, ntk_points=24, num_train=300, num_test=200, epochs=2,
        laziness_epochs=2, batch_size=64,
    )
    errors = [o for cell in notebook.cells for o in cell.get("outputs", [])
              if o.get("output_type") == "error"]
    assert errors == []
    assert image_outputs(notebook)
    assert (tmp_path / "results" / "lazy" / "manifest.json").is_file()
