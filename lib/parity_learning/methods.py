"""The methods of the comparison grid: a name maps to a model and a learning rule.

Every method builds a network of the widths ``sizes`` = (n_0, n_1, ..., n_L)
and the rule that trains it:

- ``bp``: an MLP trained by backpropagation;
- ``fa``: an MLP trained by feedback alignment (only with two or more hidden
  layers, because with one hidden layer FA and DFA are the same update);
- ``dfa``: an MLP trained by direct feedback alignment;
- ``ntk``, ``ntk_galu``, ``gaussian_features``, ``relu_features``,
  ``linear_features``, ``fourier_features``: the lazy models, trained by
  backpropagation on the layers they leave trainable.

Initial weights come from the stream ``init`` of the run seed and feedback
matrices from ``feedback``. An ensemble is built member by member from its
seeds and stacked, so member e starts exactly where a single run with seed e
starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from .models import MLP
from .rules import make_rule
from .seeding import check_seed, torch_generator

__all__ = ["Method", "METHODS", "get_method", "build_method"]


@dataclass(frozen=True)
class Method:
    """One entry of the registry: how to build the model and its rule."""

    name: str
    label: str  # name shown in tables and figures
    rule: str  # learning rule of rules.py: "bp", "fa" or "dfa"
    lazy_model: str | None = None  # name for lazy.make_lazy_model, or None for an MLP
    min_hidden_layers: int = 1
    max_hidden_layers: int | None = None

    def supports(self, hidden_layers: int) -> bool:
        """Return whether the method is defined for ``hidden_layers`` hidden layers."""
        if hidden_layers < self.min_hidden_layers:
            return False
        return self.max_hidden_layers is None or hidden_layers <= self.max_hidden_layers


METHODS = {
    method.name: method
    for method in (
        Method("bp", "BP", "bp"),
        Method("fa", "FA", "fa", min_hidden_layers=2),
        Method("dfa", "DFA", "dfa"),
        Method("ntk", "NTK (sigmoid gate)", "bp", "ntk", max_hidden_layers=1),
        Method("ntk_galu", "NTK (GaLU)", "bp", "ntk_galu", max_hidden_layers=1),
        Method("gaussian_features", "Gaussian features", "bp", "gaussian_features",
               max_hidden_layers=1),
        Method("relu_features", "ReLU features", "bp", "relu_features",
               max_hidden_layers=1),
        Method("linear_features", "linear features", "bp", "linear_features",
               max_hidden_layers=1),
        Method("fourier_features", "Fourier features", "bp", "fourier_features",
               max_hidden_layers=1),
    )
}


def get_method(name: str) -> Method:
    """Look a method up by name, or raise ValueError listing the valid names."""
    if name not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {name!r}")
    return METHODS[name]


def _build_model(method: Method, sizes, seed, activation, dtype, device):
    generator = torch_generator(seed, "init")
    if method.lazy_model is None:
        return MLP(sizes, activation, generator=generator, dtype=dtype, device=device)
    from .lazy import make_lazy_model

    return make_lazy_model(method.lazy_model, sizes, generator=generator,
                           dtype=dtype, device=device)


def _build_rule(method: Method, model, seeds: Sequence[int], ensemble: bool):
    if method.rule == "bp":
        return make_rule("bp")
    generators = [torch_generator(seed, "feedback") for seed in seeds]
    if not ensemble:
        return make_rule(method.rule, model, generator=generators[0])
    return make_rule(method.rule, model, generator=generators)


def build_method(
    name: str,
    sizes: Sequence[int],
    seed: int | Sequence[int],
    *,
    activation: str = "relu",
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
):
    """Build the model and learning rule of method ``name``; return (model, rule).

    ``seed`` is one run seed, or a sequence of seeds for an ensemble with one
    member per seed (a leading dimension E = len(seed)). ``activation`` applies
    to the MLP methods; the lazy models fix their own nonlinearity.
    """
    method = get_method(name)
    sizes = tuple(sizes)
    hidden_layers = len(sizes) - 2
    if not method.supports(hidden_layers):
        upper = method.max_hidden_layers
        valid = f">= {method.min_hidden_layers}" if upper is None else (
            f"{method.min_hidden_layers}..{upper}")
        raise ValueError(
            f"method {name!r} needs {valid} hidden layers, got sizes {sizes} "
            f"({hidden_layers} hidden layers)"
        )
    ensemble = not isinstance(seed, int)
    seeds = [check_seed(s) for s in seed] if ensemble else [check_seed(seed)]
    if ensemble and not seeds:
        raise ValueError("an ensemble needs at least one seed, got an empty sequence")
    models = [_build_model(method, sizes, s, activation, dtype, device) for s in seeds]
    model = type(models[0]).stack(models) if ensemble else models[0]
    return model, _build_rule(method, model, seeds, ensemble)
