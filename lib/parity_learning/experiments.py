"""Short ways to set up one run, as the chapters use them."""

from __future__ import annotations

from typing import Sequence

import torch

from .models import MLP
from .optim import make_optimizer
from .rules import make_rule
from .seeding import torch_generator
from .train import train

__all__ = ["fit_mlp"]


def fit_mlp(
    task,
    *,
    hidden: Sequence[int] = (128,),
    activation: str = "relu",
    rule: str = "bp",
    rule_options: dict | None = None,
    optimizer: str = "sgd",
    optimizer_options: dict | None = None,
    epochs: int,
    batch_size: int,
    seed: int,
    loss: str = "bce",
    progress: bool | None = None,
):
    """Build an MLP for ``task``, train it, and return (model, history).

    The initial weights come from the stream ``init`` of ``seed``, feedback
    matrices (if the rule has any) from ``feedback`` and the batch order from
    ``batch-order``, so two runs that differ only in the rule start from the
    same weights.
    """
    sizes = (task.input_dim, *hidden, 1)
    model = MLP(sizes, activation, generator=torch_generator(seed, "init"),
                dtype=task.dtype)
    options = dict(rule_options or {})
    if rule != "bp":
        options.setdefault("generator", torch_generator(seed, "feedback"))
    learning_rule = make_rule(rule, model, **options)
    opt = make_optimizer(optimizer, model.parameters(), **(optimizer_options or {}))
    history = train(model, learning_rule, opt, task, epochs=epochs,
                    batch_size=batch_size, seed=seed, loss=loss, progress=progress,
                    description=f"{rule}/{optimizer} on {task.name}")
    return model, history
