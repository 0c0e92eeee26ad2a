"""Every public entry point rejects invalid input with a message naming it.

One table of bad inputs across the sampler, the tasks, the model, the rules,
the optimizers, the training loop, the sweep config and runner, and the
profile files. Each case names the exception type and a pattern that the
message must contain: the field, the value and what is valid. The command
lines log the same messages and exit with status 1; test_sweep.py and
test_book.py test them.
"""

import pytest
import torch

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
    "sampler k > n": (lambda tmp: sample_sparse_parity(3, 4, 10, generator()),
                      ValueError, r"k must be .*n.*got k=4"),
    "sampler k < 1": (lambda tmp: sample_sparse_parity(3, 0, 10, generator()),
                      ValueError, r"k must be in \[1, n=3\], got k=0"),
    "sampler n = 0": (lambda tmp: sample_sparse_parity(0, 1, 10, generator()),
                      ValueError, r"n .*got 0"),
    "sampler no samples": (lambda tmp: sample_sparse_parity(5, 2, 0, generator()),
                           ValueError, r"num_samples .*got 0"),
    "sampler fraction > 1": (lambda tmp: sample_sparse_parity(
        5, 2, 10, generator(), structured_fraction=1.5), ValueError, r"structured_fraction.*1\.5"),
    "sampler subset out of range": (lambda tmp: sample_sparse_parity(
        5, 2, 10, generator(), subset=(0, 7)), ValueError, r"subset.*7"),
    "sampler subset wrong size": (lambda tmp: sample_sparse_parity(
        5, 2, 10, generator(), subset=(0, 1, 2)), ValueError, r"subset.*\(0, 1, 2\)"),
    "task negative seed": (lambda tmp: SparseParityTask(4, 2, 16, 8, seed=-1),
                           ValueError, r"seed.*-1"),
    "unknown digit source": (lambda tmp: load_digits("kmnist"),
                             ValueError, r"unknown digit source 'kmnist'.*sklearn"),
    "empty IDX directory": (lambda tmp: load_digits(tmp),
                            FileNotFoundError, r"IDX"),
    "digit tuples k = 0": (lambda tmp: digit_parity_tuples(
        torch.zeros(4, 2, 2), torch.arange(4), 0, 3, generator()), ValueError, r"k .*got 0"),
    # model and rules
    "model one width": (lambda tmp: MLP((4,), generator=generator()),
                        ValueError, r"sizes .*\(4,\)"),
    "model zero width": (lambda tmp: MLP((4, 0, 1), generator=generator()),
                         ValueError, r"positive int.*\(4, 0, 1\)"),
    "model unknown activation": (lambda tmp: MLP((4, 3, 1), "swish", generator=generator()),
                                 ValueError, r"swish"),
    "model unknown init": (lambda tmp: MLP((4, 3, 1), init="xavier", generator=generator()),
                           ValueError, r"xavier"),
    "unknown rule": (lambda tmp: make_rule("hebb", mlp()), ValueError, r"dfa.*got 'hebb'"),
    "bp with options": (lambda tmp: make_rule("bp", scale=2.0), ValueError, r"scale"),
    "dfa unknown distribution": (lambda tmp: make_rule(
        "dfa", mlp(), generator=generator(), distribution="cauchy"), ValueError, r"cauchy"),
    "dfa non-positive scale": (lambda tmp: make_rule(
        "dfa", mlp(), generator=generator(), scale=0.0), ValueError, r"scale.*0"),
    "dfa feedback wrong shape": (lambda tmp: make_rule(
        "dfa", mlp(), feedback=[torch.zeros(2, 2)]), ValueError, r"\(2, 2\).*\(3, 1\)"),
    "rule on a non-MLP": (lambda tmp: make_rule("fa", object(), generator=generator()),
                          TypeError, r"MLP.*object"),
    # optimizers
    "unknown optimizer": (lambda tmp: make_optimizer("lbfgs", parameters()),
                          ValueError, r"adam.*got 'lbfgs'"),
    "negative lr": (lambda tmp: make_optimizer("sgd", parameters(), lr=-0.1),
                    ValueError, r"lr.*-0\.1"),
    "momentum of 1": (lambda tmp: make_optimizer("momentum", parameters(), momentum=1.0),
                      ValueError, r"momentum.*1\.0"),
    "beta outside [0, 1)": (lambda tmp: make_optimizer("adam", parameters(), betas=(0.9, 1.0)),
                            ValueError, r"betas.*1\.0"),
    "nesterov with dampening": (lambda tmp: make_optimizer(
        "nesterov", parameters(), dampening=0.1), ValueError, r"dampening"),
    "negative eps": (lambda tmp: make_optimizer("rmsprop", parameters(), eps=-1e-8),
                     ValueError, r"eps"),
    "rho above 1": (lambda tmp: make_optimizer("adadelta", parameters(), rho=1.5),
                    ValueError, r"rho.*1\.5"),
    "unknown hyperparameter": (lambda tmp: make_optimizer("adam", parameters(), beta=0.9),
                               (ValueError, TypeError), r"beta"),
    # training loop
    "train zero epochs": (lambda tmp: train(mlp(), make_rule("bp"), make_optimizer(
        "sgd", mlp().parameters()), sparse_task(), epochs=0, batch_size=4, seed=0),
        ValueError, r"epochs.*0"),
    "train unknown loss": (lambda tmp: train(mlp(), make_rule("bp"), make_optimizer(
        "sgd", mlp().parameters()), sparse_task(), epochs=1, batch_size=4, seed=0,
        loss="mse"), ValueError, r"mse"),
    # sweep config
    "config unknown method": (lambda tmp: sweep.RunConfig(method="hebb"),
                              ValueError, r"hebb"),
    "config unknown task": (lambda tmp: sweep.RunConfig(task="xor"), ValueError, r"xor"),
    "config negative lr": (lambda tmp: sweep.RunConfig(lr=-1.0), ValueError, r"lr.*-1\.0"),
    "config zero width": (lambda tmp: sweep.RunConfig(width=0), ValueError, r"width.*0"),
    "config unknown optimizer": (lambda tmp: sweep.RunConfig(optimizer="lbfgs"),
                                 ValueError, r"optimizer.*lbfgs"),
    "config unknown loss": (lambda tmp: sweep.RunConfig(loss="mse"), ValueError, r"loss.*mse"),
    "config unknown activation": (lambda tmp: sweep.RunConfig(activation="swish"),
                                  ValueError, r"activation.*swish"),
    "config k > n": (lambda tmp: sweep.RunConfig(n=3, k=4), ValueError,
                     r"k must be in \[1, n=3\] for sparse parity, got k=4"),
    "config unknown device": (lambda tmp: sweep.RunConfig(device="tpu"), ValueError, r"tpu"),
    "config unknown field": (lambda tmp: sweep.RunConfig.from_dict({"widht": 3}),
                             ValueError, r"widht"),
    # profile files
    "profile unknown key": (lambda tmp: book.load_profile(write_profile(
        tmp, "colour = 'red'\n")), ValueError, r"unknown keys \['colour'\]"),
    "profile negative seed": (lambda tmp: book.load_profile(write_profile(
        tmp, "seed = -1\n")), ValueError, r"seed must be a non-negative integer, got -1"),
    "profile missing": (lambda tmp: book.load_profile("nonexistent"),
                        FileNotFoundError, r"nonexistent"),
    # sweep runner
    "sweep zero workers": (lambda tmp: sweep.run_sweep([sweep.RunConfig()], tmp, workers=0),
                           ValueError, r"run_sweep: workers must be an integer >= 1, got 0"),
    "sweep zero threads": (lambda tmp: sweep.run_sweep(
        [sweep.RunConfig()], tmp, threads_per_worker=0),
        ValueError, r"run_sweep: threads_per_worker must be an integer >= 1, got 0"),
    "sweep zero ensemble": (lambda tmp: sweep.run_sweep(
        [sweep.RunConfig()], tmp, max_ensemble=0),
        ValueError, r"run_sweep: max_ensemble must be an integer >= 1, got 0"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_invalid_input_rejected(case, tmp_path):
    call, error, message = CASES[case]
    with pytest.raises(error, match=message):
        call(tmp_path)


def test_table_covers_thirty_inputs():
    assert len(CASES) >= 30
