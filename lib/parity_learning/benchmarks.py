"""Timing functions for the benchmarks page and the scripts in ``benchmarks/``.

A timing here is wall-clock time, so it depends on the machine and on what
else runs on it. Every comparison therefore measures its baseline in the same
run, interleaving the contenders step by step, and reports ratios of medians.
Timings never go into tests.
"""

from __future__ import annotations

import time
from typing import Sequence

import pandas as pd
import torch

from .losses import get_loss
from .models import MLP
from .optim import make_optimizer
from .rules import make_rule
from .seeding import torch_generator

__all__ = ["TrainingStep", "compare_step_times"]


class TrainingStep:
    """One training step of an MLP on a fixed random batch, ready to be timed.

    The step is what ``train`` does per mini-batch: forward pass, BCE loss,
    the rule's update directions and an SGD update. The network has
    ``hidden_layers`` ReLU layers of ``width`` units and one output unit; the
    input has ``input_dim`` features (``width`` by default).
    """

    def __init__(self, rule: str, *, hidden_layers: int, width: int = 512,
                 batch_size: int = 128, input_dim: int | None = None, seed: int = 0,
                 device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32):
        input_dim = width if input_dim is None else input_dim
        sizes = (input_dim, *([width] * hidden_layers), 1)
        self.model = MLP(sizes, "relu", generator=torch_generator(seed, "init"),
                         dtype=dtype, device=device)
        options = {} if rule == "bp" else {"generator": torch_generator(seed, "feedback")}
        self.rule = make_rule(rule, self.model, **options)
        # A small learning rate keeps the weights near their start over many steps.
        self.optimizer = make_optimizer("sgd", self.model.parameters(), lr=1e-4)
        data = torch_generator(seed, "benchmark-batch")
        self.X = torch.randn(batch_size, input_dim, generator=data, dtype=dtype).to(device)
        self.y = (torch.randint(0, 2, (batch_size,), generator=data) * 2 - 1).to(dtype).to(device)
        self.loss_fn = get_loss("bce")
        self.device = torch.device(device)

    def __call__(self) -> None:
        cache = self.model.forward(self.X)
        _, dlogits = self.loss_fn(cache.logits, self.y)
        grads = self.rule.gradients(self.model, cache, dlogits)
        self.optimizer.step(grads)

    def timed(self) -> float:
        """Run one step and return its wall-clock time in seconds."""
        self._synchronize()
        start = time.perf_counter()
        self()
        self._synchronize()
        return time.perf_counter() - start

    def _synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def compare_step_times(rules: Sequence[str] = ("bp", "dfa"), *,
                       depths: Sequence[int] = (1, 2, 4), width: int = 512,
                       batch_size: int = 128, repeats: int = 50, warmup: int = 5,
                       seed: int = 0, device: str | torch.device = "cpu",
                       baseline: str = "bp") -> pd.DataFrame:
    """Time one training step of each rule at each depth and return a table.

    For every depth the rules take turns, one step each, ``warmup`` untimed
    rounds and then ``repeats`` timed rounds, so that a slowdown of the
    machine hits all of them alike. The table has one row per depth with the
    median step time of each rule in milliseconds (``<rule>_ms``) and the
    ratio of each median to the median of ``baseline`` (``<rule>/<baseline>``).
    """
    rules = list(rules)
    if baseline not in rules:
        raise ValueError(f"baseline {baseline!r} must be one of the timed rules {rules}")
    for name, value in (("repeats", repeats), ("warmup", warmup)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")

    rows = []
    for depth in depths:
        steps = {rule: TrainingStep(rule, hidden_layers=depth, width=width,
                                    batch_size=batch_size, seed=seed, device=device)
                 for rule in rules}
        for _ in range(warmup):
            for step in steps.values():
                step()
        times = {rule: [] for rule in rules}
        for _ in range(repeats):
            for rule, step in steps.items():
                times[rule].append(step.timed())
        medians = {rule: float(torch.tensor(t).median()) for rule, t in times.items()}
        row = {"hidden layers": depth, "width": width, "batch size": batch_size}
        row.update({f"{rule}_ms": 1e3 * medians[rule] for rule in rules})
        row.update({f"{rule}/{baseline}": medians[rule] / medians[baseline]
                    for rule in rules if rule != baseline})
        rows.append(row)
    return pd.DataFrame(rows)
