"""Kernel-regime diagnostics: empirical NTK, kernel distance, laziness.

These functions analyse trained models; they are not on the training path.
They work for every model with the ``models.MLP`` protocol (``forward``,
``backward``, ``parameters``, ``weights``) and a single output unit.

- The empirical neural tangent kernel of a model f with trained parameters
  theta is K(x, x') = <grad_theta f(x), grad_theta f(x')>. For random
  features it is phi(x) . phi(x') + 1 and never changes during training.
- The kernel distance of Fort et al. (NeurIPS 2020),
  d(K_1, K_2) = 1 - <K_1, K_2>_F / (||K_1||_F ||K_2||_F), is 0 for
  kernels that are positive multiples of each other and at most 1.
- Laziness is the relative change ||W_T - W_0||_F / ||W_0||_F of a weight
  matrix between initialization and the end of training.
"""

from __future__ import annotations

import logging
from typing import Iterable, Sequence

import pandas as pd
import torch
from torch.func import vmap
from tqdm.auto import tqdm

from .lazy import build_model, fit_model

__all__ = [
    "per_example_gradients",
    "empirical_ntk",
    "kernel_distance",
    "relative_change",
    "weight_changes",
    "laziness_by_width",
    "kernel_changes",
]

log = logging.getLogger(__name__)


def _check_single_output(model) -> None:
    if model.ensemble_shape:
        raise ValueError(
            f"kernel diagnostics need a single model, got ensemble shape "
            f"{model.ensemble_shape}; pass model.member(i)"
        )
    if model.sizes[-1] != 1:
        raise ValueError(f"kernel diagnostics need one output unit, got sizes {model.sizes}")


def per_example_gradients(model, X: torch.Tensor) -> torch.Tensor:
    """Return the Jacobian of the logits with respect to the trained parameters.

    Row i is grad_theta f(x_i), flattened over ``model.parameters()`` in
    their order: shape (N, P) for X of shape (N, n_0). Each row comes from the
    model's own ``backward`` with dL/dz = 1, vectorized over examples with
    ``torch.func.vmap``.
    """
    _check_single_output(model)

    def gradient_of_one(x):  # x: (n_0,)
        cache = model.forward(x.unsqueeze(0))
        grads = model.backward(cache, torch.ones_like(cache.logits))
        return torch.cat([g.reshape(-1) for g in grads])

    return vmap(gradient_of_one)(X)


def empirical_ntk(model, X1: torch.Tensor, X2: torch.Tensor | None = None) -> torch.Tensor:
    """Return the empirical NTK matrix K[i, j] = <grad f(x1_i), grad f(x2_j)>.

    Shape (N1, N2); with ``X2=None`` the Gram matrix of X1, (N1, N1).
    Memory is O((N1 + N2) P) for P trained parameters.
    """
    J1 = per_example_gradients(model, X1)
    if X2 is not None:
        return J1 @ per_example_gradients(model, X2).T
    # BLAS may round K[i, j] and K[j, i] differently; averaging with the
    # transpose makes the Gram matrix exactly symmetric.
    K = J1 @ J1.T
    return (K + K.T) / 2


def kernel_distance(K1: torch.Tensor, K2: torch.Tensor) -> float:
    """Return 1 - <K1, K2>_F / (||K1||_F ||K2||_F) of two kernel matrices.

    It is computed in float64, because float32 rounding alone moves the
    result by about 1e-7, more than the distance of nearly equal kernels. The exact value is at least 0 (Cauchy-Schwarz), and
    rounding errors below 0 are returned as 0.
    """
    if K1.shape != K2.shape:
        raise ValueError(f"kernel matrices differ in shape: {tuple(K1.shape)} and {tuple(K2.shape)}")
    K1, K2 = K1.double(), K2.double()
    norms = torch.linalg.matrix_norm(K1) * torch.linalg.matrix_norm(K2)
    if norms == 0:
        raise ValueError("kernel distance is undefined for a zero kernel matrix")
    return max(0.0, float(1 - (K1 * K2).sum() / norms))


def relative_change(initial: torch.Tensor, final: torch.Tensor) -> torch.Tensor:
    """Return ||final - initial||_F / ||initial||_F over the last two dimensions.

    For weight matrices of shape (*E, n_out, n_in); the result has shape (*E).
    """
    if initial.shape != final.shape:
        raise ValueError(f"tensors differ in shape: {tuple(initial.shape)} and {tuple(final.shape)}")
    if initial.ndim < 2:
        raise ValueError(f"relative_change needs matrices, got shape {tuple(initial.shape)}")
    return torch.linalg.matrix_norm(final - initial) / torch.linalg.matrix_norm(initial)


def weight_changes(initial_weights: Sequence[torch.Tensor], model) -> dict[str, float]:
    """Return {"W1": change, "W2": change, ...} of ``model.weights`` since
    ``initial_weights`` (a copy of them taken before training)."""
    return {
        f"W{layer}": float(relative_change(W0, W).mean())
        for layer, (W0, W) in enumerate(zip(initial_weights, model.weights), start=1)
    }


def laziness_by_width(task, models: Iterable[str], widths: Iterable[int], *,
                      progress: bool | None = None, **training) -> pd.DataFrame:
    """Train every model at every width and measure how far its weights moved.

    ``models`` contains ``"bp"`` (a ReLU MLP) or names of
    ``lazy.LAZY_MODELS``. ``training`` passes on the keyword arguments of
    ``lazy.fit_model`` other than ``name`` and ``width`` (optimizer, epochs,
    batch_size, seed, ...).
    Returns one row per (model, width, layer) with the relative change of that
    layer's weights and the final train and test accuracy of the run.
    """
    rows = []
    runs = [(name, width) for name in models for width in widths]
    for name, width in tqdm(runs, desc="laziness", disable=None if progress is None else not progress):
        sizes = (task.input_dim, width, 1)
        initial = [W.clone() for W in build_model(name, sizes, training["seed"], dtype=task.dtype).weights]
        model, history = fit_model(task, name, width=width, **dict(training, progress=False))
        for layer, change in weight_changes(initial, model).items():
            rows.append({
                "model": name, "width": width, "layer": layer, "relative change": change,
                "train accuracy": history.final("train_accuracy"),
                "test accuracy": history.final("test_accuracy"),
            })
        log.info("laziness: %s at width %d done", name, width)
    return pd.DataFrame(rows)


def kernel_changes(task, models: Iterable[str], width: int, X: torch.Tensor,
                   y: torch.Tensor, **training):
    """Compare each model's empirical NTK on X before and after training.

    ``training`` passes on the keyword arguments of ``lazy.fit_model`` other
    than ``name`` and ``width``. Returns ``(kernels, frame)``: ``kernels[name]`` is
    the pair (K_0, K_T) of (N, N) matrices, and ``frame`` has one row per
    model with the kernel distance d(K_0, K_T) and the kernel-target
    alignment 1 - d(K, y y^T) at both ends, which grows as the kernel adapts
    to the labels y.
    """
    target = y[:, None] * y[None, :]  # (N, N)
    kernels, rows = {}, []
    for name in models:
        sizes = (task.input_dim, width, 1)
        initial = build_model(name, sizes, training["seed"], dtype=task.dtype)
        trained, history = fit_model(task, name, width=width, **dict(training, progress=False))
        K0, KT = empirical_ntk(initial, X), empirical_ntk(trained, X)
        kernels[name] = (K0, KT)
        rows.append({
            "model": name,
            "kernel distance": kernel_distance(K0, KT),
            "alignment at init": 1 - kernel_distance(K0, target),
            "alignment after training": 1 - kernel_distance(KT, target),
            "test accuracy": history.final("test_accuracy"),
        })
    return kernels, pd.DataFrame(rows)
