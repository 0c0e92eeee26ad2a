"""The method registry: every method builds, batches and trains like single runs."""

import numpy as np
import pytest
import torch

from conftest import TOLERANCES
from parity_learning import lazy, rules
from parity_learning.methods import METHODS, build_method, get_method
from parity_learning.models import MLP
from parity_learning.optim import OPTIMIZERS
from parity_learning.sweep import RunConfig, run_group

EXPECTED = {"bp", "fa", "dfa", "ntk", "ntk_galu", "gaussian_features", "relu_features",
            "linear_features", "fourier_features"}
TINY = dict(n=8, k=3, num_train=96, num_validation=48, num_test=48, width=8, epochs=2,
            batch_size=32, dtype="float64")


def depth_for(name):
    return get_method(name).min_hidden_layers


def sizes_for(name):
    return (8, *[6] * depth_for(name), 1)


def test_registry_holds_every_method():
    assert set(METHODS) == EXPECTED


def test_get_method_rejects_unknown_name():
    with pytest.raises(ValueError, match="'sgd'"):
        get_method("sgd")


@pytest.mark.parametrize(
    "name, rule_class, model_class",
    [("bp", rules.Backprop, MLP), ("fa", rules.FeedbackAlignment, MLP),
     ("dfa", rules.DirectFeedbackAlignment, MLP), ("ntk", rules.Backprop, lazy.GatedNetwork),
     ("ntk_galu", rules.Backprop, lazy.GatedNetwork),
     ("fourier_features", rules.Backprop, lazy.RandomFeatures)],
)
def test_build_method_pairs_model_and_rule(name, rule_class, model_class):
    model, rule = build_method(name, sizes_for(name), 0)
    assert type(rule) is rule_class
    assert type(model) is model_class


@pytest.mark.parametrize("name", sorted(EXPECTED - {"bp", "fa", "dfa"}))
def test_lazy_methods_build_named_model(name):
    model, _ = build_method(name, sizes_for(name), 0)
    assert model.name == name


def test_fa_needs_two_hidden_layers():
    with pytest.raises(ValueError, match="'fa' needs >= 2 hidden layers"):
        build_method("fa", (8, 6, 1), 0)


def test_lazy_method_rejects_deep_sizes():
    with pytest.raises(ValueError, match="'ntk' needs 1..1 hidden layers"):
        build_method("ntk", (8, 6, 6, 1), 0)


def test_build_method_rejects_empty_ensemble():
    with pytest.raises(ValueError, match="at least one seed"):
        build_method("bp", (8, 6, 1), [])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_ensemble_members_start_as_single_runs(name):
    seeds = [3, 4, 5]
    ensemble, ensemble_rule = build_method(name, sizes_for(name), seeds, dtype=torch.float64)
    assert ensemble.ensemble_shape == (3,)
    for index, seed in enumerate(seeds):
        single, single_rule = build_method(name, sizes_for(name), seed, dtype=torch.float64)
        member = ensemble.member(index)
        for a, b in zip(member.parameters() + member.frozen_tensors(),
                        single.parameters() + single.frozen_tensors()):
            assert torch.equal(a, b)
        for a, b in zip(getattr(ensemble_rule, "feedback", []),
                        getattr(single_rule, "feedback", [])):
            assert torch.equal(a[index], b)


@pytest.mark.parametrize("name", ["fa", "dfa"])
def test_feedback_differs_between_seeds(name):
    _, first = build_method(name, sizes_for(name), 0)
    _, second = build_method(name, sizes_for(name), 1)
    assert not torch.equal(first.feedback[0], second.feedback[0])


def test_feedback_leaves_initial_weights_alone():
    bp_model, _ = build_method("bp", (8, 6, 1), 2)
    dfa_model, _ = build_method("dfa", (8, 6, 1), 2)
    for a, b in zip(bp_model.parameters(), dfa_model.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_batched_training_matches_separate_runs(name, optimizer):
    configs = [RunConfig(method=name, optimizer=optimizer, lr=0.05,
                         hidden_layers=depth_for(name), seed=s, **TINY) for s in range(2)]
    batched = run_group(configs)
    for config, member in zip(configs, batched):
        (single,) = run_group([config])
        assert not member.diverged
        for metric in single.history.values:
            np.testing.assert_allclose(member.history.array(metric),
                                       single.history.array(metric),
                                       **TOLERANCES[torch.float64], err_msg=metric)
