"""Every public entry point rejects invalid input with a message naming it.

One table of bad inputs across the sampler, the tasks, the model, the rules,
the optimizers, the training loop, the sweep config and runner, and the
profile files. Each case names the exception type and the whole message,
which states the field, the value and what is valid; {tmp} and {root} stand
for the test's temporary folder and the repository root. The command
lines log the same messages and exit with status 1; test_sweep.py and
test_book.py test them.
"""

import pytest
import torch

from conftest import ROOT

from parity_learning import book, sweep
from parity_learning.data import (
    SparseParityTask,
    digit_parity_tuples,
    load_digits,
    sample_sparse_parity,
)
from parity_learning.models import MLP
from parity_learning.optim import make_optimizer
from parity_learning.rules import make_rule
from parity_learning.seeding import torch_generator
from parity_learning.train import train


def generator():
    return torch_generator(0, "validation")


def mlp(sizes=(4, 3, 1)):
    return MLP(sizes, generator=generator())


def parameters():
    return [torch.zeros(3)]


def sparse_task():
    return SparseParityTask(4, 2, 16, 8, seed=0)


def write_profile(tmp_path, text):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    return path


CASES = {
    # sampler and data
    "sampler k > n": (
        lambda tmp: sample_sparse_parity(3, 4, 10, generator()),
        ValueError,
        "k must be in [1, n=3], got k=4",
    ),
    "sampler k < 1": (
        lambda tmp: sample_sparse_parity(3, 0, 10, generator()),
        ValueError,
        "k must be in [1, n=3], got k=0",
    ),
    "sampler n = 0": (
        lambda tmp: sample_sparse_parity(0, 1, 10, generator()),
        ValueError,
        "n must be a positive integer, got 0",
    ),
    "sampler no samples": (
        lambda tmp: sample_sparse_parity(5, 2, 0, generator()),
        ValueError,
        "num_samples must be a positive integer, got 0",
    ),
    "sampler fraction > 1": (
        lambda tmp: sample_sparse_parity(
            5, 2, 10, generator(), structured_fraction=1.5
        ),
        ValueError,
        "structured_fraction must be in [0, 1], got 1.5",
    ),
    "sampler subset out of range": (
        lambda tmp: sample_sparse_parity(5, 2, 10, generator(), subset=(0, 7)),
        ValueError,
        "subset indices must lie in [0, n=5), got (0, 7)",
    ),
    "sampler subset wrong size": (
        lambda tmp: sample_sparse_parity(5, 2, 10, generator(), subset=(0, 1, 2)),
        ValueError,
        "subset must hold k=2 distinct indices, got (0, 1, 2)",
    ),
    "task negative seed": (
        lambda tmp: SparseParityTask(4, 2, 16, 8, seed=-1),
        ValueError,
        "seed must be a non-negative integer, got -1",
    ),
    "unknown digit source": (
        lambda tmp: load_digits("kmnist"),
        ValueError,
        (
            "unknown digit source 'kmnist': use one of ('sklearn', "
            "'fashion-mnist') or the path of a directory of MNIST-format "
            "IDX files"
        ),
    ),
    "empty IDX directory": (
        lambda tmp: load_digits(tmp),
        FileNotFoundError,
        (
            "no 'train-images*' IDX file in digit directory {tmp}; "
            "expected the four MNIST-format files "
            "train-images-idx?-ubyte[.gz], train-labels-idx?-ubyte[.gz], "
            "t10k-images-idx?-ubyte[.gz], t10k-labels-idx?-ubyte[.gz]"
        ),
    ),
    "digit tuples k = 0": (
        lambda tmp: digit_parity_tuples(
            torch.zeros(4, 2, 2), torch.arange(4), 0, 3, generator()
        ),
        ValueError,
        "k must be a positive integer, got 0",
    ),
    # model and rules
    "model one width": (
        lambda tmp: MLP((4,), generator=generator()),
        ValueError,
        "sizes needs an input and an output width, got (4,)",
    ),
    "model zero width": (
        lambda tmp: MLP((4, 0, 1), generator=generator()),
        ValueError,
        "every width in sizes must be a positive int, got (4, 0, 1)",
    ),
    "model unknown activation": (
        lambda tmp: MLP((4, 3, 1), "swish", generator=generator()),
        ValueError,
        (
            "activation must be one of ('relu', 'tanh', 'sigmoid', "
            "'linear'), got 'swish'"
        ),
    ),
    "model unknown init": (
        lambda tmp: MLP((4, 3, 1), init="xavier", generator=generator()),
        ValueError,
        "init must be one of ('uniform', 'gaussian'), got 'xavier'",
    ),
    "unknown rule": (
        lambda tmp: make_rule("hebb", mlp()),
        ValueError,
        "learning rule must be one of ['bp', 'dfa', 'fa'], got 'hebb'",
    ),
    "bp with options": (
        lambda tmp: make_rule("bp", scale=2.0),
        ValueError,
        "rule 'bp' takes no options, got ['scale']",
    ),
    "dfa unknown distribution": (
        lambda tmp: make_rule(
            "dfa", mlp(), generator=generator(), distribution="cauchy"
        ),
        ValueError,
        ("distribution must be one of ('uniform', 'gaussian'), got 'cauchy'"),
    ),
    "dfa non-positive scale": (
        lambda tmp: make_rule("dfa", mlp(), generator=generator(), scale=0.0),
        ValueError,
        "scale must be a positive finite number, got 0.0",
    ),
    "dfa feedback wrong shape": (
        lambda tmp: make_rule("dfa", mlp(), feedback=[torch.zeros(2, 2)]),
        ValueError,
        ("feedback matrix B_1 has shape (2, 2), expected (3, 1) for sizes (4, 3, 1)"),
    ),
    "rule on a non-MLP": (
        lambda tmp: make_rule("fa", object(), generator=generator()),
        TypeError,
        "rule 'fa' needs a parity_learning.models.MLP, got object",
    ),
    # optimizers
    "unknown optimizer": (
        lambda tmp: make_optimizer("lbfgs", parameters()),
        ValueError,
        (
            "optimizer must be one of ['adadelta', 'adagrad', 'adam', "
            "'momentum', 'nesterov', 'rmsprop', 'sgd'], got 'lbfgs'"
        ),
    ),
    "negative lr": (
        lambda tmp: make_optimizer("sgd", parameters(), lr=-0.1),
        ValueError,
        "lr must be >= 0, got -0.1",
    ),
    "momentum of 1": (
        lambda tmp: make_optimizer("momentum", parameters(), momentum=1.0),
        ValueError,
        "momentum must be in [0, 1), got 1.0",
    ),
    "beta outside [0, 1)": (
        lambda tmp: make_optimizer("adam", parameters(), betas=(0.9, 1.0)),
        ValueError,
        "betas[1] must be in [0, 1), got 1.0",
    ),
    "nesterov with dampening": (
        lambda tmp: make_optimizer("nesterov", parameters(), dampening=0.1),
        ValueError,
        (
            "nesterov=True needs momentum > 0 and dampening = 0, got "
            "momentum=0.9, dampening=0.1"
        ),
    ),
    "negative eps": (
        lambda tmp: make_optimizer("rmsprop", parameters(), eps=-1e-8),
        ValueError,
        "eps must be >= 0, got -1e-08",
    ),
    "rho above 1": (
        lambda tmp: make_optimizer("adadelta", parameters(), rho=1.5),
        ValueError,
        "rho must be in [0, 1], got 1.5",
    ),
    "unknown hyperparameter": (
        lambda tmp: make_optimizer("adam", parameters(), beta=0.9),
        (ValueError, TypeError),
        (
            "optimizer 'adam' has no hyperparameter 'beta'; valid: ['lr',"
            " 'betas', 'eps', 'weight_decay', 'amsgrad']"
        ),
    ),
    # training loop
    "train zero epochs": (
        lambda tmp: train(
            mlp(),
            make_rule("bp"),
            make_optimizer("sgd", mlp().parameters()),
            sparse_task(),
            epochs=0,
            batch_size=4,
            seed=0,
        ),
        ValueError,
        "epochs must be a positive integer, got 0",
    ),
    "train unknown loss": (
        lambda tmp: train(
            mlp(),
            make_rule("bp"),
            make_optimizer("sgd", mlp().parameters()),
            sparse_task(),
            epochs=1,
            batch_size=4,
            seed=0,
            loss="mse",
        ),
        ValueError,
        "loss must be one of ['bce', 'hinge'], got 'mse'",
    ),
    # sweep config
    "config unknown method": (
        lambda tmp: sweep.RunConfig(method="hebb"),
        ValueError,
        (
            "method must be one of ['bp', 'dfa', 'fa', "
            "'fourier_features', 'gaussian_features', 'linear_features', "
            "'ntk', 'ntk_galu', 'relu_features'], got 'hebb'"
        ),
    ),
    "config unknown task": (
        lambda tmp: sweep.RunConfig(task="xor"),
        ValueError,
        ("RunConfig.task must be one of ['digit_parity', 'sparse_parity'], got 'xor'"),
    ),
    "config negative lr": (
        lambda tmp: sweep.RunConfig(lr=-1.0),
        ValueError,
        "RunConfig.lr must be a positive number, got -1.0",
    ),
    "config zero width": (
        lambda tmp: sweep.RunConfig(width=0),
        ValueError,
        "RunConfig.width must be an integer >= 1, got 0",
    ),
    "config unknown optimizer": (
        lambda tmp: sweep.RunConfig(optimizer="lbfgs"),
        ValueError,
        (
            "RunConfig.optimizer must be one of ['adadelta', 'adagrad', "
            "'adam', 'momentum', 'nesterov', 'rmsprop', 'sgd'], got "
            "'lbfgs'"
        ),
    ),
    "config unknown loss": (
        lambda tmp: sweep.RunConfig(loss="mse"),
        ValueError,
        "RunConfig.loss must be one of ['bce', 'hinge'], got 'mse'",
    ),
    "config unknown activation": (
        lambda tmp: sweep.RunConfig(activation="swish"),
        ValueError,
        (
            "RunConfig.activation must be one of ['linear', 'relu', "
            "'sigmoid', 'tanh'], got 'swish'"
        ),
    ),
    "config k > n": (
        lambda tmp: sweep.RunConfig(n=3, k=4),
        ValueError,
        "RunConfig.k must be in [1, n=3] for sparse parity, got k=4",
    ),
    "config unknown device": (
        lambda tmp: sweep.RunConfig(device="tpu"),
        ValueError,
        ("RunConfig.device must be 'cpu', 'cuda' or 'cuda:<index>', got 'tpu'"),
    ),
    "config unknown field": (
        lambda tmp: sweep.RunConfig.from_dict({"widht": 3}),
        ValueError,
        (
            "unknown RunConfig fields ['widht']; valid: ['activation', "
            "'batch_size', 'device', 'digit_source', 'dtype', 'epochs', "
            "'hidden_layers', 'k', 'loss', 'lr', 'method', 'n', "
            "'num_test', 'num_train', 'num_validation', 'optimizer', "
            "'optimizer_options', 'seed', 'structured_fraction', 'task', "
            "'width']"
        ),
    ),
    # profile files
    "profile unknown key": (
        lambda tmp: book.load_profile(write_profile(tmp, "colour = 'red'\n")),
        ValueError,
        (
            "profile {tmp}/bad.toml: unknown keys ['colour']; valid: "
            "['cell_timeout', 'chapters', 'description', 'seed']"
        ),
    ),
    "profile negative seed": (
        lambda tmp: book.load_profile(write_profile(tmp, "seed = -1\n")),
        ValueError,
        ("profile {tmp}/bad.toml: seed must be a non-negative integer, got -1"),
    ),
    "profile missing": (
        lambda tmp: book.load_profile("nonexistent"),
        FileNotFoundError,
        (
            "profile 'nonexistent' not found at "
            "{root}/profiles/nonexistent.toml; known: ['full', 'quick']"
        ),
    ),
    # sweep runner
    "sweep zero workers": (
        lambda tmp: sweep.run_sweep([sweep.RunConfig()], tmp, workers=0),
        ValueError,
        "run_sweep: workers must be an integer >= 1, got 0",
    ),
    "sweep zero threads": (
        lambda tmp: sweep.run_sweep([sweep.RunConfig()], tmp, threads_per_worker=0),
        ValueError,
        "run_sweep: threads_per_worker must be an integer >= 1, got 0",
    ),
    "sweep zero ensemble": (
        lambda tmp: sweep.run_sweep([sweep.RunConfig()], tmp, max_ensemble=0),
        ValueError,
        "run_sweep: max_ensemble must be an integer >= 1, got 0",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_invalid_input_rejected(case, tmp_path):
    call, error, message = CASES[case]
    with pytest.raises(error) as raised:
        call(tmp_path)
    expected = message.replace("{tmp}", str(tmp_path)).replace("{root}", str(ROOT))
    assert str(raised.value) == expected


def test_table_covers_thirty_inputs():
    assert len(CASES) >= 30
