"""Test surfaces: gradients against autograd, paths, the two Nesterov forms."""

import math

import numpy as np
import pytest
import torch

from conftest import TOLERANCES
from parity_learning.optim import OPTIMIZERS
from parity_learning.surfaces import (
    SURFACES,
    get_surface,
    lookahead_points,
    nesterov_lookahead,
    plot_path_panels,
    plot_trajectories,
    trajectory,
    tune_learning_rate,
)

TOL64 = TOLERANCES[torch.float64]
SURFACE_CASES = [("quadratic", {}), ("quadratic", {"condition": 10.0, "angle": 0.7}),
                 ("rosenbrock", {}), ("rosenbrock", {"a": 2.0, "b": 5.0}), ("beale", {})]
CASE_IDS = [name + "".join(f"-{k}={v}" for k, v in options.items())
            for name, options in SURFACE_CASES]


@pytest.mark.parametrize("name, options", SURFACE_CASES, ids=CASE_IDS)
def test_gradient_matches_autograd(name, options):
    surface = get_surface(name, **options)
    generator = torch.Generator().manual_seed(0)
    points = torch.randn(20, 2, generator=generator, dtype=torch.float64) * 1.5
    points.requires_grad_(True)
    surface.value(points[:, 0], points[:, 1]).sum().backward()
    dx, dy = surface.gradient(points[:, 0].detach(), points[:, 1].detach())
    torch.testing.assert_close(dx, points.grad[:, 0], **TOL64)
    torch.testing.assert_close(dy, points.grad[:, 1], **TOL64)


@pytest.mark.parametrize("name, options", SURFACE_CASES, ids=CASE_IDS)
def test_minimum_is_stationary_and_lowest(name, options):
    surface = get_surface(name, **options)
    x, y = surface.minimum
    assert surface.value(x, y) == pytest.approx(surface.min_value, abs=1e-12)
    dx, dy = surface.gradient(x, y)
    assert dx == pytest.approx(0.0, abs=1e-12)
    assert dy == pytest.approx(0.0, abs=1e-12)
    grid = np.random.default_rng(0).uniform(-3, 3, size=(1000, 2))
    assert (surface.value(grid[:, 0], grid[:, 1]) >= surface.min_value).all()


def test_quadratic_has_stated_condition_number():
    surface = get_surface("quadratic", condition=40.0, angle=0.3)
    point = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    hessian = torch.autograd.functional.hessian(
        lambda p: surface.value(p[0], p[1]), point)
    eigenvalues = torch.linalg.eigvalsh(hessian)
    torch.testing.assert_close(eigenvalues, torch.tensor([1.0, 40.0], dtype=torch.float64),
                               **TOL64)


#: A stable step size of each optimizer on the quadratic of condition 10.
QUADRATIC_RATES = {"sgd": 0.05, "momentum": 0.02, "nesterov": 0.02, "adagrad": 0.5,
                   "adadelta": 10.0, "rmsprop": 0.05, "adam": 0.1}


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_every_optimizer_descends_quadratic(optimizer):
    surface = get_surface("quadratic", condition=10.0)
    path = trajectory(surface, optimizer, 200, lr=QUADRATIC_RATES[optimizer])
    assert path.shape == (201, 2)
    assert tuple(path[0]) == surface.start
    gap = surface.gap(path)
    assert gap[-1] < 0.1 * gap[0]


def test_sgd_path_is_gradient_descent():
    surface = get_surface("rosenbrock")
    path = trajectory(surface, "sgd", 30, lr=1e-3)
    expected = [np.array(surface.start)]
    for _ in range(30):
        x, y = expected[-1]
        dx, dy = surface.gradient(x, y)
        expected.append(expected[-1] - 1e-3 * np.array([dx, dy]))
    np.testing.assert_allclose(path, np.stack(expected), rtol=TOL64["rtol"],
                               atol=TOL64["atol"])


def test_diverged_path_ends_in_nan():
    surface = get_surface("quadratic", condition=50.0)
    path = trajectory(surface, "sgd", 2000, lr=0.1)  # lr > 2 / 50: unstable
    assert np.isnan(path[-1]).all()
    assert np.isfinite(path[0]).all()
    first_nan = int(np.argmax(np.isnan(path[:, 0])))
    assert np.isnan(path[first_nan:]).all()


@pytest.mark.parametrize("name", ["quadratic", "rosenbrock", "beale"])
@pytest.mark.parametrize("momentum", [0.5, 0.9])
def test_nesterov_forms_give_same_path(name, momentum):
    surface = get_surface(name, angle=0.5) if name == "quadratic" else get_surface(name)
    pytorch_form = trajectory(surface, "nesterov", 300, lr=1e-3, momentum=momentum)
    theta, velocity = nesterov_lookahead(surface, 300, lr=1e-3, momentum=momentum)
    np.testing.assert_allclose(pytorch_form, lookahead_points(theta, velocity, momentum),
                               rtol=TOL64["rtol"], atol=TOL64["atol"])
    # The two forms are different sequences: only the change of variable links them.
    assert np.abs(pytorch_form - theta).max() > 1e-3


def test_tune_picks_best_finite_rate():
    surface = get_surface("quadratic", condition=50.0)
    rates = [1e-3, 1e-2, 3e-2, 0.1]
    best, table = tune_learning_rate(surface, "sgd", 100, rates)
    assert best == 3e-2
    assert table["diverged"].tolist() == [False, False, False, True]
    assert table["final_gap"].iloc[2] < table["final_gap"].iloc[1]


def test_tune_raises_when_every_rate_diverges():
    surface = get_surface("quadratic", condition=50.0)
    with pytest.raises(ValueError, match=r"sgd diverged on quadratic for every lr in \[0\.5"):
        tune_learning_rate(surface, "sgd", 500, [0.5, 1.0])


def test_invalid_inputs_raise():
    with pytest.raises(ValueError, match=r"surface must be one of .*got 'himmelblau'"):
        get_surface("himmelblau")
    with pytest.raises(ValueError, match=r"condition must be >= 1, got 0\.5"):
        get_surface("quadratic", condition=0.5)
    with pytest.raises(ValueError, match=r"start must be a point \(x, y\), got \[1\.0\]"):
        trajectory(get_surface("beale"), "adam", 10, start=[1.0])
    with pytest.raises(ValueError, match=r"steps must be a non-negative integer, got -1"):
        trajectory(get_surface("beale"), "adam", -1)
    with pytest.raises(ValueError, match=r"optimizer must be one of"):
        trajectory(get_surface("beale"), "lbfgs", 10)


def test_plot_draws_every_path():
    import matplotlib

    matplotlib.use("Agg")
    surface = get_surface("rosenbrock")
    paths = {name: trajectory(surface, name, 20, lr=1e-3) for name in ("sgd", "adam")}
    ax = plot_trajectories(surface, paths)
    labels = [line.get_label() for line in ax.get_lines()]
    assert "sgd" in labels
    assert "adam" in labels
    assert sorted(SURFACES) == ["beale", "quadratic", "rosenbrock"]
    assert math.isclose(ax.get_xlim()[0], surface.bounds[0][0])


def test_path_panels_one_per_path_and_gap_panel():
    import matplotlib

    matplotlib.use("Agg")
    surface = get_surface("quadratic", condition=5.0)
    paths = {name: trajectory(surface, name, 15, lr=0.05) for name in sorted(OPTIMIZERS)}
    fig = plot_path_panels(surface, paths)
    visible = [ax for ax in fig.axes if ax.axison]
    assert len(visible) == len(paths) + 1
    assert [ax.get_title() for ax in visible[:-1]] == list(paths)
    gap_lines = visible[-1].get_lines()
    assert [line.get_label() for line in gap_lines] == list(paths)
    np.testing.assert_allclose(gap_lines[0].get_ydata(), surface.gap(paths["adadelta"]))
