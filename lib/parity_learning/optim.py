"""Optimizers written from their update rules, with torch.optim's conventions.

An optimizer updates the product's own tensors in place from the update
directions a learning rule returns. Hyperparameter names and defaults follow
``torch.optim``, which the tests use as the oracle step for step. State lives
in ``self.state[i]``, one dict per parameter.
"""

from __future__ import annotations

from typing import Sequence

import torch

__all__ = ["Optimizer", "SGD", "OPTIMIZERS", "make_optimizer"]


def _check_non_negative(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not value >= 0.0:  # also rejects nan
        raise ValueError(f"{name} must be >= 0, got {value}")
    return float(value)


class Optimizer:
    """Base class: holds the parameters, their per-parameter state and a step count."""

    name = "optimizer"

    def __init__(self, params: Sequence[torch.Tensor], **hyperparameters):
        self.params = list(params)
        if not self.params:
            raise ValueError("an optimizer needs at least one parameter tensor")
        self.hyperparameters = hyperparameters
        self.state: list[dict[str, torch.Tensor | int]] = [{} for _ in self.params]

    @torch.no_grad()
    def step(self, grads: Sequence[torch.Tensor]) -> None:
        """Apply one update from one gradient per parameter."""
        grads = list(grads)
        if len(grads) != len(self.params):
            raise ValueError(
                f"{self.name} holds {len(self.params)} parameters, got {len(grads)} gradients"
            )
        for param, grad, state in zip(self.params, grads, self.state):
            if grad.shape != param.shape:
                raise ValueError(
                    f"gradient of shape {tuple(grad.shape)} for a parameter of shape "
                    f"{tuple(param.shape)}"
                )
            self._update(param, grad, state)

    def _update(self, param, grad, state) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """SGD with optional momentum, dampening, Nesterov and weight decay.

    As ``torch.optim.SGD``: g = grad + weight_decay * p; with momentum,
    the buffer starts at g and then b = momentum * b + (1 - dampening) * g;
    the step direction is g + momentum * b with Nesterov, b without;
    p = p - lr * direction.
    """

    name = "sgd"

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0,
                 weight_decay=0.0, nesterov=False):
        lr = _check_non_negative("lr", lr)
        momentum = _check_non_negative("momentum", momentum)
        if momentum >= 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        dampening = _check_non_negative("dampening", dampening)
        weight_decay = _check_non_negative("weight_decay", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(
                "nesterov=True needs momentum > 0 and dampening = 0, got "
                f"momentum={momentum}, dampening={dampening}"
            )
        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening,
                         weight_decay=weight_decay, nesterov=bool(nesterov))

    def _update(self, param, grad, state):
        hp = self.hyperparameters
        if hp["weight_decay"]:
            grad = grad + hp["weight_decay"] * param
        if hp["momentum"]:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = grad.clone()
            else:
                buffer = state["momentum_buffer"]
                buffer.mul_(hp["momentum"]).add_(grad, alpha=1 - hp["dampening"])
            buffer = state["momentum_buffer"]
            grad = grad + hp["momentum"] * buffer if hp["nesterov"] else buffer
        param.add_(grad, alpha=-hp["lr"])


OPTIMIZERS = {"sgd": SGD}


def make_optimizer(name: str, params, **hyperparameters) -> Optimizer:
    """Build the optimizer ``name`` over ``params`` with torch.optim's names."""
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {name!r}")
    return OPTIMIZERS[name](params, **hyperparameters)
