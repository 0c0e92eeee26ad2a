"""Learning rules: BP against autograd, FA and DFA against BP where they coincide."""

import math

import pytest
import torch

from conftest import TOLERANCES
from parity_learning.data import DigitParityTask, load_digits
from parity_learning.experiments import fit_mlp
from parity_learning.losses import bce_with_logits
from parity_learning.models import ACTIVATIONS, MLP
from parity_learning.rules import (
    RULES,
    Backprop,
    DirectFeedbackAlignment,
    FeedbackAlignment,
    angle_degrees,
    check_gradients,
    make_rule,
)
from parity_learning.seeding import torch_generator

F64 = torch.float64
EXACT = {"rtol": 1e-12, "atol": 0.0}


def make_model(sizes, activation="tanh", seed=0, dtype=F64):
    return MLP(sizes, activation, generator=torch_generator(seed, "init"), dtype=dtype)


def make_batch(sizes, count=12, seed=0, dtype=F64):
    generator = torch_generator(seed, "test-batch")
    X = torch.randn(count, sizes[0], generator=generator, dtype=dtype)
    y = torch.randint(0, 2, (count,), generator=generator).to(dtype) * 2 - 1
    return X, y


def step_inputs(model, X, y):
    cache = model.forward(X)
    _, dlogits = bce_with_logits(cache.logits, y)
    return cache, dlogits


def cosine(u, v):
    u, v = u.reshape(-1), v.reshape(-1)
    return float(u @ v / (u.norm() * v.norm()))


def test_registry_names():
    assert RULES["bp"] is Backprop
    assert RULES["fa"] is FeedbackAlignment
    assert RULES["dfa"] is DirectFeedbackAlignment


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_backprop_matches_autograd(activation):
    sizes = (7, 6, 5, 4, 1)
    model = make_model(sizes, activation)
    X, y = make_batch(sizes)
    cache, dlogits = step_inputs(model, X, y)
    grads = make_rule("bp").gradients(model, cache, dlogits)

    params = [p.clone().requires_grad_(True) for p in model.parameters()]
    model.weights, model.biases = params[0::2], params[1::2]
    loss, _ = bce_with_logits(model.forward(X).logits, y)
    expected = torch.autograd.grad(loss, params)
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want, **TOLERANCES[F64])


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_one_hidden_layer_fa_equals_dfa(activation):
    sizes = (9, 6, 1)
    model = make_model(sizes, activation)
    X, y = make_batch(sizes)
    cache, dlogits = step_inputs(model, X, y)
    fa = make_rule("fa", model, generator=torch_generator(3, "feedback"))
    dfa = make_rule("dfa", model, generator=torch_generator(3, "feedback"))
    torch.testing.assert_close(fa.feedback[0], dfa.feedback[0], **EXACT)
    for got, want in zip(fa.gradients(model, cache, dlogits), dfa.gradients(model, cache, dlogits)):
        torch.testing.assert_close(got, want, **EXACT)


@pytest.mark.parametrize("name", ["fa", "dfa"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_transposed_weights_give_backprop(name, activation):
    sizes = (9, 6, 1)
    model = make_model(sizes, activation)
    X, y = make_batch(sizes)
    cache, dlogits = step_inputs(model, X, y)
    rule = make_rule(name, model, feedback=[model.weights[1].mT.clone()])
    expected = make_rule("bp").gradients(model, cache, dlogits)
    for got, want in zip(rule.gradients(model, cache, dlogits), expected):
        torch.testing.assert_close(got, want, **EXACT)


def test_fa_with_all_transposes_is_backprop():
    sizes = (8, 7, 6, 5, 3)
    model = make_model(sizes, "relu")
    X, y = make_batch(sizes)
    cache = model.forward(X)
    dlogits = torch.randn(cache.logits.shape, generator=torch_generator(1, "e"), dtype=F64)
    feedback = [W.mT.clone() for W in model.weights[1:]]
    rule = make_rule("fa", model, feedback=feedback)
    expected = model.backward(cache, dlogits)
    for got, want in zip(rule.gradients(model, cache, dlogits), expected):
        torch.testing.assert_close(got, want, **EXACT)


@pytest.mark.parametrize("name", ["fa", "dfa"])
@pytest.mark.parametrize("sizes", [(10, 8, 6, 1), (10, 8, 7, 6, 1)])
def test_deep_rules_differ_from_backprop(name, sizes):
    model = make_model(sizes, "tanh")
    X, y = make_batch(sizes)
    cache, dlogits = step_inputs(model, X, y)
    rule = make_rule(name, model, generator=torch_generator(0, "feedback"))
    grads = rule.gradients(model, cache, dlogits)
    exact = model.backward(cache, dlogits)
    for layer in range(1, model.num_layers):
        assert cosine(grads[2 * (layer - 1)], exact[2 * (layer - 1)]) < 1 - 1e-6
    torch.testing.assert_close(grads[-2], exact[-2], **EXACT)
    torch.testing.assert_close(grads[-1], exact[-1], **EXACT)


def test_fa_and_dfa_differ_when_deep():
    sizes = (10, 8, 6, 1)
    model = make_model(sizes, "tanh")
    X, y = make_batch(sizes)
    cache, dlogits = step_inputs(model, X, y)
    fa = make_rule("fa", model, generator=torch_generator(0, "feedback"))
    dfa = make_rule("dfa", model, generator=torch_generator(0, "feedback"))
    assert cosine(fa.gradients(model, cache, dlogits)[0], dfa.gradients(model, cache, dlogits)[0]) < 1 - 1e-6


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_dfa_updates_every_hidden_layer(activation):
    sizes = (64, 50, 30, 1)
    model = make_model(sizes, activation)
    X, y = make_batch(sizes, count=32)
    cache, dlogits = step_inputs(model, X, y)
    rule = make_rule("dfa", model, generator=torch_generator(0, "feedback"))
    grads = rule.gradients(model, cache, dlogits)
    assert [tuple(B.shape) for B in rule.feedback] == [(50, 1), (30, 1)]
    for param, grad in zip(model.parameters(), grads):
        assert grad.shape == param.shape
    for layer in (1, 2):
        assert grads[2 * (layer - 1)].abs().max() > 0
        assert grads[2 * (layer - 1) + 1].abs().max() > 0


def test_dfa_hidden_delta_formula():
    sizes = (6, 5, 4, 3)
    model = make_model(sizes, "sigmoid")
    X, y = make_batch(sizes)
    cache = model.forward(X)
    e = torch.randn(cache.logits.shape, generator=torch_generator(2, "e"), dtype=F64)
    rule = make_rule("dfa", model, generator=torch_generator(0, "feedback"))
    grads = rule.gradients(model, cache, e)
    for layer in (1, 2):
        h = cache.activations[layer]
        delta = (e @ rule.feedback[layer - 1].mT) * h * (1 - h)
        torch.testing.assert_close(grads[2 * (layer - 1)], delta.mT @ cache.activations[layer - 1], **EXACT)


@pytest.mark.parametrize("name, good", [("fa", [(5, 4), (4, 3)]), ("dfa", [(5, 3), (4, 3)])])
def test_wrong_feedback_shape_names_shapes(name, good):
    sizes = (6, 5, 4, 3)
    model = make_model(sizes)
    feedback = [torch.zeros(shape, dtype=F64) for shape in good]
    make_rule(name, model, feedback=feedback)
    feedback[1] = torch.zeros(4, 2, dtype=F64)
    with pytest.raises(ValueError) as error:
        make_rule(name, model, feedback=feedback)
    assert "(4, 2)" in str(error.value)
    assert str(good[1]) in str(error.value)


def test_wrong_feedback_count_rejected():
    model = make_model((6, 5, 4, 3))
    with pytest.raises(ValueError, match="one feedback matrix per hidden layer"):
        make_rule("dfa", model, feedback=[torch.zeros(5, 3, dtype=F64)])


def test_feedback_options_validated():
    model = make_model((6, 5, 4, 1))
    generator = torch_generator(0, "feedback")
    with pytest.raises(ValueError, match="distribution"):
        make_rule("dfa", model, generator=generator, distribution="cauchy")
    with pytest.raises(ValueError, match="scale"):
        make_rule("dfa", model, generator=generator, scale=-1.0)
    with pytest.raises(TypeError, match="generator"):
        make_rule("dfa", model)
    with pytest.raises(ValueError, match="explicit feedback"):
        make_rule("dfa", model, feedback=[torch.zeros(5, 1), torch.zeros(4, 1)], scale=1.0)
    with pytest.raises(TypeError, match="MLP"):
        make_rule("fa", object(), generator=generator)


def test_default_feedback_is_uniform_in_bound():
    model = make_model((6, 300, 200, 4))
    fa = make_rule("fa", model, generator=torch_generator(0, "feedback"))
    dfa = make_rule("dfa", model, generator=torch_generator(0, "feedback"))
    for B in fa.feedback + dfa.feedback:
        bound = 1 / math.sqrt(B.shape[-1])
        assert B.abs().max() <= bound
        assert B.abs().max() > 0.95 * bound
        assert abs(float(B.mean())) < 0.05 * bound


def test_gaussian_feedback_scale():
    model = make_model((6, 400, 50))
    rule = make_rule("dfa", model, generator=torch_generator(0, "feedback"),
                     distribution="gaussian", scale=0.5)
    B = rule.feedback[0]
    assert abs(float(B.std()) - 0.5) < 0.02
    assert B.abs().max() > 0.5 * 2.5


def test_feedback_reproducible_and_seeded():
    model = make_model((6, 5, 4, 1))
    first = make_rule("dfa", model, generator=torch_generator(0, "feedback"))
    again = make_rule("dfa", model, generator=torch_generator(0, "feedback"))
    other = make_rule("dfa", model, generator=torch_generator(1, "feedback"))
    assert torch.equal(first.stacked_feedback, again.stacked_feedback)
    assert not torch.equal(first.stacked_feedback, other.stacked_feedback)


@pytest.mark.parametrize("name", ["fa", "dfa"])
def test_ensemble_matches_separate_members(name):
    sizes = (7, 6, 5, 2)
    seeds = [0, 1, 2]
    members = [make_model(sizes, "relu", seed=s) for s in seeds]
    ensemble = MLP.stack(members)
    generators = [torch_generator(s, "feedback") for s in seeds]
    ensemble_rule = make_rule(name, ensemble, generator=generators)
    X, _ = make_batch(sizes)
    cache = ensemble.forward(X)
    # An arbitrary output error (E, N, 2): BCE takes a single output unit.
    dlogits = torch.randn(cache.logits.shape, generator=torch_generator(0, "e"), dtype=F64)
    ensemble_grads = ensemble_rule.gradients(ensemble, cache, dlogits)
    ensemble_metrics = ensemble_rule.metrics(ensemble, cache, dlogits, ensemble_grads)
    for index, (model, seed) in enumerate(zip(members, seeds)):
        rule = make_rule(name, model, generator=torch_generator(seed, "feedback"))
        for B_member, B in zip(ensemble_rule.feedback, rule.feedback):
            torch.testing.assert_close(B_member[index], B, **EXACT)
        cache_m, dlogits_m = model.forward(X), dlogits[index]
        grads = rule.gradients(model, cache_m, dlogits_m)
        for got, want in zip(ensemble_grads, grads):
            torch.testing.assert_close(got[index], want, **TOLERANCES[F64])
        metrics = rule.metrics(model, cache_m, dlogits_m, grads)
        for key, value in metrics.items():
            torch.testing.assert_close(ensemble_metrics[key][index], value, **TOLERANCES[F64])


def test_ensemble_one_generator_draws_members_in_turn():
    sizes = (7, 6, 5, 1)
    ensemble = MLP.stack([make_model(sizes, seed=s) for s in range(3)])
    rule = make_rule("dfa", ensemble, generator=torch_generator(0, "feedback"))
    single = make_rule("dfa", make_model(sizes), generator=torch_generator(0, "feedback"))
    assert rule.stacked_feedback.shape == (3, 11, 1)
    torch.testing.assert_close(rule.stacked_feedback[0], single.stacked_feedback, **EXACT)
    assert not torch.equal(rule.stacked_feedback[0], rule.stacked_feedback[1])


def test_ensemble_generator_count_checked():
    ensemble = MLP.stack([make_model((5, 4, 1), seed=s) for s in range(3)])
    with pytest.raises(ValueError, match="one per ensemble member"):
        make_rule("dfa", ensemble, generator=[torch_generator(0, "feedback")] * 2)


def test_angle_degrees_values():
    u = torch.tensor([[1.0, 0.0]])
    assert float(angle_degrees(u, u)) == pytest.approx(0.0, abs=1e-6)
    assert float(angle_degrees(u, torch.tensor([[0.0, 2.0]]))) == pytest.approx(90.0)
    assert float(angle_degrees(u, -u)) == pytest.approx(180.0)
    assert math.isnan(float(angle_degrees(u, torch.zeros(1, 2))))
    batched = angle_degrees(torch.ones(3, 2, 2), torch.ones(3, 2, 2))
    assert batched.shape == (3,)


def test_metrics_zero_when_feedback_is_transpose():
    sizes = (9, 6, 1)
    model = make_model(sizes)
    X, y = make_batch(sizes)
    cache, dlogits = step_inputs(model, X, y)
    rule = make_rule("dfa", model, feedback=[model.weights[1].mT.clone()])
    metrics = rule.metrics(model, cache, dlogits, rule.gradients(model, cache, dlogits))
    assert set(metrics) == {"angle_update_layer1", "angle_feedback_layer1"}
    assert float(metrics["angle_update_layer1"]) == pytest.approx(0.0, abs=1e-5)
    assert float(metrics["angle_feedback_layer1"]) == pytest.approx(0.0, abs=1e-5)


def test_dfa_feedback_angle_uses_weight_product():
    sizes = (6, 5, 4, 3)
    model = make_model(sizes)
    product = model.weights[1].mT @ model.weights[2].mT  # (5, 3)
    rule = make_rule("dfa", model, feedback=[product.clone(), model.weights[2].mT.clone()])
    X, y = make_batch(sizes)
    cache = model.forward(X)
    e = torch.randn(cache.logits.shape, generator=torch_generator(2, "e"), dtype=F64)
    metrics = rule.metrics(model, cache, e, rule.gradients(model, cache, e))
    assert float(metrics["angle_feedback_layer1"]) == pytest.approx(0.0, abs=1e-5)
    assert float(metrics["angle_feedback_layer2"]) == pytest.approx(0.0, abs=1e-5)
    assert float(metrics["angle_update_layer2"]) == pytest.approx(0.0, abs=1e-5)


def test_backprop_has_no_metrics():
    model = make_model((5, 4, 1))
    X, y = make_batch((5, 4, 1))
    cache, dlogits = step_inputs(model, X, y)
    rule = make_rule("bp")
    assert rule.metrics(model, cache, dlogits, rule.gradients(model, cache, dlogits)) == {}


def test_check_gradients_small_errors():
    sizes = (5, 4, 3, 1)
    model = make_model(sizes, "tanh", dtype=torch.float32)
    X, y = make_batch(sizes, dtype=torch.float32)
    table = check_gradients(model, X, y)
    assert list(table["parameter"]) == ["W_1", "b_1", "W_2", "b_2", "W_3", "b_3"]
    assert (table["max |manual - autograd|"] < 1e-12).all()
    assert (table["max |manual - finite difference|"] < 1e-7).all()
    assert list(table["entries checked by finite differences"]) == [20, 4, 12, 3, 3, 1]


def test_check_gradients_sampled_entries():
    sizes = (5, 4, 1)
    model = make_model(sizes)
    X, y = make_batch(sizes)
    table = check_gradients(model, X, y, entries=3, generator=torch_generator(0, "fd"))
    assert list(table["entries checked by finite differences"]) == [3, 3, 3, 1]


def test_trained_dfa_aligns_first_layer():
    digits = load_digits("sklearn")
    task = DigitParityTask(digits, 1, 1000, 300, seed=0)
    _, history = fit_mlp(
        task, hidden=(32, 32), activation="tanh", rule="dfa",
        optimizer="sgd", optimizer_options=dict(lr=0.05, momentum=0.9),
        epochs=8, batch_size=50, seed=0, progress=False,
    )
    angles = history.array("angle_update_layer1")
    assert angles.shape == (8,)
    assert history.final("test_accuracy") > 0.7
    assert angles.mean() < 90.0
    assert history.array("angle_feedback_layer2").shape == (8,)


def test_train_records_metrics_before_step():
    # With B_1 = W_2^T at the start, the first (and only) step of DFA is the BP
    # step, so its recorded angle is 0 only if measured before the update.
    from parity_learning.data import SparseParityTask
    from parity_learning.optim import make_optimizer
    from parity_learning.train import train

    task = SparseParityTask(6, 3, 64, 32, seed=0, dtype=F64)
    model = make_model((6, 8, 1), "tanh")
    rule = make_rule("dfa", model, feedback=[model.weights[1].mT.clone()])
    optimizer = make_optimizer("sgd", model.parameters(), lr=1.0)
    history = train(model, rule, optimizer, task, epochs=1, batch_size=64, seed=0,
                    progress=False)
    assert history.array("angle_update_layer1")[0] == pytest.approx(0.0, abs=1e-5)
    assert history.array("angle_feedback_layer1")[0] == pytest.approx(0.0, abs=1e-5)


def test_step_timing_table_layout():
    # Structure only: timings are machine-dependent and never asserted.
    from parity_learning.benchmarks import compare_step_times

    table = compare_step_times(("bp", "fa", "dfa"), depths=(1, 2), width=8,
                               batch_size=4, repeats=2, warmup=1)
    assert list(table["hidden layers"]) == [1, 2]
    assert {"bp_ms", "fa_ms", "dfa_ms", "fa/bp", "dfa/bp"} <= set(table.columns)
    assert (table["dfa_ms"] > 0).all()
    with pytest.raises(ValueError, match="baseline"):
        compare_step_times(("dfa",), depths=(1,), width=8, batch_size=4, repeats=1)
