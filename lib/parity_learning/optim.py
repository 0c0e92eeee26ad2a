"""Optimizers written from their update rules, with torch.optim's conventions.

An optimizer updates the product's own tensors in place from the update
directions a learning rule returns. Hyperparameter names and defaults follow
``torch.optim`` (checked against torch 2.13), which the tests use as the
oracle step for step. State lives in ``self.state[i]``, one dict per
parameter, and ``state_dict()`` / ``load_state_dict()`` round-trip it exactly.

Every update is elementwise, so an optimizer over ensemble tensors with a
leading dimension E updates each member as E separate optimizers would.

Notation of the docstrings: p is a parameter, g its update direction after
weight decay (g = grad + weight_decay * p), t the 1-based step count of that
parameter, and all products, squares, roots and quotients are elementwise.
"""

from __future__ import annotations

import inspect
import logging
import numbers
from typing import Any, Mapping, Sequence

import torch

__all__ = [
    "Optimizer",
    "SGD",
    "Momentum",
    "Nesterov",
    "Adagrad",
    "Adadelta",
    "RMSprop",
    "Adam",
    "OPTIMIZERS",
    "make_optimizer",
]

log = logging.getLogger(__name__)


def _check_number(name: str, value: object, low: float = 0.0, high: float | None = None,
                  high_inclusive: bool = False) -> float:
    """Return ``value`` as a float, or raise if it is not a number in range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    value = float(value)
    upper_ok = high is None or value < high or (high_inclusive and value == high)
    if not (value >= low and upper_ok):  # the comparison also rejects nan
        if high is None:
            valid = f">= {low:g}"
        else:
            valid = f"in [{low:g}, {high:g}{']' if high_inclusive else ')'}"
        raise ValueError(f"{name} must be {valid}, got {value}")
    return value


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def _with_weight_decay(grad: torch.Tensor, param: torch.Tensor, weight_decay: float):
    """Return g = grad + weight_decay * p, the L2 penalty of torch.optim."""
    return grad.add(param, alpha=weight_decay) if weight_decay else grad


class Optimizer:
    """Base class: the parameters, their per-parameter state, validation.

    A subclass defines ``_check`` (validate and normalise its hyperparameters)
    and ``_update`` (one step of one parameter, in place).
    """

    name = "optimizer"

    def __init__(self, params: Sequence[torch.Tensor], **hyperparameters):
        self.params = list(params)
        if not self.params:
            raise ValueError("an optimizer needs at least one parameter tensor")
        for index, param in enumerate(self.params):
            if not isinstance(param, torch.Tensor):
                raise TypeError(f"parameter {index} must be a torch.Tensor, got {param!r}")
        self.hyperparameters = self._check(dict(hyperparameters))
        self.state: list[dict[str, torch.Tensor | int]] = [{} for _ in self.params]

    def _check(self, hyperparameters: dict) -> dict:
        return hyperparameters

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

    # ----------------------------------------------------------------------
    # Saving and loading

    def state_dict(self) -> dict[str, Any]:
        """Return the optimizer name, hyperparameters and a copy of every state.

        ``state`` is a list with one dict per parameter, in the order of
        ``self.params``; tensors are cloned, so later steps leave it unchanged.
        """
        state = [
            {key: value.clone() if isinstance(value, torch.Tensor) else value
             for key, value in entry.items()}
            for entry in self.state
        ]
        return {"optimizer": self.name, "hyperparameters": dict(self.hyperparameters),
                "state": state}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore what ``state_dict()`` returned, for the same parameter shapes.

        As in ``torch.optim``, the saved hyperparameters replace the current
        ones (after validation). State tensors are copied to each parameter's
        device; a shape or dtype that differs from the parameter's raises.
        """
        for key in ("optimizer", "hyperparameters", "state"):
            if key not in state_dict:
                raise ValueError(f"optimizer state_dict is missing the key {key!r}")
        if state_dict["optimizer"] != self.name:
            raise ValueError(
                f"state_dict is of optimizer {state_dict['optimizer']!r}, "
                f"this optimizer is {self.name!r}"
            )
        saved = list(state_dict["state"])
        if len(saved) != len(self.params):
            raise ValueError(
                f"state_dict has state for {len(saved)} parameters, "
                f"this optimizer holds {len(self.params)}"
            )
        hyperparameters = self._check(dict(state_dict["hyperparameters"]))
        restored = []
        for index, (param, entry) in enumerate(zip(self.params, saved)):
            restored.append(self._restore_entry(index, param, entry))
        if hyperparameters != self.hyperparameters:
            log.info("%s: loaded hyperparameters %s replace %s", self.name,
                     hyperparameters, self.hyperparameters)
        self.hyperparameters = hyperparameters
        self.state = restored

    @staticmethod
    def _restore_entry(index, param, entry) -> dict:
        restored = {}
        for key, value in entry.items():
            if not isinstance(value, torch.Tensor):
                restored[key] = value
                continue
            if value.shape != param.shape or value.dtype != param.dtype:
                raise ValueError(
                    f"state {key!r} of parameter {index} has shape {tuple(value.shape)} "
                    f"and dtype {value.dtype}, the parameter has shape "
                    f"{tuple(param.shape)} and dtype {param.dtype}"
                )
            restored[key] = value.to(param.device, copy=True)
        return restored


class SGD(Optimizer):
    """SGD with optional momentum, dampening, Nesterov and weight decay.

    As ``torch.optim.SGD``, the momentum buffer b starts at g and then
    becomes b = momentum * b + (1 - dampening) * g. The step direction is
    d = g + momentum * b with Nesterov, d = b with momentum alone and d = g
    without momentum, and p = p - lr * d. With dampening 0 this equals the
    textbook v = momentum * v + lr * g, p = p - v, through v = lr * b.
    """

    name = "sgd"

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0,
                 weight_decay=0.0, nesterov=False):
        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening,
                         weight_decay=weight_decay, nesterov=nesterov)

    def _check(self, hp):
        checked = {
            "lr": _check_number("lr", hp["lr"]),
            "momentum": _check_number("momentum", hp["momentum"], 0.0, 1.0),
            "dampening": _check_number("dampening", hp["dampening"], 0.0, 1.0, True),
            "weight_decay": _check_number("weight_decay", hp["weight_decay"]),
            "nesterov": _check_bool("nesterov", hp["nesterov"]),
        }
        if checked["nesterov"] and (checked["momentum"] <= 0 or checked["dampening"] != 0):
            raise ValueError(
                "nesterov=True needs momentum > 0 and dampening = 0, got "
                f"momentum={checked['momentum']}, dampening={checked['dampening']}"
            )
        return checked

    def _update(self, param, grad, state):
        hp = self.hyperparameters
        grad = _with_weight_decay(grad, param, hp["weight_decay"])
        if hp["momentum"]:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = grad.clone()
            else:
                buffer = state["momentum_buffer"]
                buffer.mul_(hp["momentum"]).add_(grad, alpha=1 - hp["dampening"])
            buffer = state["momentum_buffer"]
            grad = grad.add(buffer, alpha=hp["momentum"]) if hp["nesterov"] else buffer
        param.add_(grad, alpha=-hp["lr"])


class Momentum(SGD):
    """SGD with heavy-ball momentum: the config name ``momentum``.

    The same update as ``SGD``, but the momentum defaults to 0.9, the value
    the thesis and most references use, where ``torch.optim.SGD`` has 0.
    """

    name = "momentum"

    def __init__(self, params, momentum=0.9, **hyperparameters):
        super().__init__(params, momentum=momentum, **hyperparameters)


class Nesterov(SGD):
    """SGD with Nesterov momentum in PyTorch's form: the config name ``nesterov``.

    The momentum defaults to 0.9 and ``nesterov`` is always True; passing
    ``nesterov=False`` raises, because that would be the ``momentum`` config.
    """

    name = "nesterov"

    def __init__(self, params, momentum=0.9, nesterov=True, **hyperparameters):
        super().__init__(params, momentum=momentum, nesterov=nesterov, **hyperparameters)

    def _check(self, hp):
        if hp["nesterov"] is not True:
            raise ValueError(
                f"optimizer 'nesterov' always has nesterov=True, got {hp['nesterov']!r}; "
                "use 'momentum' for momentum without Nesterov"
            )
        return super()._check(hp)


class Adagrad(Optimizer):
    """Adagrad, as ``torch.optim.Adagrad``.

    G = G + g^2 with G starting at ``initial_accumulator_value``; the step
    size decays as lr_t = lr / (1 + (t - 1) * lr_decay), and
    p = p - lr_t * g / (sqrt(G) + eps). Note that torch adds eps outside the
    root, where the thesis writes sqrt(G + eps).
    """

    name = "adagrad"

    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                 initial_accumulator_value=0.0, eps=1e-10):
        super().__init__(params, lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                         initial_accumulator_value=initial_accumulator_value, eps=eps)

    def _check(self, hp):
        return {key: _check_number(key, hp[key]) for key in (
            "lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")}

    def _update(self, param, grad, state):
        hp = self.hyperparameters
        if not state:
            state["step"] = 0
            state["sum"] = torch.full_like(param, hp["initial_accumulator_value"])
        state["step"] += 1
        grad = _with_weight_decay(grad, param, hp["weight_decay"])
        lr_t = hp["lr"] / (1 + (state["step"] - 1) * hp["lr_decay"])
        state["sum"].addcmul_(grad, grad, value=1)
        std = state["sum"].sqrt().add_(hp["eps"])
        param.addcdiv_(grad, std, value=-lr_t)


class Adadelta(Optimizer):
    """Adadelta, as ``torch.optim.Adadelta``, with its learning-rate scaling.

    E[g^2] = rho * E[g^2] + (1 - rho) * g^2, then
    delta = sqrt(E[dp^2] + eps) / sqrt(E[g^2] + eps) * g, where E[dp^2] is the
    running average of past deltas, updated after the step as
    E[dp^2] = rho * E[dp^2] + (1 - rho) * delta^2; finally p = p - lr * delta.
    With lr = 1 (the default) this is Zeiler's rule, which has no step size.
    """

    name = "adadelta"

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0):
        super().__init__(params, lr=lr, rho=rho, eps=eps, weight_decay=weight_decay)

    def _check(self, hp):
        return {
            "lr": _check_number("lr", hp["lr"]),
            "rho": _check_number("rho", hp["rho"], 0.0, 1.0, True),
            "eps": _check_number("eps", hp["eps"]),
            "weight_decay": _check_number("weight_decay", hp["weight_decay"]),
        }

    def _update(self, param, grad, state):
        hp = self.hyperparameters
        rho, eps = hp["rho"], hp["eps"]
        if not state:
            state["step"] = 0
            state["square_avg"] = torch.zeros_like(param)
            state["acc_delta"] = torch.zeros_like(param)
        state["step"] += 1
        grad = _with_weight_decay(grad, param, hp["weight_decay"])
        square_avg, acc_delta = state["square_avg"], state["acc_delta"]
        square_avg.mul_(rho).addcmul_(grad, grad, value=1 - rho)
        rms_grad = square_avg.add(eps).sqrt_()
        delta = acc_delta.add(eps).sqrt_().div_(rms_grad).mul_(grad)
        acc_delta.mul_(rho).addcmul_(delta, delta, value=1 - rho)
        param.add_(delta, alpha=-hp["lr"])


class RMSprop(Optimizer):
    """RMSProp, as ``torch.optim.RMSprop``, with its ``alpha`` for the decay.

    E[g^2] = alpha * E[g^2] + (1 - alpha) * g^2 and
    p = p - lr * g / (sqrt(E[g^2]) + eps). ``centered=True`` subtracts the
    square of the running mean of g under the root; ``momentum > 0`` keeps a
    buffer b = momentum * b + g / (root + eps) and steps p = p - lr * b.
    Stricter than torch, ``alpha`` must lie in [0, 1] and ``momentum`` in
    [0, 1), because other values make the averages diverge.
    """

    name = "rmsprop"

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0,
                 momentum=0.0, centered=False):
        super().__init__(params, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                         momentum=momentum, centered=centered)

    def _check(self, hp):
        return {
            "lr": _check_number("lr", hp["lr"]),
            "alpha": _check_number("alpha", hp["alpha"], 0.0, 1.0, True),
            "eps": _check_number("eps", hp["eps"]),
            "weight_decay": _check_number("weight_decay", hp["weight_decay"]),
            "momentum": _check_number("momentum", hp["momentum"], 0.0, 1.0),
            "centered": _check_bool("centered", hp["centered"]),
        }

    def _update(self, param, grad, state):
        hp = self.hyperparameters
        alpha = hp["alpha"]
        if not state:
            state["step"] = 0
            state["square_avg"] = torch.zeros_like(param)
            if hp["momentum"] > 0:
                state["momentum_buffer"] = torch.zeros_like(param)
            if hp["centered"]:
                state["grad_avg"] = torch.zeros_like(param)
        state["step"] += 1
        grad = _with_weight_decay(grad, param, hp["weight_decay"])
        square_avg = state["square_avg"]
        square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
        if hp["centered"]:
            grad_avg = state["grad_avg"]
            grad_avg.mul_(alpha).add_(grad, alpha=1 - alpha)
            root = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()
        else:
            root = square_avg.sqrt()
        root.add_(hp["eps"])
        if hp["momentum"] > 0:
            buffer = state["momentum_buffer"]
            buffer.mul_(hp["momentum"]).addcdiv_(grad, root)
            param.add_(buffer, alpha=-hp["lr"])
        else:
            param.addcdiv_(grad, root, value=-hp["lr"])


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam`` (L2 weight decay, optional AMSGrad).

    m = beta1 * m + (1 - beta1) * g and v = beta2 * v + (1 - beta2) * g^2,
    bias-corrected as m_hat = m / (1 - beta1^t), v_hat = v / (1 - beta2^t);
    p = p - lr * m_hat / (sqrt(v_hat) + eps). ``amsgrad=True`` uses the
    running maximum of v in place of v.
    """

    name = "adam"

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                 weight_decay=0.0, amsgrad=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad)

    def _check(self, hp):
        betas = hp["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        return {
            "lr": _check_number("lr", hp["lr"]),
            "betas": (_check_number("betas[0]", betas[0], 0.0, 1.0),
                      _check_number("betas[1]", betas[1], 0.0, 1.0)),
            "eps": _check_number("eps", hp["eps"]),
            "weight_decay": _check_number("weight_decay", hp["weight_decay"]),
            "amsgrad": _check_bool("amsgrad", hp["amsgrad"]),
        }

    def _update(self, param, grad, state):
        hp = self.hyperparameters
        beta1, beta2 = hp["betas"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(param)
            state["exp_avg_sq"] = torch.zeros_like(param)
            if hp["amsgrad"]:
                state["max_exp_avg_sq"] = torch.zeros_like(param)
        state["step"] += 1
        step = state["step"]
        grad = _with_weight_decay(grad, param, hp["weight_decay"])
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        if hp["amsgrad"]:
            torch.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
            second_moment = state["max_exp_avg_sq"]
        else:
            second_moment = exp_avg_sq

        # sqrt(v_hat) = sqrt(v) / sqrt(1 - beta2^t); the 1 / (1 - beta1^t) of
        # m_hat moves into the step size, as torch.optim computes it.
        bias_correction1 = 1 - beta1**step
        bias_correction2_sqrt = (1 - beta2**step) ** 0.5
        denominator = (second_moment.sqrt() / bias_correction2_sqrt).add_(hp["eps"])
        param.addcdiv_(exp_avg, denominator, value=-hp["lr"] / bias_correction1)


OPTIMIZERS: dict[str, type[Optimizer]] = {
    cls.name: cls for cls in (SGD, Momentum, Nesterov, Adagrad, Adadelta, RMSprop, Adam)
}


def _hyperparameter_names(cls: type[Optimizer]) -> list[str]:
    """List the keyword arguments of ``cls``, following ``**hyperparameters``
    up to the base classes that define them (Momentum and Nesterov to SGD)."""
    names: list[str] = []
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        parameters = inspect.signature(klass.__init__).parameters.values()
        for parameter in parameters:
            named = parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
            if named and parameter.name not in ("self", "params", *names):
                names.append(parameter.name)
        if not any(p.kind == p.VAR_KEYWORD for p in parameters):
            break
    return names


def make_optimizer(name: str, params, **hyperparameters) -> Optimizer:
    """Build the optimizer ``name`` over ``params`` with torch.optim's names.

    Names: ``sgd``, ``momentum`` (SGD, momentum 0.9 by default), ``nesterov``
    (SGD, momentum 0.9, nesterov=True), ``adagrad``, ``adadelta``,
    ``rmsprop``, ``adam``. Unknown names and hyperparameters raise
    ValueError naming them.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {name!r}")
    cls = OPTIMIZERS[name]
    valid = _hyperparameter_names(cls)
    unknown = sorted(set(hyperparameters) - set(valid))
    if unknown:
        raise ValueError(
            f"optimizer {name!r} has no hyperparameter {', '.join(map(repr, unknown))}; "
            f"valid: {valid}"
        )
    return cls(params, **hyperparameters)
