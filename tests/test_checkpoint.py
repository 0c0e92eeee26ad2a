"""Checkpoints: save, load and continue equals a run that never stopped."""

import pytest
import torch

from parity_learning.checkpoint import FORMAT, load_checkpoint, save_checkpoint
from parity_learning.data import SparseParityTask
from parity_learning.losses import bce_with_logits
from parity_learning.models import MLP
from parity_learning.optim import OPTIMIZERS, make_optimizer
from parity_learning.rules import RULES, make_rule
from parity_learning.seeding import torch_generator

#: Step sizes that make every optimizer move the weights visibly in 12 steps.
LEARNING_RATES = {"sgd": 0.5, "momentum": 0.1, "nesterov": 0.1, "adagrad": 0.05,
                  "adadelta": 1.0, "rmsprop": 0.01, "adam": 0.01}
BATCH_SIZE = 32


def small_task(dtype=torch.float64):
    return SparseParityTask(10, 2, 256, 64, 0, dtype=dtype)


def build_run(rule_name, optimizer_name, init_seed=0, ensemble=None, dtype=torch.float64):
    """Return (model, rule, optimizer, batch generator) of a fresh run."""
    init = torch_generator(init_seed, "init")
    if ensemble is None:
        model = MLP((10, 16, 1), generator=init, dtype=dtype)
    else:
        model = MLP.stack([MLP((10, 16, 1), generator=init, dtype=dtype)
                           for _ in range(ensemble)])
    options = {} if rule_name == "bp" else {"generator": torch_generator(init_seed, "feedback")}
    rule = make_rule(rule_name, model, **options)
    optimizer = make_optimizer(optimizer_name, model.parameters(),
                               lr=LEARNING_RATES[optimizer_name])
    return model, rule, optimizer, torch_generator(init_seed, "batch-order")


def train_steps(model, rule, optimizer, task, generator, steps):
    """Run ``steps`` mini-batch steps of forward, rule, optimizer."""
    X, y = task.training_set(1)
    for _ in range(steps):
        index = torch.randint(X.shape[0], (BATCH_SIZE,), generator=generator)
        cache = model.forward(X[index])
        _, dlogits = bce_with_logits(cache.logits, y[index])
        optimizer.step(rule.gradients(model, cache, dlogits))


def assert_same_run(model, optimizer, reference_model, reference_optimizer):
    for index, (mine, theirs) in enumerate(zip(model.parameters(),
                                               reference_model.parameters())):
        assert torch.equal(mine, theirs), f"parameter {index}"
    for index, (mine, theirs) in enumerate(zip(optimizer.state, reference_optimizer.state)):
        assert mine.keys() == theirs.keys(), f"state keys of parameter {index}"
        for key in mine:
            same = (torch.equal(mine[key], theirs[key]) if isinstance(mine[key], torch.Tensor)
                    else mine[key] == theirs[key])
            assert same, f"state {key!r} of parameter {index}"


RULE_CASES = ["bp", pytest.param("dfa", marks=pytest.mark.skipif(
    "dfa" not in RULES, reason="the DFA rule is not in rules.RULES"))]


@pytest.mark.parametrize("rule_name", RULE_CASES)
@pytest.mark.parametrize("optimizer_name", sorted(OPTIMIZERS))
def test_resumed_run_equals_uninterrupted(tmp_path, rule_name, optimizer_name):
    task = small_task()
    reference = build_run(rule_name, optimizer_name)
    train_steps(*reference[:3], task, reference[3], steps=12)

    model, rule, optimizer, batches = build_run(rule_name, optimizer_name)
    train_steps(model, rule, optimizer, task, batches, steps=5)
    feedback = getattr(rule, "feedback", [])
    path = save_checkpoint(tmp_path / "run.pt", model, optimizer,
                           generators={"batch-order": batches},
                           tensors={"feedback": feedback}, metadata={"step": 5})

    # A fresh process would rebuild everything: here from another seed, so
    # only what the checkpoint restores can make the runs agree.
    model, rule, optimizer, batches = build_run(rule_name, optimizer_name, init_seed=7)
    metadata = load_checkpoint(path, model, optimizer, generators={"batch-order": batches},
                               tensors={"feedback": getattr(rule, "feedback", [])})
    assert metadata == {"step": 5}
    train_steps(model, rule, optimizer, task, batches, steps=7)
    assert_same_run(model, optimizer, reference[0], reference[2])


def test_resumed_ensemble_equals_uninterrupted(tmp_path):
    task = small_task(torch.float32)
    reference = build_run("bp", "adam", ensemble=3, dtype=torch.float32)
    train_steps(*reference[:3], task, reference[3], steps=8)

    model, rule, optimizer, batches = build_run("bp", "adam", ensemble=3, dtype=torch.float32)
    train_steps(model, rule, optimizer, task, batches, steps=3)
    save_checkpoint(tmp_path / "ensemble.pt", model, optimizer,
                    generators={"batch-order": batches})
    model, rule, optimizer, batches = build_run("bp", "adam", 9, ensemble=3,
                                                dtype=torch.float32)
    load_checkpoint(tmp_path / "ensemble.pt", model, optimizer,
                    generators={"batch-order": batches})
    train_steps(model, rule, optimizer, task, batches, steps=5)
    assert_same_run(model, optimizer, reference[0], reference[2])


def test_lazy_model_restores_frozen_tensors(tmp_path):
    lazy = pytest.importorskip("parity_learning.lazy")
    saved = lazy.make_lazy_model("ntk", (10, 8, 1), generator=torch_generator(0, "init"))
    save_checkpoint(tmp_path / "ntk.pt", saved)
    loaded = lazy.make_lazy_model("ntk", (10, 8, 1), generator=torch_generator(1, "init"))
    assert not torch.equal(loaded.frozen_tensors()[0], saved.frozen_tensors()[0])
    load_checkpoint(tmp_path / "ntk.pt", loaded)
    for index, (mine, theirs) in enumerate(zip(loaded.frozen_tensors(),
                                               saved.frozen_tensors())):
        assert torch.equal(mine, theirs), f"frozen tensor {index}"
    for index, (mine, theirs) in enumerate(zip(loaded.parameters(), saved.parameters())):
        assert torch.equal(mine, theirs), f"parameter {index}"


def test_load_keeps_optimizer_bound_to_model(tmp_path):
    model, _, optimizer, _ = build_run("bp", "sgd")
    save_checkpoint(tmp_path / "run.pt", model, optimizer)
    other, _, other_optimizer, _ = build_run("bp", "sgd", init_seed=3)
    load_checkpoint(tmp_path / "run.pt", other, other_optimizer)
    for index, (param, tensor) in enumerate(zip(other_optimizer.params, other.parameters())):
        assert param is tensor, f"parameter {index}"


def test_mismatched_model_raises_and_changes_nothing(tmp_path):
    model, _, optimizer, _ = build_run("bp", "adam")
    save_checkpoint(tmp_path / "run.pt", model, optimizer)
    wider = MLP((10, 32, 1), generator=torch_generator(1, "init"), dtype=torch.float64)
    before = [t.clone() for t in wider.parameters()]
    with pytest.raises(ValueError, match=r"tensor 0 of model parameters.*\(16, 10\)"):
        load_checkpoint(tmp_path / "run.pt", wider)
    for index, (now, then) in enumerate(zip(wider.parameters(), before)):
        assert torch.equal(now, then), f"parameter {index} changed"


def test_mismatched_optimizer_raises_and_changes_nothing(tmp_path):
    model, _, optimizer, _ = build_run("bp", "adam")
    save_checkpoint(tmp_path / "run.pt", model, optimizer)
    other, _, rmsprop, _ = build_run("bp", "rmsprop", init_seed=2)
    before = [t.clone() for t in other.parameters()]
    with pytest.raises(ValueError, match="state_dict is of optimizer 'adam'"):
        load_checkpoint(tmp_path / "run.pt", other, rmsprop)
    for index, (now, then) in enumerate(zip(other.parameters(), before)):
        assert torch.equal(now, then), f"parameter {index} changed"


def test_wrong_dtype_raises(tmp_path):
    model, _, _, _ = build_run("bp", "sgd")
    save_checkpoint(tmp_path / "run.pt", model)
    single = MLP((10, 16, 1), generator=torch_generator(0, "init"), dtype=torch.float32)
    with pytest.raises(ValueError, match="dtype torch.float64.*dtype torch.float32"):
        load_checkpoint(tmp_path / "run.pt", single)


def test_missing_parts_raise(tmp_path):
    model, _, optimizer, batches = build_run("bp", "sgd")
    save_checkpoint(tmp_path / "run.pt", model)
    with pytest.raises(ValueError, match="has no optimizer state"):
        load_checkpoint(tmp_path / "run.pt", model, optimizer)
    with pytest.raises(ValueError, match=r"has no generator \['batch-order'\]"):
        load_checkpoint(tmp_path / "run.pt", model, generators={"batch-order": batches})
    with pytest.raises(ValueError, match=r"has no tensor group \['feedback'\]"):
        load_checkpoint(tmp_path / "run.pt", model, tensors={"feedback": []})
    with pytest.raises(FileNotFoundError, match="absent.pt not found"):
        load_checkpoint(tmp_path / "absent.pt", model)


def test_foreign_file_raises(tmp_path):
    model, _, _, _ = build_run("bp", "sgd")
    torch.save({"weights": model.parameters()}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="is not a checkpoint of format"):
        load_checkpoint(tmp_path / "foreign.pt", model)
    assert FORMAT["version"] == 1


def test_save_replaces_old_checkpoint_whole(tmp_path):
    model, _, optimizer, _ = build_run("bp", "sgd")
    path = save_checkpoint(tmp_path / "nested" / "run.pt", model, metadata={"step": 1})
    save_checkpoint(path, model, optimizer, metadata={"step": 2})
    assert load_checkpoint(path, model, optimizer) == {"step": 2}
    assert sorted(p.name for p in path.parent.iterdir()) == ["run.pt"]
