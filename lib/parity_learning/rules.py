"""Learning rules: how a model turns the output error into parameter updates.

A learning rule maps a forward cache and dL/dlogits to one update direction
per trained tensor, in the order of ``model.parameters()``; an optimizer then
applies it. Backpropagation returns the exact gradient.
"""

from __future__ import annotations

import torch

from .models import ForwardCache

__all__ = ["LearningRule", "Backprop", "RULES", "make_rule"]


class LearningRule:
    """Interface of a learning rule."""

    name = "rule"

    def gradients(self, model, cache: ForwardCache, dlogits: torch.Tensor):
        """Return one update direction per tensor of ``model.parameters()``."""
        raise NotImplementedError

    def metrics(self, model, cache, dlogits, grads) -> dict[str, torch.Tensor]:
        """Return diagnostics of one step, one value per ensemble member."""
        return {}


class Backprop(LearningRule):
    """Backpropagation: the exact gradient, computed by the model itself."""

    name = "bp"

    def gradients(self, model, cache, dlogits):
        return model.backward(cache, dlogits)


RULES = {"bp": Backprop}


def make_rule(name: str, model=None, **options) -> LearningRule:
    """Build the learning rule ``name`` for ``model``.

    Rules that need state tied to the model's shapes (feedback matrices) take
    ``model`` and their own options; backpropagation takes neither.
    """
    if name not in RULES:
        raise ValueError(f"learning rule must be one of {sorted(RULES)}, got {name!r}")
    rule_class = RULES[name]
    if rule_class is Backprop:
        if options:
            raise ValueError(f"rule 'bp' takes no options, got {sorted(options)}")
        return Backprop()
    return rule_class(model, **options)
