"""Learning rules: how a model turns the output error into parameter updates.

A learning rule maps a forward cache and dL/dlogits to one update direction
per trained tensor, in the order of ``model.parameters()``; an optimizer then
applies it. Three rules share the interface:

- backpropagation (``"bp"``): the exact gradient;
- feedback alignment (``"fa"``, Lillicrap et al. 2014): the backward pass of
  BP with a fixed random matrix B_l in place of W_{l+1}^T at every hidden
  layer, so it is still sequential;
- direct feedback alignment (``"dfa"``, Nøkland 2016): the output error e goes
  straight to every hidden layer through its own fixed random B_l, so all
  hidden deltas come from e at once.

In the notation of ``models`` (rows are examples, W_l has shape
(n_l, n_{l-1})), the hidden deltas of the three rules are

    BP:   delta_l = (delta_{l+1} @ W_{l+1}) * f'(a_l)
    FA:   delta_l = (delta_{l+1} @ B_l.mT)  * f'(a_l),  B_l of shape (n_l, n_{l+1})
    DFA:  delta_l = (e @ B_l.mT)            * f'(a_l),  B_l of shape (n_l, n_L)

so B_l has the shape of the matrix it replaces in the maths, W_{l+1}^T for FA.
Every rule gives the output layer its true gradient, delta_L = e. With one
hidden layer FA and DFA coincide, and with B_1 = W_2^T both equal BP.
"""

from __future__ import annotations

import math
from typing import Sequence

import pandas as pd
import torch

from .models import MLP, ForwardCache, activation_derivative

__all__ = [
    "LearningRule",
    "Backprop",
    "FeedbackAlignment",
    "DirectFeedbackAlignment",
    "FEEDBACK_DISTRIBUTIONS",
    "RULES",
    "make_rule",
    "angle_degrees",
    "check_gradients",
]

FEEDBACK_DISTRIBUTIONS = ("uniform", "gaussian")


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


def angle_degrees(u: torch.Tensor, v: torch.Tensor, dims: int = 2) -> torch.Tensor:
    """Return the angle in degrees between u and v over their last ``dims`` axes.

    Leading axes (an ensemble dimension) are kept, so two (E, m, n) tensors give
    E angles. The angle is computed in float64; it is NaN where either tensor
    is zero, because the direction of a zero update is undefined.
    """
    u = u.to(torch.float64).flatten(start_dim=u.ndim - dims)
    v = v.to(torch.float64).flatten(start_dim=v.ndim - dims)
    norms = torch.linalg.vector_norm(u, dim=-1) * torch.linalg.vector_norm(v, dim=-1)
    cosine = (u * v).sum(dim=-1) / norms
    cosine = torch.where(norms > 0, cosine.clamp(-1.0, 1.0), torch.nan)
    return torch.rad2deg(torch.arccos(cosine))


def _output_delta(cache: ForwardCache, dlogits: torch.Tensor) -> torch.Tensor:
    """Return dL/da_L with its output axis, shape (*E, N, n_L)."""
    if dlogits.ndim < cache.pre_activations[-1].ndim:
        return dlogits.unsqueeze(-1)
    return dlogits


class _FeedbackRule(LearningRule):
    """Shared machinery of FA and DFA: the feedback matrices and the metrics.

    ``model`` is an ``MLP``, with or without an ensemble dimension. The
    feedback matrices come from ``feedback`` when it is given, otherwise they
    are drawn once, here, from ``generator``:

    - ``distribution="uniform"`` (the default) draws U[-scale, scale],
      ``"gaussian"`` draws N(0, scale^2);
    - the default ``scale`` is 1/sqrt(fan), the form of bound Nøkland (2016)
      used, with fan the number of columns of B_l: the width of the error
      signal that B_l maps back (n_{l+1} for FA, n_L for DFA).

    NOTE: with one output unit the default DFA entries reach 1, about
    sqrt(n_{L-1}) times the entries of W_L at PyTorch's initialisation, so
    the hidden updates are that much larger than BP's at the same learning
    rate. Lower ``scale`` or the learning rate if training diverges.

    For an ensemble of E members, ``generator`` is either one generator or a
    sequence of E generators. From one generator the members draw their
    matrices in turn, member 0 first, so member 0 gets what a single model
    would. With one generator per member, member e gets exactly the matrices
    that a single model built with ``generator[e]`` gets. ``feedback`` is a list of tensors, one per
    hidden layer, each with the full shape (*E, rows, columns).
    """

    def __init__(
        self,
        model,
        *,
        generator: torch.Generator | Sequence[torch.Generator] | None = None,
        distribution: str | None = None,
        scale: float | None = None,
        feedback: Sequence[torch.Tensor] | None = None,
    ):
        if not isinstance(model, MLP):
            raise TypeError(
                f"rule {self.name!r} needs a parity_learning.models.MLP, got "
                f"{type(model).__name__}"
            )
        # NOTE: a subclass of MLP whose forward pass is not the plain
        # a_l = h_{l-1} W_l^T + b_l, h_l = f(a_l) would get wrong deltas here.
        self.activation = model.activation
        self.num_layers = model.num_layers
        shapes = [model.ensemble_shape + shape for shape in self.feedback_shapes(model.sizes)]
        if feedback is not None:
            if distribution is not None or scale is not None:
                raise ValueError(
                    "distribution and scale draw feedback matrices; they cannot be "
                    "combined with explicit feedback matrices"
                )
            matrices = self._check_feedback(feedback, shapes, model)
        else:
            distribution = "uniform" if distribution is None else distribution
            if distribution not in FEEDBACK_DISTRIBUTIONS:
                raise ValueError(
                    f"distribution must be one of {FEEDBACK_DISTRIBUTIONS}, got "
                    f"{distribution!r}"
                )
            if scale is not None:
                if isinstance(scale, bool) or not isinstance(scale, (int, float)):
                    raise TypeError(f"scale must be a positive number, got {scale!r}")
                if not (math.isfinite(scale) and scale > 0):
                    raise ValueError(f"scale must be a positive finite number, got {scale}")
            generators = self._member_generators(generator, model.ensemble_shape)
            matrices = self._draw(generators, shapes, distribution, scale, model)
        self.distribution = distribution
        self.scale = scale
        self._store(matrices)

    # ------------------------------------------------------------------
    # Feedback matrices

    @staticmethod
    def feedback_shapes(sizes: Sequence[int]) -> list[tuple[int, int]]:
        """Return the shape of every B_l, l = 1 .. L-1, for widths ``sizes``."""
        raise NotImplementedError

    def _store(self, matrices: list[torch.Tensor]) -> None:
        self.feedback = matrices

    def _member_generators(self, generator, ensemble_shape):
        if generator is None:
            raise TypeError(
                f"rule {self.name!r} draws its feedback matrices from a generator: "
                "pass generator=torch_generator(seed, 'feedback') or feedback=[...]"
            )
        if isinstance(generator, torch.Generator):
            return [generator]
        generators = list(generator)
        members = math.prod(ensemble_shape) if ensemble_shape else 1
        if len(generators) != members or not all(
            isinstance(g, torch.Generator) for g in generators
        ):
            raise ValueError(
                f"generator must be one torch.Generator or one per ensemble member "
                f"({members} for ensemble shape {ensemble_shape}), got {generator!r}"
            )
        return generators

    def _draw(self, generators, shapes, distribution, scale, model):
        ensemble_shape = model.ensemble_shape
        members = math.prod(ensemble_shape) if ensemble_shape else 1
        per_member = []
        for member in range(members):
            g = generators[member] if len(generators) > 1 else generators[0]
            matrices = []
            for shape in shapes:
                rows, columns = shape[-2:]
                bound = (1 / math.sqrt(columns)) if scale is None else float(scale)
                if distribution == "uniform":
                    B = (torch.rand((rows, columns), generator=g, dtype=model.dtype) * 2 - 1) * bound
                else:
                    B = torch.randn((rows, columns), generator=g, dtype=model.dtype) * bound
                matrices.append(B)
            per_member.append(matrices)
        stacked = []
        for layer, shape in enumerate(shapes):
            B = torch.stack([m[layer] for m in per_member]).reshape(shape)
            stacked.append(B.to(model.device))
        return stacked

    def _check_feedback(self, feedback, shapes, model):
        feedback = list(feedback)
        if len(feedback) != len(shapes):
            raise ValueError(
                f"rule {self.name!r} needs one feedback matrix per hidden layer "
                f"({len(shapes)} for sizes {model.sizes}), got {len(feedback)}"
            )
        checked = []
        for layer, (B, shape) in enumerate(zip(feedback, shapes), start=1):
            if not isinstance(B, torch.Tensor):
                raise TypeError(f"feedback matrix B_{layer} must be a torch.Tensor, got {B!r}")
            if tuple(B.shape) != shape:
                raise ValueError(
                    f"feedback matrix B_{layer} has shape {tuple(B.shape)}, expected "
                    f"{shape} for sizes {model.sizes}"
                )
            checked.append(B.to(dtype=model.dtype, device=model.device))
        return checked

    # ------------------------------------------------------------------
    # Updates

    def hidden_deltas(self, model, cache, delta_out) -> list[torch.Tensor]:
        """Return [delta_1, ..., delta_{L-1}], each of shape (*E, N, n_l)."""
        raise NotImplementedError

    def gradients(self, model, cache, dlogits):
        delta_out = _output_delta(cache, dlogits)
        deltas = self.hidden_deltas(model, cache, delta_out) + [delta_out]
        return model.gradients_from_deltas(cache, deltas)

    def _derivative(self, cache, layer):
        a, h = cache.pre_activations[layer - 1], cache.activations[layer]
        return activation_derivative(self.activation, a, h)

    # ------------------------------------------------------------------
    # Alignment metrics

    def reference_feedback(self, model, layer: int) -> torch.Tensor:
        """Return the matrix BP uses where this rule uses B_layer."""
        raise NotImplementedError

    def metrics(self, model, cache, dlogits, grads):
        """Return the alignment angles of this step, in degrees, per member.

        ``angle_update_layer{l}`` is the angle between this rule's update of
        W_l and the BP gradient of W_l on the same batch and weights, for every
        hidden layer l. ``angle_feedback_layer{l}`` is the angle between B_l and
        ``reference_feedback(model, l)``. An angle below 90 degrees means the
        update still points downhill.
        """
        exact = model.backward(cache, dlogits)
        values = {}
        for layer in range(1, self.num_layers):
            index = 2 * (layer - 1)
            values[f"angle_update_layer{layer}"] = angle_degrees(grads[index], exact[index])
            reference = self.reference_feedback(model, layer)
            values[f"angle_feedback_layer{layer}"] = angle_degrees(
                self.feedback[layer - 1], reference
            )
        return values


class FeedbackAlignment(_FeedbackRule):
    """Feedback alignment: BP's backward pass with fixed random B_l for W_{l+1}^T.

    ``feedback[l - 1]`` is B_l of shape (*E, n_l, n_{l+1}). The pass stays
    sequential: delta_l needs delta_{l+1}.
    """

    name = "fa"

    @staticmethod
    def feedback_shapes(sizes):
        return [(sizes[l], sizes[l + 1]) for l in range(1, len(sizes) - 1)]

    def hidden_deltas(self, model, cache, delta_out):
        deltas = [delta_out]
        for layer in range(self.num_layers - 1, 0, -1):
            back = deltas[0] @ self.feedback[layer - 1].mT  # (*E, N, n_layer)
            deltas.insert(0, back * self._derivative(cache, layer))
        return deltas[:-1]

    def reference_feedback(self, model, layer):
        """Return W_{layer+1}^T, the matrix that B_layer replaces."""
        return model.weights[layer].mT


class DirectFeedbackAlignment(_FeedbackRule):
    """Direct feedback alignment: e goes to every hidden layer through B_l.

    ``feedback[l - 1]`` is B_l of shape (*E, n_l, n_L). The matrices are
    views into one stacked matrix of shape (*E, n_1 + ... + n_{L-1}, n_L), so
    that all hidden deltas come from a single product with e.

    ``angle_feedback_layer{l}`` compares B_l with the product
    W_{l+1}^T W_{l+2}^T ... W_L^T, the path by which BP carries e to layer l
    once the derivatives f'(a) are left out; for the last hidden layer that
    product is W_L^T itself, the matrix of the same shape as B_{L-1}.
    """

    name = "dfa"

    @staticmethod
    def feedback_shapes(sizes):
        return [(sizes[l], sizes[-1]) for l in range(1, len(sizes) - 1)]

    def _store(self, matrices):
        if not matrices:
            self.stacked_feedback = None
            self.feedback = []
            return
        self.stacked_feedback = torch.cat(matrices, dim=-2)  # (*E, sum n_l, n_L)
        widths = [B.shape[-2] for B in matrices]
        self._widths = widths
        self.feedback = list(torch.split(self.stacked_feedback, widths, dim=-2))

    def hidden_deltas(self, model, cache, delta_out):
        if self.stacked_feedback is None:
            return []
        signal = delta_out @ self.stacked_feedback.mT  # (*E, N, n_1 + ... + n_{L-1})
        pieces = torch.split(signal, self._widths, dim=-1)
        return [
            piece * self._derivative(cache, layer)
            for layer, piece in enumerate(pieces, start=1)
        ]

    def reference_feedback(self, model, layer):
        """Return W_{layer+1}^T ... W_L^T, of the shape of B_layer."""
        product = model.weights[layer].mT
        for W in model.weights[layer + 1 :]:
            product = product @ W.mT
        return product


RULES = {"bp": Backprop, "fa": FeedbackAlignment, "dfa": DirectFeedbackAlignment}


def make_rule(name: str, model=None, **options) -> LearningRule:
    """Build the learning rule ``name`` for ``model``.

    Rules that need state tied to the model's shapes (feedback matrices) take
    ``model`` and their own options; backpropagation takes neither. FA and
    DFA take ``generator``, ``distribution``, ``scale`` and ``feedback``, as
    documented in ``FeedbackAlignment`` and ``DirectFeedbackAlignment``.
    """
    if name not in RULES:
        raise ValueError(f"learning rule must be one of {sorted(RULES)}, got {name!r}")
    rule_class = RULES[name]
    if rule_class is Backprop:
        if options:
            raise ValueError(f"rule 'bp' takes no options, got {sorted(options)}")
        return Backprop()
    return rule_class(model, **options)


def check_gradients(model, X, y, loss: str = "bce", *, epsilon: float = 1e-6,
                    entries: int | None = None, generator: torch.Generator | None = None):
    """Compare the hand-written BP gradients with autograd and finite differences.

    Runs in float64 on a copy of ``model``, which must be a single model, not
    an ensemble. Returns a table with one row per parameter, in the order
    W_1, b_1, ..., W_L, b_L. Each row gives the largest absolute difference of
    the hand-written gradient from autograd and from central finite
    differences (L(theta + epsilon) - L(theta - epsilon)) / (2 epsilon). Finite differences cost two forward
    passes per entry, so ``entries`` limits them to that many entries per
    tensor, drawn from ``generator``; None checks every entry.
    """
    from .losses import get_loss

    if model.ensemble_shape:
        raise ValueError(
            f"check_gradients needs a single model, got ensemble shape {model.ensemble_shape}"
        )
    if entries is not None and generator is None:
        raise TypeError("entries needs a generator to draw the checked entries from")
    loss_fn = get_loss(loss)
    copy = MLP.__new__(MLP)
    copy.__dict__.update(model.__dict__)
    copy.weights = [W.detach().to(torch.float64).clone() for W in model.weights]
    copy.biases = [b.detach().to(torch.float64).clone() for b in model.biases]
    X, y = X.to(torch.float64), y.to(torch.float64)

    cache = copy.forward(X)
    _, dlogits = loss_fn(cache.logits, y)
    manual = copy.backward(cache, dlogits)

    params = copy.parameters()
    for p in params:
        p.requires_grad_(True)
    value, _ = loss_fn(copy.forward(X).logits, y)
    automatic = torch.autograd.grad(value, params)
    for p in params:
        p.requires_grad_(False)

    rows = []
    names = [f"{kind}_{l}" for l in range(1, copy.num_layers + 1) for kind in ("W", "b")]
    for name, p, g_manual, g_auto in zip(names, params, manual, automatic):
        flat = p.view(-1)
        if entries is None or entries >= flat.numel():
            chosen = torch.arange(flat.numel())
        else:
            chosen = torch.randperm(flat.numel(), generator=generator)[:entries]
        numeric = torch.empty(len(chosen), dtype=torch.float64)
        for i, index in enumerate(chosen.tolist()):
            original = flat[index].item()
            flat[index] = original + epsilon
            up = loss_fn(copy.forward(X).logits, y)[0]
            flat[index] = original - epsilon
            down = loss_fn(copy.forward(X).logits, y)[0]
            flat[index] = original
            numeric[i] = (up - down) / (2 * epsilon)
        rows.append({
            "parameter": name,
            "shape": tuple(p.shape),
            "max |manual - autograd|": float((g_manual - g_auto).abs().max()),
            "max |manual - finite difference|": float(
                (g_manual.reshape(-1)[chosen] - numeric).abs().max()
            ),
            "entries checked by finite differences": len(chosen),
        })
    return pd.DataFrame(rows)
