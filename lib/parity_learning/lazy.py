"""Lazy models: depth-two networks that are linear in a fixed feature map.

Two families, both with ``sizes = (n_0, width, n_out)`` and the conventions
of :mod:`parity_learning.models` (rows are examples, ``W_l`` of shape
(n_l, n_{l-1}), an optional leading ensemble dimension E):

- **Gated networks (NTK regime).** A second first layer (G_1, c_1) of the
  same shape as (W_1, b_1) is drawn independently and frozen. It gates the
  trained pre-activations a_1 = X W_1^T + b_1 through g_1 = X G_1^T + c_1:

  - ``"ntk"``: h_1 = a_1 * sigmoid(g_1), which is ``torch.nn.functional.glu``
    over the concatenation [a_1, g_1] (the thesis's construction);
  - ``"ntk_galu"``: h_1 = a_1 * 1[g_1 > 0], Daniely & Malach's gated linear
    unit (GaLU). A ReLU unit is the special case G_1 = W_1, c_1 = b_1.

  W_1, b_1, W_2 and b_2 train and the gate stays fixed, so for a fixed output
  layer the logit is linear in W_1 over the features x * gate(x).
- **Random features.** The first layer is drawn once and frozen; only the
  output layer (W_2, b_2) trains, so the logit is exactly linear in the
  trained parameters over the features h_1 = phi(X W_1^T + b_1):

  - ``"gaussian_features"``: W_1 ~ N(0, 1/n_0), b_1 = 0, phi = ReLU;
  - ``"relu_features"``: PyTorch's default uniform W_1 and b_1, phi = ReLU;
  - ``"linear_features"``: uniform W_1, b_1 = 0 and phi the identity, so the
    feature map is linear in x (a first-layer bias would only add a constant
    that b_2 already provides);
  - ``"fourier_features"``: random Fourier features phi = cos with
    W_1 ~ N(0, (4 / sqrt(n_0))^2) and b_1 ~ U[0, 2 pi], the Gaussian baseline
    of Daniely & Malach's experiments.

Every model follows the protocol of ``models.MLP``: ``forward`` returns a
``ForwardCache``, ``backward`` returns the exact gradients of
``parameters()`` (the trained tensors only), and ``stack``/``member`` build
and split ensembles. Weights are drawn in the order W_1, b_1, W_2, b_2, as
``models.MLP`` draws them, and the gate G_1, c_1 comes last. So a gated
network or a ReLU-features model starts from the same weights as the ReLU
MLP built from the same generator state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

from .models import MLP, ForwardCache, activate, linear_gradients
from .optim import make_optimizer
from .rules import make_rule
from .seeding import torch_generator
from .train import train

__all__ = [
    "LAZY_MODELS",
    "GatedForwardCache",
    "GatedNetwork",
    "RandomFeatures",
    "build_model",
    "fit_model",
    "make_lazy_model",
]

LAZY_MODELS = (
    "ntk",
    "ntk_galu",
    "gaussian_features",
    "relu_features",
    "linear_features",
    "fourier_features",
)

GATES = {"ntk": "sigmoid", "ntk_galu": "step"}
FEATURES = {
    "gaussian_features": "gaussian",
    "relu_features": "relu",
    "linear_features": "linear",
    "fourier_features": "fourier",
}

#: Standard deviation of the random-Fourier weights is this over sqrt(n_0).
FOURIER_SCALE = 4.0


def _check_sizes(sizes: Sequence[int]) -> tuple[int, int, int]:
    sizes = tuple(sizes)
    if len(sizes) != 3:
        raise ValueError(
            f"sizes of a lazy model must be (n_0, width, n_out), got {sizes}"
        )
    for width in sizes:
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(
                f"every width in sizes must be a positive int, got {sizes}"
            )
    return sizes


def _check_dtype(dtype: torch.dtype) -> torch.dtype:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    return dtype


def _uniform(shape, bound, generator, dtype):
    return (torch.rand(shape, generator=generator, dtype=dtype) * 2 - 1) * bound


class _TwoLayerModel:
    """Shared structure of the lazy models: named tensors, ensembles, checks.

    Subclasses list their trained tensors in ``TRAINED`` and their frozen ones
    in ``FROZEN``, by attribute name.
    """

    TRAINED: tuple[str, ...] = ()
    FROZEN: tuple[str, ...] = ()

    name: str
    sizes: tuple[int, int, int]

    def _draw_layers(self, first_init: str, generator, dtype, device) -> None:
        n_0, width, n_out = self.sizes
        if first_init == "uniform":
            bound = 1 / math.sqrt(n_0)
            W1 = _uniform((width, n_0), bound, generator, dtype)
            b1 = _uniform(width, bound, generator, dtype)
        elif first_init == "uniform-no-bias":
            W1 = _uniform((width, n_0), 1 / math.sqrt(n_0), generator, dtype)
            b1 = torch.zeros(width, dtype=dtype)
        elif first_init == "gaussian":
            W1 = torch.randn((width, n_0), generator=generator, dtype=dtype)
            W1 = W1 / math.sqrt(n_0)
            b1 = torch.zeros(width, dtype=dtype)
        elif first_init == "fourier":
            W1 = torch.randn((width, n_0), generator=generator, dtype=dtype)
            W1 = W1 * (FOURIER_SCALE / math.sqrt(n_0))
            b1 = torch.rand(width, generator=generator, dtype=dtype) * (2 * math.pi)
        else:
            raise ValueError(f"unknown first-layer initialization {first_init!r}")
        bound = 1 / math.sqrt(width)
        W2 = _uniform((n_out, width), bound, generator, dtype)
        b2 = _uniform(n_out, bound, generator, dtype)
        self.W1, self.b1 = W1.to(device), b1.to(device)
        self.W2, self.b2 = W2.to(device), b2.to(device)

    # ----------------------------------------------------------------------
    # Structure

    @property
    def num_layers(self) -> int:
        return 2

    @property
    def weights(self) -> list[torch.Tensor]:
        """The weight matrices [W_1, W_2], trained or not, as ``MLP.weights``."""
        return [self.W1, self.W2]

    @property
    def biases(self) -> list[torch.Tensor]:
        """The bias vectors [b_1, b_2], trained or not, as ``MLP.biases``."""
        return [self.b1, self.b2]

    @property
    def ensemble_shape(self) -> tuple[int, ...]:
        return tuple(self.W1.shape[:-2])

    @property
    def dtype(self) -> torch.dtype:
        return self.W1.dtype

    @property
    def device(self) -> torch.device:
        return self.W1.device

    def parameters(self) -> list[torch.Tensor]:
        """Return the trained tensors, in the order of ``TRAINED``."""
        return [getattr(self, name) for name in self.TRAINED]

    def frozen_tensors(self) -> list[torch.Tensor]:
        """Return the tensors that define the model but never train."""
        return [getattr(self, name) for name in self.FROZEN]

    @classmethod
    def stack(cls, models: Sequence["_TwoLayerModel"]):
        """Stack independent models of one kind and shape into an ensemble."""
        models = list(models)
        if not models:
            raise ValueError("stack() needs at least one model")
        first = models[0]
        for model in models:
            if type(model) is not cls or model.name != first.name:
                raise ValueError(
                    f"only {cls.__name__} models of one kind can stack, got "
                    f"{type(model).__name__} {model.name!r} beside {first.name!r}"
                )
            if model.sizes != first.sizes or model.ensemble_shape != first.ensemble_shape:
                raise ValueError(
                    f"only models of one shape can stack, got sizes {model.sizes} "
                    f"beside {first.sizes}"
                )
        stacked = cls.__new__(cls)
        stacked.__dict__.update(first.__dict__)
        for name in cls.TRAINED + cls.FROZEN:
            setattr(stacked, name, torch.stack([getattr(m, name) for m in models]))
        return stacked

    def member(self, index: int):
        """Return member ``index`` of an ensemble as a model of its own (a view)."""
        if not self.ensemble_shape:
            raise ValueError("member() needs a model with an ensemble dimension")
        single = self.__class__.__new__(self.__class__)
        single.__dict__.update(self.__dict__)
        for name in self.TRAINED + self.FROZEN:
            setattr(single, name, getattr(self, name)[index])
        return single

    # ----------------------------------------------------------------------
    # Computation

    def _check_input(self, X: torch.Tensor) -> None:
        if X.shape[-1] != self.sizes[0]:
            raise ValueError(
                f"input has {X.shape[-1]} features, the model expects {self.sizes[0]}"
            )

    @staticmethod
    def _delta_out(cache: ForwardCache, dlogits: torch.Tensor) -> torch.Tensor:
        if dlogits.ndim < cache.pre_activations[-1].ndim:
            return dlogits.unsqueeze(-1)
        return dlogits

    def _output(self, h1: torch.Tensor) -> torch.Tensor:
        return h1 @ self.W2.mT + self.b2.unsqueeze(-2)  # (*E, N, n_out)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.name!r}, sizes={self.sizes}, "
                f"ensemble_shape={self.ensemble_shape}, dtype={self.dtype})")


@dataclass
class GatedForwardCache(ForwardCache):
    """A ``ForwardCache`` that also keeps the frozen gate values.

    ``gates`` is sigmoid(g_1) or 1[g_1 > 0], of shape (*E, N, width).
    """

    gates: torch.Tensor | None = None


class GatedNetwork(_TwoLayerModel):
    """A depth-two network whose hidden units are gated by a frozen layer.

    ``name`` is ``"ntk"`` (gate sigmoid(g_1)) or ``"ntk_galu"`` (gate
    1[g_1 > 0]). All four layers draw PyTorch's default uniform
    initialization, U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    """

    TRAINED = ("W1", "b1", "W2", "b2")
    FROZEN = ("G1", "c1")

    def __init__(self, name: str, sizes: Sequence[int], *, generator: torch.Generator,
                 dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"):
        if name not in GATES:
            raise ValueError(f"gated network name must be one of {sorted(GATES)}, got {name!r}")
        self.name = name
        self.gate = GATES[name]
        self.sizes = _check_sizes(sizes)
        dtype = _check_dtype(dtype)
        self._draw_layers("uniform", generator, dtype, device)
        n_0, width, _ = self.sizes
        bound = 1 / math.sqrt(n_0)
        self.G1 = _uniform((width, n_0), bound, generator, dtype).to(device)
        self.c1 = _uniform(width, bound, generator, dtype).to(device)

    def forward(self, X: torch.Tensor) -> GatedForwardCache:
        """Run the model on X of shape (N, n_0) or (*E, N, n_0)."""
        self._check_input(X)
        a1 = X @ self.W1.mT + self.b1.unsqueeze(-2)  # (*E, N, width)
        g1 = X @ self.G1.mT + self.c1.unsqueeze(-2)  # (*E, N, width)
        if self.gate == "sigmoid":
            gates = torch.sigmoid(g1)
        else:
            gates = (g1 > 0).to(a1.dtype)
        h1 = a1 * gates
        logits = self._output(h1)
        return GatedForwardCache([a1, logits], [X, h1], gates=gates)

    def backward(self, cache: GatedForwardCache, dlogits: torch.Tensor) -> list[torch.Tensor]:
        """Return [dW_1, db_1, dW_2, db_2], the exact gradient.

        The gate is a constant of the trained weights, so dh_1/da_1 is the gate.
        """
        delta2 = self._delta_out(cache, dlogits)  # (*E, N, n_out)
        X, h1 = cache.activations
        delta1 = (delta2 @ self.W2) * cache.gates  # (*E, N, width)
        return [*linear_gradients(delta1, X), *linear_gradients(delta2, h1)]


class RandomFeatures(_TwoLayerModel):
    """A frozen random first layer and a trained linear output layer.

    ``name`` is one of ``"gaussian_features"``, ``"relu_features"``,
    ``"linear_features"`` and ``"fourier_features"``; the module docstring
    gives each one's distribution and nonlinearity. The output layer draws
    PyTorch's default uniform initialization.
    """

    TRAINED = ("W2", "b2")
    FROZEN = ("W1", "b1")

    _FIRST_INIT = {"gaussian": "gaussian", "relu": "uniform",
                   "linear": "uniform-no-bias", "fourier": "fourier"}

    def __init__(self, name: str, sizes: Sequence[int], *, generator: torch.Generator,
                 dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"):
        if name not in FEATURES:
            raise ValueError(
                f"random-features name must be one of {sorted(FEATURES)}, got {name!r}"
            )
        self.name = name
        self.features = FEATURES[name]
        self.sizes = _check_sizes(sizes)
        dtype = _check_dtype(dtype)
        self._draw_layers(self._FIRST_INIT[self.features], generator, dtype, device)

    def feature_map(self, a1: torch.Tensor) -> torch.Tensor:
        """Apply phi to the first-layer pre-activations a_1."""
        if self.features == "fourier":
            return torch.cos(a1)
        if self.features == "linear":
            return a1
        return activate("relu", a1)

    def forward(self, X: torch.Tensor) -> ForwardCache:
        """Run the model on X of shape (N, n_0) or (*E, N, n_0)."""
        self._check_input(X)
        a1 = X @ self.W1.mT + self.b1.unsqueeze(-2)  # (*E, N, width)
        h1 = self.feature_map(a1)
        return ForwardCache([a1, self._output(h1)], [X, h1])

    def backward(self, cache: ForwardCache, dlogits: torch.Tensor) -> list[torch.Tensor]:
        """Return [dW_2, db_2], the exact gradient of the output layer."""
        delta2 = self._delta_out(cache, dlogits)  # (*E, N, n_out)
        return list(linear_gradients(delta2, cache.activations[1]))


def make_lazy_model(name: str, sizes: Sequence[int], *,
                    generator: torch.Generator, dtype: torch.dtype = torch.float32,
                    device: str | torch.device = "cpu"):
    """Build the lazy model ``name`` (one of ``LAZY_MODELS``) of ``sizes``.

    ``sizes`` is (n_0, width, n_out), usually with n_out = 1. The thesis's
    gated network ``"ntk"`` is the default lazy model of the book's chapters.
    """
    if name in GATES:
        return GatedNetwork(name, sizes, generator=generator, dtype=dtype, device=device)
    if name in FEATURES:
        return RandomFeatures(name, sizes, generator=generator, dtype=dtype, device=device)
    raise ValueError(f"lazy model name must be one of {LAZY_MODELS}, got {name!r}")


def build_model(name: str, sizes: Sequence[int], seed: int, *,
                dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"):
    """Build ``"bp"`` (a ReLU ``MLP``) or a lazy model from the stream ``init``.

    Both draw their trained first and output layers identically, so the BP
    network, the gated networks and ReLU features of one seed start from the
    same W_1, b_1, W_2, b_2.
    """
    generator = torch_generator(seed, "init")
    if name == "bp":
        return MLP(sizes, "relu", generator=generator, dtype=dtype, device=device)
    return make_lazy_model(name, sizes, generator=generator, dtype=dtype, device=device)


def fit_model(
    task,
    name: str = "ntk",
    *,
    width: int,
    optimizer: str = "sgd",
    optimizer_options: dict | None = None,
    epochs: int,
    batch_size: int,
    seed: int,
    loss: str = "bce",
    progress: bool | None = None,
):
    """Build and train a depth-two model of ``width`` hidden units on ``task``.

    ``name`` is ``"bp"`` (a ReLU ``MLP``) or one of ``LAZY_MODELS``; every
    model trains on its exact gradients (``rules.Backprop``). Returns
    (model, history). The initial weights come from the stream
    ``init`` of ``seed`` (see ``build_model``) and the batch order from
    ``batch-order``, as in ``experiments.fit_mlp``.
    """
    model = build_model(name, (task.input_dim, width, 1), seed, dtype=task.dtype)
    opt = make_optimizer(optimizer, model.parameters(), **(optimizer_options or {}))
    history = train(model, make_rule("bp"), opt, task, epochs=epochs,
                    batch_size=batch_size, seed=seed, loss=loss, progress=progress,
                    description=f"{name}/{optimizer} on {task.name}")
    return model, history
