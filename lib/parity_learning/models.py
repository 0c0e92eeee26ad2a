"""Multilayer perceptrons with hand-written backpropagation.

Conventions, used by every module of the package:

- A layer l maps h_{l-1} to a_l = h_{l-1} W_l^T + b_l and h_l = f(a_l), with
  ``W_l`` of shape (n_l, n_{l-1}) as in ``torch.nn.Linear``; h_0 = X. The last
  layer L is linear: its pre-activation a_L holds the logits.
- Examples are rows: X has shape (N, n_0).
- A model may carry a leading ensemble dimension E: then every ``W_l`` has
  shape (E, n_l, n_{l-1}), every ``b_l`` (E, n_l), and each member trains as
  an independent network while all of them share the matrix products. X may
  be (N, n_0), shared by all members, or (E, N, n_0).
- Gradients are sums over the batch of dL/dparameter for a loss L that is
  already a mean, so a loss function supplies dL/da_L with the 1/N inside.

Nothing here calls autograd; the tests compare against it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

__all__ = [
    "ACTIVATIONS",
    "INITS",
    "ForwardCache",
    "MLP",
    "activate",
    "activation_derivative",
    "linear_gradients",
]

ACTIVATIONS = ("relu", "tanh", "sigmoid", "linear")
INITS = ("uniform", "gaussian")


def check_activation(name: str) -> str:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")
    return name


def activate(name: str, a: torch.Tensor) -> torch.Tensor:
    """Apply the activation ``name`` elementwise."""
    if name == "relu":
        return torch.relu(a)
    if name == "tanh":
        return torch.tanh(a)
    if name == "sigmoid":
        return torch.sigmoid(a)
    if name == "linear":
        return a
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")


def activation_derivative(name: str, a: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """Return f'(a) given the pre-activation ``a`` and the output h = f(a).

    The ReLU derivative at 0 is taken as 0, as autograd does.
    """
    if name == "relu":
        return (a > 0).to(a.dtype)
    if name == "tanh":
        return 1 - h * h
    if name == "sigmoid":
        return h * (1 - h)
    if name == "linear":
        return torch.ones_like(a)
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")


def linear_gradients(delta: torch.Tensor, h_prev: torch.Tensor):
    """Return (dW, db) of a linear layer from its delta and its input.

    ``delta`` is dL/da of shape (*E, N, n_out) and ``h_prev`` the layer input
    of shape (*E, N, n_in) or (N, n_in); dW has shape (*E, n_out, n_in).
    """
    return delta.mT @ h_prev, delta.sum(dim=-2)


@dataclass
class ForwardCache:
    """What a forward pass keeps for a learning rule.

    ``pre_activations[l - 1]`` is a_l and ``activations[l]`` is h_l, so
    ``activations[0]`` is the input X and ``pre_activations[-1]`` the logits
    a_L of shape (*E, N, n_L).
    """

    pre_activations: list[torch.Tensor]
    activations: list[torch.Tensor]

    @property
    def logits(self) -> torch.Tensor:
        """The network output a_L, with a single output unit squeezed away."""
        a_last = self.pre_activations[-1]
        return a_last[..., 0] if a_last.shape[-1] == 1 else a_last


class MLP:
    """A fully connected network trained with hand-written gradients.

    ``sizes`` lists the widths n_0 (input), n_1, ..., n_L (output); the hidden
    layers use ``activation`` and the output layer is linear. Weights and
    biases come from ``generator``: ``init="uniform"`` is PyTorch's
    ``nn.Linear`` default, U(-1/sqrt(n_in), 1/sqrt(n_in)) for both, and
    ``init="gaussian"`` draws weights from N(0, 1/n_in) and sets biases to 0.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str = "relu",
        *,
        generator: torch.Generator,
        init: str = "uniform",
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ):
        sizes = tuple(sizes)
        if len(sizes) < 2:
            raise ValueError(f"sizes needs an input and an output width, got {sizes}")
        for width in sizes:
            if isinstance(width, bool) or not isinstance(width, int) or width < 1:
                raise ValueError(f"every width in sizes must be a positive int, got {sizes}")
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        self.activation = check_activation(activation)
        self.sizes = sizes
        self.weights: list[torch.Tensor] = []
        self.biases: list[torch.Tensor] = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            bound = 1 / math.sqrt(n_in)
            shape = (n_out, n_in)
            if init == "uniform":
                W = (torch.rand(shape, generator=generator, dtype=dtype) * 2 - 1) * bound
                b = (torch.rand(n_out, generator=generator, dtype=dtype) * 2 - 1) * bound
            else:
                W = torch.randn(shape, generator=generator, dtype=dtype) * bound
                b = torch.zeros(n_out, dtype=dtype)
            self.weights.append(W.to(device))
            self.biases.append(b.to(device))

    # ----------------------------------------------------------------------
    # Structure

    @property
    def num_layers(self) -> int:
        return len(self.weights)

    @property
    def ensemble_shape(self) -> tuple[int, ...]:
        return tuple(self.weights[0].shape[:-2])

    @property
    def dtype(self) -> torch.dtype:
        return self.weights[0].dtype

    @property
    def device(self) -> torch.device:
        return self.weights[0].device

    def parameters(self) -> list[torch.Tensor]:
        """Return the trained tensors in the order W_1, b_1, ..., W_L, b_L."""
        return [t for pair in zip(self.weights, self.biases) for t in pair]

    def frozen_tensors(self) -> list[torch.Tensor]:
        """Return tensors that define the model but never train (none here)."""
        return []

    @classmethod
    def stack(cls, models: Sequence["MLP"]) -> "MLP":
        """Stack independent models of one architecture into an ensemble."""
        first = models[0]
        if any(m.sizes != first.sizes or m.activation != first.activation for m in models):
            raise ValueError("only models of one architecture and activation can stack")
        stacked = cls.__new__(cls)
        stacked.__dict__.update(first.__dict__)
        stacked.weights = [torch.stack(ws) for ws in zip(*(m.weights for m in models))]
        stacked.biases = [torch.stack(bs) for bs in zip(*(m.biases for m in models))]
        return stacked

    def member(self, index: int) -> "MLP":
        """Return member ``index`` of an ensemble as a model of its own (a view)."""
        if not self.ensemble_shape:
            raise ValueError("member() needs a model with an ensemble dimension")
        single = self.__class__.__new__(self.__class__)
        single.__dict__.update(self.__dict__)
        single.weights = [W[index] for W in self.weights]
        single.biases = [b[index] for b in self.biases]
        return single

    # ----------------------------------------------------------------------
    # Computation

    def forward(self, X: torch.Tensor) -> ForwardCache:
        """Run the network on X of shape (N, n_0) or (*E, N, n_0)."""
        if X.shape[-1] != self.sizes[0]:
            raise ValueError(
                f"input has {X.shape[-1]} features, the network expects {self.sizes[0]}"
            )
        h = X
        pre_activations, activations = [], [X]
        for layer, (W, b) in enumerate(zip(self.weights, self.biases), start=1):
            a = h @ W.mT + b.unsqueeze(-2)  # (*E, N, n_l)
            pre_activations.append(a)
            if layer < self.num_layers:
                h = activate(self.activation, a)
                activations.append(h)
        return ForwardCache(pre_activations, activations)

    def hidden_deltas_from_output(self, cache: ForwardCache, delta_out: torch.Tensor):
        """Backpropagate dL/da_L through W_L^T, ..., W_2^T: the exact deltas."""
        deltas = [delta_out]
        for layer in range(self.num_layers - 1, 0, -1):
            a, h = cache.pre_activations[layer - 1], cache.activations[layer]
            back = deltas[0] @ self.weights[layer]  # (*E, N, n_layer)
            deltas.insert(0, back * activation_derivative(self.activation, a, h))
        return deltas

    def gradients_from_deltas(self, cache: ForwardCache, deltas) -> list[torch.Tensor]:
        """Turn the deltas of every layer into [dW_1, db_1, ..., dW_L, db_L]."""
        grads = []
        for delta, h_prev in zip(deltas, cache.activations):
            grads.extend(linear_gradients(delta, h_prev))
        return grads

    def backward(self, cache: ForwardCache, dlogits: torch.Tensor) -> list[torch.Tensor]:
        """Return the exact gradient of every parameter (backpropagation).

        ``dlogits`` is dL/da_L, of the shape of ``cache.logits``.
        """
        delta_out = dlogits.unsqueeze(-1) if dlogits.ndim < cache.pre_activations[-1].ndim else dlogits
        deltas = self.hidden_deltas_from_output(cache, delta_out)
        return self.gradients_from_deltas(cache, deltas)
