"""Two-dimensional test functions and the optimizers' paths over them.

Each ``Surface`` has a value and a hand-written gradient, written with plain
arithmetic so that both accept floats, numpy arrays and torch tensors. The
optimizers of :mod:`parity_learning.optim` run on a single tensor of shape
(2,) that contains the point (x, y). ``nesterov_lookahead`` implements the
textbook (look-ahead) form of Nesterov momentum, for comparison with the
PyTorch form behind the ``nesterov`` optimizer.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from .optim import make_optimizer

__all__ = [
    "Surface",
    "SURFACES",
    "ill_conditioned_quadratic",
    "rosenbrock",
    "beale",
    "get_surface",
    "trajectory",
    "tune_learning_rate",
    "nesterov_lookahead",
    "lookahead_points",
    "plot_trajectories",
    "plot_path_panels",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Surface:
    """A 2-D test function f(x, y) with its gradient, minimum and plot window.

    ``value(x, y)`` returns f and ``gradient(x, y)`` the pair (df/dx, df/dy).
    ``minimum`` is the minimizer and ``min_value`` is f there. ``start`` is
    the default starting point, and ``bounds`` is the window
    ((x_min, x_max), (y_min, y_max)) of a contour plot.
    """

    name: str
    label: str
    value: Callable
    gradient: Callable
    minimum: tuple[float, float]
    min_value: float
    start: tuple[float, float]
    bounds: tuple[tuple[float, float], tuple[float, float]]

    def gap(self, path: np.ndarray) -> np.ndarray:
        """Return f - min f along ``path`` of shape (T, 2), NaN where it diverged."""
        path = np.asarray(path, dtype=np.float64)
        with np.errstate(over="ignore", invalid="ignore"):  # far points give inf
            return self.value(path[:, 0], path[:, 1]) - self.min_value


def ill_conditioned_quadratic(condition: float = 50.0, angle: float = 0.0) -> Surface:
    """Build f = (u^2 + condition * w^2) / 2, with (u, w) the point rotated by ``angle``.

    The Hessian has eigenvalues 1 and ``condition``. With ``angle = 0`` its
    axes are the coordinate axes, so a per-coordinate step size (Adagrad,
    RMSProp, Adam) can undo the conditioning. Any other angle mixes the two
    coordinates, so that it cannot.
    """
    if not condition >= 1:
        raise ValueError(f"condition must be >= 1, got {condition}")
    cos, sin = math.cos(angle), math.sin(angle)

    def rotate(x, y):
        return cos * x + sin * y, -sin * x + cos * y

    def value(x, y):
        u, w = rotate(x, y)
        return 0.5 * (u * u + condition * w * w)

    def gradient(x, y):
        u, w = rotate(x, y)
        du, dw = u, condition * w
        return cos * du - sin * dw, sin * du + cos * dw

    return Surface("quadratic", f"quadratic, condition number {condition:g}", value,
                   gradient, (0.0, 0.0), 0.0, (-4.0, 1.0), ((-4.5, 1.5), (-1.5, 1.5)))


def rosenbrock(a: float = 1.0, b: float = 100.0) -> Surface:
    """Build Rosenbrock's valley f = (a - x)^2 + b (y - x^2)^2, minimum (a, a^2)."""

    def value(x, y):
        return (a - x) ** 2 + b * (y - x * x) ** 2

    def gradient(x, y):
        curve = y - x * x
        return -2 * (a - x) - 4 * b * x * curve, 2 * b * curve

    return Surface("rosenbrock", f"Rosenbrock, b = {b:g}", value, gradient,
                   (a, a * a), 0.0, (-1.5, 2.0), ((-2.0, 2.0), (-1.0, 3.0)))


_BEALE_CONSTANTS = (1.5, 2.25, 2.625)


def beale() -> Surface:
    """Build Beale's function, sum over i = 1..3 of (c_i - x + x y^i)^2, minimum (3, 0.5)."""

    def value(x, y):
        return sum((c - x + x * y**i) ** 2 for i, c in enumerate(_BEALE_CONSTANTS, 1))

    def gradient(x, y):
        dx, dy = 0.0, 0.0
        for i, c in enumerate(_BEALE_CONSTANTS, 1):
            residual = c - x + x * y**i
            dx = dx + 2 * residual * (y**i - 1)
            dy = dy + 2 * residual * i * x * y ** (i - 1)
        return dx, dy

    return Surface("beale", "Beale", value, gradient, (3.0, 0.5), 0.0, (1.0, 1.5),
                   ((-1.0, 4.0), (-1.0, 2.0)))


SURFACES: dict[str, Callable[..., Surface]] = {
    "quadratic": ill_conditioned_quadratic,
    "rosenbrock": rosenbrock,
    "beale": beale,
}


def get_surface(name: str, **options) -> Surface:
    """Build the surface ``name`` (one of ``SURFACES``) with its options."""
    if name not in SURFACES:
        raise ValueError(f"surface must be one of {sorted(SURFACES)}, got {name!r}")
    return SURFACES[name](**options)


def _start_point(surface: Surface, start) -> torch.Tensor:
    start = surface.start if start is None else start
    point = torch.tensor(start, dtype=torch.float64)
    if point.shape != (2,):
        raise ValueError(f"start must be a point (x, y), got {start!r}")
    return point


def _gradient_tensor(surface: Surface, point: torch.Tensor) -> torch.Tensor:
    dx, dy = surface.gradient(point[0], point[1])
    return torch.stack([torch.as_tensor(dx), torch.as_tensor(dy)]).to(point.dtype)


def trajectory(surface: Surface, optimizer: str, steps: int, start=None,
               **hyperparameters) -> np.ndarray:
    """Run ``optimizer`` for ``steps`` steps on ``surface``; return the path.

    The path has shape (steps + 1, 2) and starts at ``start`` (default
    ``surface.start``). The optimizer is ``make_optimizer(optimizer, ...)``
    with ``hyperparameters``, on exact gradients in float64. Once a point
    or gradient is not finite, that row and all later rows are NaN.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    point = _start_point(surface, start)
    opt = make_optimizer(optimizer, [point], **hyperparameters)
    path = np.full((steps + 1, 2), np.nan)
    path[0] = point.numpy()
    for step in range(1, steps + 1):
        gradient = _gradient_tensor(surface, point)
        if torch.isfinite(gradient).all():
            opt.step([gradient])
        if not torch.isfinite(gradient).all() or not torch.isfinite(point).all():
            log.debug("%s on %s diverged at step %d", optimizer, surface.name, step)
            break
        path[step] = point.numpy()
    return path


def tune_learning_rate(surface: Surface, optimizer: str, steps: int,
                       learning_rates: Sequence[float], start=None, **hyperparameters):
    """Pick the lr of ``learning_rates`` with the lowest final f - min f.

    Returns (best lr, table). The table has one row per lr with the final
    gap and whether the run diverged, which here means that it ended
    non-finite or above its starting value. A diverged run never wins.
    Ties go to the smaller lr, so list the rates in increasing order.
    """
    rows = []
    for lr in learning_rates:
        path = trajectory(surface, optimizer, steps, start, lr=lr, **hyperparameters)
        first, final = surface.gap(path[[0, -1]])
        diverged = not np.isfinite(final) or final > first
        rows.append({"optimizer": optimizer, "lr": lr, "final_gap": final,
                     "diverged": bool(diverged)})
    table = pd.DataFrame(rows)
    finite = table[~table["diverged"]]
    if finite.empty:
        raise ValueError(
            f"{optimizer} diverged on {surface.name} for every lr in {list(learning_rates)}"
        )
    best = float(finite.loc[finite["final_gap"].idxmin(), "lr"])
    return best, table


def nesterov_lookahead(surface: Surface, steps: int, lr: float, momentum: float,
                       start=None) -> tuple[np.ndarray, np.ndarray]:
    """Run the textbook (look-ahead) form of Nesterov momentum.

    v_t = momentum * v_{t-1} + lr * grad f(theta_{t-1} - momentum * v_{t-1}),
    theta_t = theta_{t-1} - v_t, with v_0 = 0. Returns theta and v, each of
    shape (steps + 1, 2). The gradient is taken at the look-ahead point
    theta - momentum * v, which ``lookahead_points`` returns.
    """
    theta = _start_point(surface, start)
    velocity = torch.zeros_like(theta)
    thetas, velocities = [theta.numpy().copy()], [velocity.numpy().copy()]
    for _ in range(steps):
        gradient = _gradient_tensor(surface, theta - momentum * velocity)
        velocity = momentum * velocity + lr * gradient
        theta = theta - velocity
        thetas.append(theta.numpy().copy())
        velocities.append(velocity.numpy().copy())
    return np.stack(thetas), np.stack(velocities)


def lookahead_points(theta: np.ndarray, velocity: np.ndarray, momentum: float) -> np.ndarray:
    """Return theta_t - momentum * v_t: the points PyTorch's Nesterov form visits."""
    return np.asarray(theta) - momentum * np.asarray(velocity)


def plot_trajectories(surface: Surface, paths: Mapping[str, np.ndarray], ax=None,
                      levels: int = 20, grid_points: int = 300, markevery: int | None = None):
    """Draw ``paths`` (label to array (T, 2)) over log-spaced contours of f - min f.

    Returns the axes. The contour levels are spaced evenly in log10(f - min f)
    over the plot window. A star marks the minimum and a circle the start of
    the first path.
    """
    if ax is None:
        _, ax = plt.subplots()
    (x_min, x_max), (y_min, y_max) = surface.bounds
    x, y = np.meshgrid(np.linspace(x_min, x_max, grid_points),
                       np.linspace(y_min, y_max, grid_points))
    gap = surface.value(x, y) - surface.min_value
    positive = gap[gap > 0]
    contour_levels = np.logspace(np.log10(positive.min()), np.log10(positive.max()), levels)
    ax.contour(x, y, gap, levels=contour_levels, colors="0.75", linewidths=0.6)
    for label, path in paths.items():
        path = np.asarray(path)
        ax.plot(path[:, 0], path[:, 1], label=label, linewidth=1.2,
                marker="." if markevery else None, markevery=markevery, markersize=3)
    ax.plot(*surface.minimum, marker="*", color="black", markersize=10, linestyle="none")
    first = next(iter(paths.values()), None)
    if first is not None:
        ax.plot(*np.asarray(first)[0], marker="o", color="black", markersize=5,
                linestyle="none")
    ax.set_xlim(x_min, x_max)
    ax.set_ylim(y_min, y_max)
    ax.set_xlabel("$x$")
    ax.set_ylabel("$y$")
    ax.set_title(surface.label)
    return ax


def plot_path_panels(surface: Surface, paths: Mapping[str, np.ndarray], columns: int = 4,
                     width: float = 7.5):
    """Draw each path on its own contour panel, plus one panel of f - min f per step.

    One panel per entry of ``paths`` (label to array (T, 2)) keeps crossing
    paths apart; the last panel overlays f - min f of all of them on a log
    scale. Returns the figure, ``width`` inches wide.
    """
    count = len(paths) + 1
    rows = math.ceil(count / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(width, 2.1 * rows + 0.3),
                             squeeze=False)
    flat = axes.ravel()
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, (label, path) in enumerate(paths.items()):
        ax = flat[index]
        plot_trajectories(surface, {label: path}, ax=ax, grid_points=150)
        ax.get_lines()[0].set_color(colors[index % len(colors)])
        ax.set_title(label, fontsize="small")
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.tick_params(labelsize="x-small")
    gap_ax = flat[len(paths)]
    for index, (label, path) in enumerate(paths.items()):
        gap_ax.semilogy(surface.gap(path), color=colors[index % len(colors)], label=label,
                        linewidth=1.0)
    gap_ax.set_title("$f - \\min f$ per step", fontsize="small")
    gap_ax.tick_params(labelsize="x-small")
    for ax in flat[count:]:
        ax.axis("off")
    fig.suptitle(surface.label, fontsize="medium")
    fig.tight_layout()
    return fig
