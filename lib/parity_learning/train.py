"""One training run: mini-batches, losses, metrics history, divergence.

``train`` works for a single model and for an ensemble (a model with a
leading dimension E). An ensemble trains either on one shared task, with one
batch order, or on one task and one seed per member, in which case member e
sees exactly the data and batch order that a single run with ``task[e]`` and
``seed[e]`` would see.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm  # tqdm.auto warns in kernels without ipywidgets

from .losses import accuracy, get_loss
from .seeding import check_seed, torch_generator

__all__ = ["History", "train", "evaluate"]

log = logging.getLogger(__name__)


@dataclass
class History:
    """Per-epoch metrics of a run, one value per ensemble member.

    ``values[name][e]`` is the metric after epoch e; row 0 is measured at
    initialization. Train metrics of epochs >= 1 are running means over that
    epoch's mini-batches; evaluation metrics are measured on the whole set
    after the epoch. ``diverged_step`` holds, per member, the 1-based
    optimizer step whose loss was first not finite, or -1; metrics after it
    are NaN.
    """

    ensemble_shape: tuple[int, ...]
    values: dict[str, list[np.ndarray]] = field(default_factory=dict)
    diverged_step: np.ndarray | None = None

    def append(self, name: str, value: torch.Tensor | np.ndarray | float) -> None:
        if isinstance(value, torch.Tensor):
            value = value.detach().to("cpu", torch.float64).numpy()
        self.values.setdefault(name, []).append(np.asarray(value, dtype=np.float64))

    @property
    def diverged(self) -> np.ndarray:
        return np.asarray(self.diverged_step) >= 0

    def status(self) -> str:
        """Describe the outcome of a single run: ``"trained"`` or ``"diverged at step N"``."""
        steps = np.asarray(-1 if self.diverged_step is None else self.diverged_step)
        if steps.ndim != 0:
            raise ValueError(f"status describes one run, but this history has ensemble shape "
                             f"{self.ensemble_shape}; index diverged_step per member instead")
        return f"diverged at step {int(steps)}" if steps >= 0 else "trained"

    def array(self, name: str) -> np.ndarray:
        """Return metric ``name`` as an array of shape (epochs + 1, *E)."""
        if name not in self.values:
            raise KeyError(f"no metric {name!r}; recorded: {sorted(self.values)}")
        return np.stack(self.values[name])

    def final(self, name: str) -> np.ndarray | float:
        """Return the last value of metric ``name`` (NaN for a diverged member)."""
        last = self.array(name)[-1]
        return float(last) if last.ndim == 0 else last

    def to_frame(self) -> pd.DataFrame:
        """Return a long table: epoch, member, metric, value."""
        rows = []
        for name, series in self.values.items():
            for epoch, value in enumerate(series):
                flat = np.atleast_1d(value).ravel()
                for member, item in enumerate(flat):
                    rows.append((epoch, member, name, float(item)))
        return pd.DataFrame(rows, columns=["epoch", "member", "metric", "value"])


def _stack_members(items):
    return torch.stack(list(items))


class _Data:
    """Training and evaluation tensors for a single task or one task per member."""

    def __init__(self, task, seeds, device, members):
        self.tasks = task if members else None
        self.task = None if members else task
        self.device = device
        self.members = members
        first = task[0] if members else task
        self.eval_names = list(first.evaluation_sets)
        self.eval_sets = {}
        for name in self.eval_names:
            sets = [t.evaluation_sets[name] for t in task] if members else [task.evaluation_sets[name]]
            X = _stack_members(s.X for s in sets) if members else sets[0].X
            y = _stack_members(s.y for s in sets) if members else sets[0].y
            parts = {}
            for part in sets[0].parts:
                masks = [s.parts[part] for s in sets]
                parts[part] = (_stack_members(masks) if members else masks[0]).to(device)
            self.eval_sets[name] = (X.to(device), y.to(device), parts)
        names = [f"batch-order" for _ in (seeds if members else [seeds])]
        self.batch_generators = [
            torch_generator(s, n) for s, n in zip(seeds if members else [seeds], names)
        ]

    def training_set(self, epoch):
        if self.members:
            pairs = [t.training_set(epoch) for t in self.tasks]
            X = _stack_members(p[0] for p in pairs)
            y = _stack_members(p[1] for p in pairs)
        else:
            X, y = self.task.training_set(epoch)
        return X.to(self.device), y.to(self.device)

    def batches(self, X, y, batch_size):
        count = X.shape[-2]
        orders = [torch.randperm(count, generator=g) for g in self.batch_generators]
        if self.members:
            order = torch.stack(orders).to(self.device)  # (E, N)
            rows = torch.arange(order.shape[0], device=self.device)[:, None]
        else:
            order = orders[0].to(self.device)  # (N,)
        for start in range(0, count, batch_size):
            index = order[..., start : start + batch_size]
            if self.members:
                yield X[rows, index], y[rows, index]
            else:
                yield X[index], y[index]


def _check_positive(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


@torch.no_grad()
def evaluate(model, X, y, loss_fn, parts=None, batch_size=8192):
    """Return loss and accuracy of ``model`` on (X, y), overall and per part."""
    logits = torch.cat(
        [model.forward(X[..., i : i + batch_size, :]).logits for i in range(0, X.shape[-2], batch_size)],
        dim=-1,
    )
    loss, _ = loss_fn(logits, y)
    results = {"loss": loss, "accuracy": accuracy(logits, y)}
    for part, mask in (parts or {}).items():
        correct = (torch.where(logits >= 0, 1.0, -1.0).to(y.dtype) == y).to(logits.dtype)
        total = mask.to(logits.dtype).sum(dim=-1)
        hits = (correct * mask).sum(dim=-1)
        results[f"{part}_accuracy"] = torch.where(total > 0, hits / total.clamp(min=1), torch.nan)
    return results


def train(
    model,
    rule,
    optimizer,
    task,
    *,
    epochs: int,
    batch_size: int,
    seed: int | Sequence[int],
    loss: str = "bce",
    progress: bool | None = None,
    description: str | None = None,
) -> History:
    """Train ``model`` with ``rule`` and ``optimizer`` on ``task``.

    ``seed`` fixes the batch order (its stream ``batch-order``). For an
    ensemble with one task per member, pass sequences of tasks and seeds of
    length E. ``progress=None`` shows a tqdm bar only when stderr is a
    terminal; ``True`` and ``False`` force it on or off.

    A member whose loss becomes NaN or infinite is marked diverged with the
    step where it happened; its later metrics are NaN. Training stops early
    once every member has diverged.
    """
    epochs = _check_positive("epochs", epochs)
    batch_size = _check_positive("batch_size", batch_size)
    loss_fn = get_loss(loss)
    ensemble_shape = model.ensemble_shape
    members = isinstance(task, (list, tuple))
    if members:
        if len(ensemble_shape) != 1 or len(task) != ensemble_shape[0]:
            raise ValueError(
                f"one task per member needs a model with ensemble shape ({len(task)},), "
                f"got {ensemble_shape}"
            )
        if isinstance(seed, (int, np.integer)) or len(seed) != len(task):
            raise ValueError(f"one task per member needs {len(task)} seeds, got {seed!r}")
        seed = [check_seed(s) for s in seed]
    else:
        seed = check_seed(seed)

    data = _Data(task, seed, model.device, members)
    history = History(ensemble_shape)
    diverged_step = torch.full(ensemble_shape, -1, dtype=torch.int64)

    def record_evaluation(epoch_train=None):
        if epoch_train is None:
            X, y = data.training_set(0)
            epoch_train = evaluate(model, X, y, loss_fn)
        for metric in ("loss", "accuracy"):
            history.append(f"train_{metric}", _mask_diverged(epoch_train[metric]))
        for name, (X, y, parts) in data.eval_sets.items():
            for metric, value in evaluate(model, X, y, loss_fn, parts).items():
                history.append(f"{name}_{metric}", _mask_diverged(value))

    def _mask_diverged(value):
        value = torch.as_tensor(value, dtype=torch.float64).cpu()
        return torch.where(diverged_step >= 0, torch.nan, value)

    record_evaluation()
    step = 0
    show = progress if progress is not None else None
    bar = tqdm(range(1, epochs + 1), desc=description or rule.name, disable=None if show is None else not show, leave=False)
    for epoch in bar:
        X, y = data.training_set(epoch)
        loss_sum = torch.zeros(ensemble_shape, dtype=torch.float64)
        correct_sum = torch.zeros(ensemble_shape, dtype=torch.float64)
        seen = 0
        step_metrics = {}
        last_batch = math.ceil(X.shape[-2] / batch_size)
        for batch, (X_batch, y_batch) in enumerate(data.batches(X, y, batch_size), start=1):
            cache = model.forward(X_batch)
            batch_loss, dlogits = loss_fn(cache.logits, y_batch)
            step += 1
            bad = ~torch.isfinite(batch_loss).cpu() & (diverged_step < 0)
            if bad.any():
                diverged_step[bad] = step
                log.warning("run diverged at step %d (epoch %d): loss %s", step, epoch, batch_loss)
            grads = rule.gradients(model, cache, dlogits)
            if batch == last_batch:
                # Taken before the step moves the weights, so that a rule's
                # metrics compare its update with BP at the same weights.
                step_metrics = rule.metrics(model, cache, dlogits, grads)
            optimizer.step(grads)
            count = X_batch.shape[-2]
            seen += count
            loss_sum += batch_loss.detach().cpu().double() * count
            correct_sum += accuracy(cache.logits, y_batch).detach().cpu().double() * count
            if (diverged_step >= 0).all():
                break
        for name, value in step_metrics.items():
            history.append(name, _mask_diverged(value))
        record_evaluation({"loss": loss_sum / seen, "accuracy": correct_sum / seen})
        if (diverged_step >= 0).all():
            log.warning("every member diverged; stopping after epoch %d of %d", epoch, epochs)
            break
        if show is not False:
            bar.set_postfix(loss=f"{float(loss_sum.mean() / seen):.4f}")
    history.diverged_step = diverged_step.numpy()
    return history
