"""Losses on logits for labels in {-1, +1}, with their gradients.

Each loss returns the mean over the batch (one value per ensemble member) and
dL/dz, the gradient with respect to the logits z, with the 1/N of the mean
already applied.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["LOSSES", "bce_with_logits", "hinge", "get_loss", "accuracy"]


def bce_with_logits(logits: torch.Tensor, y: torch.Tensor):
    """Binary cross-entropy of a sigmoid output, computed on the logits.

    With t = (y + 1) / 2 in {0, 1} and z the logit,
    BCE = -t log sigmoid(z) - (1 - t) log(1 - sigmoid(z)) = softplus(-y z),
    a form that stays finite for any z (the naive form returns inf or nan
    once sigmoid(z) rounds to 0 or 1). dBCE/dz = sigmoid(z) - t.
    Shapes: ``logits`` (*E, N), ``y`` (N,) or (*E, N).
    """
    count = logits.shape[-1]
    loss = F.softplus(-y * logits).mean(dim=-1)
    target = (y + 1) / 2
    dlogits = (torch.sigmoid(logits) - target) / count
    return loss, dlogits


def hinge(logits: torch.Tensor, y: torch.Tensor):
    """Hinge loss max(0, 1 - y z), the loss of Daniely & Malach's experiments.

    At the kink y z = 1 the subgradient -y is used, the value autograd gives
    for ``torch.clamp(1 - y * z, min=0)``.
    """
    count = logits.shape[-1]
    margin = 1 - y * logits
    loss = margin.clamp(min=0).mean(dim=-1)
    dlogits = torch.where(margin >= 0, -y, torch.zeros_like(margin)) / count
    return loss, dlogits


LOSSES = {"bce": bce_with_logits, "hinge": hinge}


def get_loss(name: str):
    """Look a loss up by name: ``"bce"`` or ``"hinge"``."""
    if name not in LOSSES:
        raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {name!r}")
    return LOSSES[name]


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Fraction of examples whose predicted sign (z >= 0 is +1) equals y."""
    predictions = torch.where(logits >= 0, 1.0, -1.0).to(y.dtype)
    return (predictions == y).to(logits.dtype).mean(dim=-1)
