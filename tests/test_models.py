"""Hand-written backpropagation against torch.autograd, in float64."""

import itertools

import pytest
import torch

from conftest import TOLERANCES
from parity_learning.losses import bce_with_logits, hinge
from parity_learning.models import MLP
from parity_learning.seeding import torch_generator

F64 = TOLERANCES[torch.float64]
ARCHITECTURES = [(5, 1), (7, 3, 1), (6, 9, 4, 1), (4, 8, 8, 8, 1), (3, 2, 5, 2, 3, 1)]
ACTIVATIONS = ["relu", "tanh", "sigmoid", "linear"]
LOSSES = {"bce": bce_with_logits, "hinge": hinge}


def autograd_loss(model, X, y, loss_name):
    """The same network and loss, written with torch.nn.functional and autograd."""
    params = [p.clone().requires_grad_(True) for p in model.parameters()]
    h = X
    for layer in range(model.num_layers):
        W, b = params[2 * layer], params[2 * layer + 1]
        a = torch.nn.functional.linear(h, W, b)
        if layer < model.num_layers - 1:
            h = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
                 "linear": lambda t: t}[model.activation](a)
    z = a[..., 0]
    if loss_name == "bce":
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z, (y + 1) / 2)
    else:
        loss = torch.clamp(1 - y * z, min=0).mean()
    return loss, torch.autograd.grad(loss, params)


def random_batch(sizes, seed, count=11):
    generator = torch_generator(seed, "test-batch")
    X = torch.randn(count, sizes[0], generator=generator, dtype=torch.float64)
    y = torch.randint(0, 2, (count,), generator=generator).double() * 2 - 1
    return X, y


@pytest.mark.parametrize(
    "sizes, activation, loss_name",
    list(itertools.product(ARCHITECTURES, ACTIVATIONS, LOSSES)),
)
def test_backward_matches_autograd(sizes, activation, loss_name):
    model = MLP(sizes, activation, generator=torch_generator(1, "init"), dtype=torch.float64)
    X, y = random_batch(sizes, seed=2)
    cache = model.forward(X)
    loss, dlogits = LOSSES[loss_name](cache.logits, y)
    expected_loss, expected_grads = autograd_loss(model, X, y, loss_name)

    torch.testing.assert_close(loss, expected_loss.detach(), **F64)
    grads = model.backward(cache, dlogits)
    assert len(grads) == len(expected_grads)
    for grad, expected in zip(grads, expected_grads):
        assert grad.shape == expected.shape
        torch.testing.assert_close(grad, expected, **F64)


def test_ensemble_members_match_separate_models():
    sizes = (6, 9, 4, 1)
    models = [MLP(sizes, "tanh", generator=torch_generator(s, "init"), dtype=torch.float64)
              for s in range(3)]
    ensemble = MLP.stack(models)
    X, y = random_batch(sizes, seed=5)
    cache = ensemble.forward(X)
    assert cache.logits.shape == (3, X.shape[0])
    _, dlogits = bce_with_logits(cache.logits, y)
    grads = ensemble.backward(cache, dlogits)
    for index, model in enumerate(models):
        single = model.forward(X)
        _, single_dlogits = bce_with_logits(single.logits, y)
        for grad, expected in zip(grads, model.backward(single, single_dlogits)):
            torch.testing.assert_close(grad[index], expected, **F64)


def test_member_returns_views_of_the_ensemble():
    models = [MLP((3, 4, 1), generator=torch_generator(s, "init")) for s in range(2)]
    ensemble = MLP.stack(models)
    member = ensemble.member(1)
    assert torch.equal(member.weights[0], models[1].weights[0])
    member.weights[0].add_(1.0)
    assert torch.equal(ensemble.weights[0][1], member.weights[0])


def test_default_init_has_pytorch_bounds():
    model = MLP((100, 50, 1), generator=torch_generator(0, "init"), dtype=torch.float64)
    W1, b1 = model.weights[0], model.biases[0]
    assert W1.abs().max() <= 0.1
    assert W1.abs().max() > 0.09  # 5000 draws fill the interval
    assert b1.abs().max() <= 0.1


@pytest.mark.parametrize(
    "sizes, activation, init, message",
    [
        ((5,), "relu", "uniform", "sizes needs an input and an output"),
        ((5, 0, 1), "relu", "uniform", "positive int"),
        ((5, 2.5, 1), "relu", "uniform", "positive int"),
        ((5, 3, 1), "gelu", "uniform", "activation must be one of"),
        ((5, 3, 1), "relu", "xavier", "init must be one of"),
    ],
)
def test_invalid_architecture_raises(sizes, activation, init, message):
    with pytest.raises(ValueError, match=message):
        MLP(sizes, activation, generator=torch_generator(0, "init"), init=init)


def test_wrong_input_width_raises():
    model = MLP((5, 3, 1), generator=torch_generator(0, "init"))
    with pytest.raises(ValueError, match="input has 4 features, the network expects 5"):
        model.forward(torch.zeros(2, 4))
