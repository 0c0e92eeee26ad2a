"""The training loop: history, divergence, ensembles, progress bar."""

import io
import logging

import numpy as np
import pytest
import torch

from conftest import TOLERANCES
from parity_learning.data import SparseParityTask
from parity_learning.experiments import fit_mlp
from parity_learning.models import MLP
from parity_learning.optim import make_optimizer
from parity_learning.rules import Backprop
from parity_learning.seeding import torch_generator
from parity_learning.train import train


def small_task(seed=0, dtype=torch.float32):
    return SparseParityTask(12, 2, 256, 128, seed, dtype=dtype)


def test_history_has_every_metric_per_epoch():
    _, history = fit_mlp(small_task(), hidden=(8,), epochs=4, batch_size=32, seed=0,
                         optimizer_options=dict(lr=0.1))
    for name in ("train_loss", "train_accuracy", "test_loss", "test_accuracy",
                 "test_uniform_accuracy", "test_structured_accuracy"):
        assert history.array(name).shape == (5,), name
    frame = history.to_frame()
    assert set(frame.columns) == {"epoch", "member", "metric", "value"}
    assert not history.diverged
    assert history.status() == "trained"


def test_bp_learns_easy_sparse_parity():
    _, history = fit_mlp(small_task(), hidden=(32,), epochs=15, batch_size=16, seed=0,
                         optimizer_options=dict(lr=0.2, momentum=0.9))
    assert history.final("test_accuracy") > 0.95
    assert history.array("train_loss")[-1] < history.array("train_loss")[0]


def test_divergence_is_recorded_not_raised(caplog):
    with caplog.at_level(logging.WARNING, logger="parity_learning.train"):
        _, history = fit_mlp(small_task(), hidden=(16,), epochs=5, batch_size=32, seed=0,
                             optimizer_options=dict(lr=1e3, momentum=0.9))
    assert history.diverged
    step = int(history.diverged_step)
    assert 1 <= step <= 5 * 8
    assert np.isnan(history.final("test_accuracy"))
    assert "diverged at step" in caplog.text
    assert history.status() == f"diverged at step {step}"


def test_ensemble_with_tasks_per_member_matches_separate_runs():
    seeds = [0, 1, 2]
    dtype = torch.float64
    tasks = [small_task(s, dtype) for s in seeds]
    models = [MLP((12, 8, 1), "tanh", generator=torch_generator(s, "init"), dtype=dtype)
              for s in seeds]
    ensemble = MLP.stack(models)
    optimizer = make_optimizer("sgd", ensemble.parameters(), lr=0.1, momentum=0.9)
    together = train(ensemble, Backprop(), optimizer, tasks, epochs=3, batch_size=32,
                     seed=seeds)
    with pytest.raises(ValueError, match=r"ensemble shape \(3,\)"):
        together.status()
    for index, (task, model, seed) in enumerate(zip(tasks, models, seeds)):
        optimizer = make_optimizer("sgd", model.parameters(), lr=0.1, momentum=0.9)
        alone = train(model, Backprop(), optimizer, task, epochs=3, batch_size=32, seed=seed)
        for name in alone.values:
            np.testing.assert_allclose(together.array(name)[:, index], alone.array(name),
                                       rtol=TOLERANCES[dtype]["rtol"])
        for a, b in zip(ensemble.member(index).parameters(), model.parameters()):
            torch.testing.assert_close(a, b, **TOLERANCES[dtype])


def test_progress_bar_quiet_when_not_a_terminal(capsys):
    fit_mlp(small_task(), hidden=(4,), epochs=2, batch_size=64, seed=0)
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out == ""


def test_progress_bar_forced_on(capsys):
    fit_mlp(small_task(), hidden=(4,), epochs=2, batch_size=64, seed=0, progress=True)
    assert "bp/sgd on sparse parity (n=12, k=2)" in capsys.readouterr().err


@pytest.mark.parametrize("field, value", [("epochs", 0), ("batch_size", -1), ("epochs", 1.5)])
def test_invalid_loop_settings(field, value):
    settings = dict(epochs=1, batch_size=8)
    settings[field] = value
    model = MLP((12, 4, 1), generator=torch_generator(0, "init"))
    with pytest.raises(ValueError, match=f"{field} must be a positive integer"):
        train(model, Backprop(), make_optimizer("sgd", model.parameters()), small_task(),
              seed=0, **settings)


def test_float32_and_float64_runs_agree():
    from conftest import CROSS_DTYPE

    final = {}
    for dtype in (torch.float32, torch.float64):
        task = small_task(0, dtype)
        model = MLP((12, 16, 1), "tanh", generator=torch_generator(0, "init"),
                    dtype=torch.float64)
        model.weights = [W.to(dtype) for W in model.weights]
        model.biases = [b.to(dtype) for b in model.biases]
        optimizer = make_optimizer("sgd", model.parameters(), lr=0.05, momentum=0.9)
        history = train(model, Backprop(), optimizer, task, epochs=3, batch_size=32, seed=0)
        final[dtype] = (model.parameters(), history)
    for a, b in zip(final[torch.float32][0], final[torch.float64][0]):
        torch.testing.assert_close(a.double(), b, **CROSS_DTYPE)
    np.testing.assert_allclose(final[torch.float32][1].array("train_loss"),
                               final[torch.float64][1].array("train_loss"),
                               rtol=CROSS_DTYPE["rtol"])
