"""The seven optimizers against torch.optim, step for step, in float64."""

import pytest
import torch

from conftest import TOLERANCES
from parity_learning.optim import OPTIMIZERS, make_optimizer

STEPS = 50
ATOL = TOLERANCES[torch.float64]["atol"]  # 1e-12

#: torch.optim class and extra keyword arguments behind each config name.
TORCH_EQUIVALENT = {
    "sgd": (torch.optim.SGD, {}),
    "momentum": (torch.optim.SGD, {"momentum": 0.9}),
    "nesterov": (torch.optim.SGD, {"momentum": 0.9, "nesterov": True}),
    "adagrad": (torch.optim.Adagrad, {}),
    "adadelta": (torch.optim.Adadelta, {}),
    "rmsprop": (torch.optim.RMSprop, {}),
    "adam": (torch.optim.Adam, {}),
}

#: (config name, hyperparameters): defaults, then the unusual corners.
GRID = [
    ("sgd", {}),
    ("sgd", {"lr": 0.1}),
    ("sgd", {"lr": 0.05, "weight_decay": 0.1}),
    ("sgd", {"lr": 0.02, "momentum": 0.5, "dampening": 0.5}),
    ("momentum", {"lr": 0.01}),
    ("momentum", {"lr": 0.01, "momentum": 0.5, "dampening": 0.3}),
    ("momentum", {"lr": 0.01, "dampening": 0.9, "weight_decay": 0.01}),
    ("momentum", {"lr": 0.01, "dampening": 1.0}),
    ("nesterov", {}),
    ("nesterov", {"lr": 0.01}),
    ("nesterov", {"lr": 0.005, "momentum": 0.99, "weight_decay": 0.05}),
    ("adagrad", {}),
    ("adagrad", {"lr": 0.1, "lr_decay": 0.05}),
    ("adagrad", {"lr": 0.1, "initial_accumulator_value": 0.5}),
    ("adagrad", {"lr": 0.1, "eps": 1.0, "weight_decay": 0.1}),
    ("adagrad", {"lr": 0.3, "lr_decay": 1.0, "initial_accumulator_value": 2.0, "eps": 0.0}),
    ("adadelta", {}),
    ("adadelta", {"lr": 0.5}),
    ("adadelta", {"lr": 3.0, "rho": 0.5}),
    ("adadelta", {"lr": 0.05, "rho": 0.99, "eps": 0.1}),
    ("adadelta", {"lr": 2.0, "weight_decay": 0.1, "eps": 1.0}),
    ("adadelta", {"rho": 0.0}),
    ("rmsprop", {}),
    ("rmsprop", {"lr": 0.001, "alpha": 0.5, "eps": 1.0}),
    ("rmsprop", {"lr": 0.001, "momentum": 0.9}),
    ("rmsprop", {"lr": 0.001, "centered": True}),
    ("rmsprop", {"lr": 0.001, "centered": True, "momentum": 0.5, "weight_decay": 0.1}),
    ("rmsprop", {"alpha": 0.0}),
    ("adam", {}),
    ("adam", {"lr": 0.01, "betas": (0.5, 0.9)}),
    ("adam", {"lr": 0.1, "eps": 1.0}),
    ("adam", {"lr": 0.01, "amsgrad": True}),
    ("adam", {"lr": 0.01, "betas": (0.0, 0.0)}),
    ("adam", {"lr": 0.01, "weight_decay": 0.1, "betas": (0.99, 0.5)}),
]


def grid_id(case):
    name, hyperparameters = case
    return name + "".join(f"-{k}={v}" for k, v in hyperparameters.items())


def initial_parameters(seed=0, ensemble=()):
    generator = torch.Generator().manual_seed(seed)
    shapes = [(*ensemble, 5, 3), (*ensemble, 5), (*ensemble, 1, 5)]
    return [torch.randn(shape, generator=generator, dtype=torch.float64) for shape in shapes]


def gradient_sequence(params, seed=1, steps=STEPS):
    """Random gradients of the shapes of ``params``, one list per step."""
    generator = torch.Generator().manual_seed(seed)
    return [
        [torch.randn(p.shape, generator=generator, dtype=torch.float64) for p in params]
        for _ in range(steps)
    ]


def gradient(param, noise):
    # The update direction depends on the current parameter, so a wrong step
    # changes every later gradient as well as the parameter.
    return noise + 0.5 * param


def run_ours(name, hyperparameters, params, noise):
    params = [p.clone() for p in params]
    optimizer = make_optimizer(name, params, **hyperparameters)
    for step_noise in noise:
        optimizer.step([gradient(p, n) for p, n in zip(params, step_noise)])
    return params


def run_torch(name, hyperparameters, params, noise):
    torch_class, fixed = TORCH_EQUIVALENT[name]
    params = [p.clone().requires_grad_() for p in params]
    optimizer = torch_class(params, **{**fixed, **hyperparameters}, foreach=False)
    for step_noise in noise:
        for p, n in zip(params, step_noise):
            p.grad = gradient(p.detach(), n)
        optimizer.step()
    return [p.detach() for p in params]


@pytest.mark.parametrize("case", GRID, ids=[grid_id(c) for c in GRID])
def test_matches_torch_optim(case):
    name, hyperparameters = case
    start = initial_parameters()
    noise = gradient_sequence(start)
    ours = run_ours(name, hyperparameters, start, noise)
    theirs = run_torch(name, hyperparameters, start, noise)
    for index, (mine, reference) in enumerate(zip(ours, theirs)):
        difference = (mine - reference).abs().max().item()
        assert difference <= ATOL, f"parameter {index}: max difference {difference:.3g}"
    moved = (ours[0] - start[0]).abs().max().item()
    assert moved > 1e-6, "the parameters did not move, so the comparison is empty"


def test_grid_covers_every_optimizer():
    assert {name for name, _ in GRID} == set(OPTIMIZERS)
    assert sorted(OPTIMIZERS) == sorted(TORCH_EQUIVALENT)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_defaults_are_torch_defaults(name):
    torch_class, fixed = TORCH_EQUIVALENT[name]
    torch_defaults = torch_class([torch.zeros(1, requires_grad=True)], **fixed).defaults
    ours = make_optimizer(name, [torch.zeros(1)]).hyperparameters
    for key, value in ours.items():
        expected = torch_defaults[key]
        assert value == (tuple(expected) if key == "betas" else expected), key


def test_momentum_configs_default_to_0_9():
    momentum = make_optimizer("momentum", [torch.zeros(1)]).hyperparameters
    nesterov = make_optimizer("nesterov", [torch.zeros(1)]).hyperparameters
    assert momentum["momentum"] == 0.9
    assert momentum["nesterov"] is False
    assert nesterov["momentum"] == 0.9
    assert nesterov["nesterov"] is True


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_ensemble_equals_separate_optimizers(name):
    members = 3
    hyperparameters = {"lr": 0.01}
    stacked = initial_parameters(seed=2, ensemble=(members,))
    noise = gradient_sequence(stacked, seed=3, steps=20)
    ours = run_ours(name, hyperparameters, stacked, noise)
    for e in range(members):
        member_start = [p[e] for p in stacked]
        member_noise = [[n[e] for n in step] for step in noise]
        separate = run_ours(name, hyperparameters, member_start, member_noise)
        for index, (joint, alone) in enumerate(zip(ours, separate)):
            assert torch.equal(joint[e], alone), f"member {e}, parameter {index}"


INVALID = [
    ("sgd", {"lr": -0.1}, r"lr must be >= 0, got -0\.1"),
    ("adam", {"lr": -1e-3}, r"lr must be >= 0, got -0\.001"),
    ("adagrad", {"lr": -1.0}, r"lr must be >= 0, got -1\.0"),
    ("adadelta", {"lr": -2.0}, r"lr must be >= 0, got -2\.0"),
    ("rmsprop", {"lr": -0.5}, r"lr must be >= 0, got -0\.5"),
    ("sgd", {"lr": float("nan")}, r"lr must be >= 0, got nan"),
    ("momentum", {"momentum": 1.0}, r"momentum must be in \[0, 1\), got 1\.0"),
    ("momentum", {"momentum": -0.2}, r"momentum must be in \[0, 1\), got -0\.2"),
    ("nesterov", {"momentum": 1.5}, r"momentum must be in \[0, 1\), got 1\.5"),
    ("rmsprop", {"momentum": 1.0}, r"momentum must be in \[0, 1\), got 1\.0"),
    ("adam", {"betas": (1.0, 0.999)}, r"betas\[0\] must be in \[0, 1\), got 1\.0"),
    ("adam", {"betas": (0.9, -0.1)}, r"betas\[1\] must be in \[0, 1\), got -0\.1"),
    ("adam", {"betas": (0.9, 1.0)}, r"betas\[1\] must be in \[0, 1\), got 1\.0"),
    ("nesterov", {"dampening": 0.1}, r"dampening = 0, got momentum=0\.9, dampening=0\.1"),
    ("sgd", {"momentum": 0.9, "dampening": 0.5, "nesterov": True}, r"dampening=0\.5"),
    ("sgd", {"nesterov": True}, r"nesterov=True needs momentum > 0.*momentum=0\.0"),
    ("nesterov", {"nesterov": False}, r"always has nesterov=True, got False"),
    ("adadelta", {"rho": 1.1}, r"rho must be in \[0, 1\], got 1\.1"),
    ("rmsprop", {"alpha": -0.1}, r"alpha must be in \[0, 1\], got -0\.1"),
    ("adagrad", {"eps": -1e-10}, r"eps must be >= 0, got -1e-10"),
    ("adagrad", {"lr_decay": -0.1}, r"lr_decay must be >= 0, got -0\.1"),
    ("adagrad", {"initial_accumulator_value": -1}, r"initial_accumulator_value.*-1\.0"),
    ("adam", {"weight_decay": -0.1}, r"weight_decay must be >= 0, got -0\.1"),
    ("sgd", {"dampening": 2.0}, r"dampening must be in \[0, 1\], got 2\.0"),
]


@pytest.mark.parametrize("name, hyperparameters, message", INVALID,
                         ids=[grid_id(c[:2]) for c in INVALID])
def test_invalid_hyperparameter_raises(name, hyperparameters, message):
    with pytest.raises(ValueError, match=message):
        make_optimizer(name, [torch.zeros(2)], **hyperparameters)


def test_unknown_optimizer_name_raises():
    with pytest.raises(ValueError, match=r"optimizer must be one of .*got 'adamw'"):
        make_optimizer("adamw", [torch.zeros(2)])


def test_unknown_hyperparameter_raises():
    with pytest.raises(ValueError, match=r"'adam' has no hyperparameter 'beta1'"):
        make_optimizer("adam", [torch.zeros(2)], beta1=0.9)
    with pytest.raises(ValueError, match=r"'adagrad' has no hyperparameter 'momentum'"):
        make_optimizer("adagrad", [torch.zeros(2)], momentum=0.9)


def test_wrong_hyperparameter_types_raise():
    with pytest.raises(TypeError, match=r"lr must be a number, got '0\.1'"):
        make_optimizer("sgd", [torch.zeros(2)], lr="0.1")
    with pytest.raises(TypeError, match=r"betas must be a pair"):
        make_optimizer("adam", [torch.zeros(2)], betas=0.9)
    with pytest.raises(TypeError, match=r"centered must be True or False, got 1"):
        make_optimizer("rmsprop", [torch.zeros(2)], centered=1)


def test_step_rejects_wrong_gradients():
    optimizer = make_optimizer("adam", [torch.zeros(2), torch.zeros(3)])
    with pytest.raises(ValueError, match="holds 2 parameters, got 1 gradients"):
        optimizer.step([torch.zeros(2)])
    with pytest.raises(ValueError, match=r"gradient of shape \(4,\)"):
        optimizer.step([torch.zeros(2), torch.zeros(4)])


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_state_dict_round_trip_continues_exactly(name):
    start = initial_parameters(seed=4)
    noise = gradient_sequence(start, seed=5, steps=20)
    hyperparameters = {"lr": 0.01}
    uninterrupted = run_ours(name, hyperparameters, start, noise)

    params = [p.clone() for p in start]
    first = make_optimizer(name, params, **hyperparameters)
    for step_noise in noise[:10]:
        first.step([gradient(p, n) for p, n in zip(params, step_noise)])
    saved = first.state_dict()
    resumed_params = [p.clone() for p in params]
    for step_noise in noise[10:12]:  # later steps must not change the saved copy
        first.step([gradient(p, n) for p, n in zip(params, step_noise)])

    second = make_optimizer(name, resumed_params, lr=0.5)
    second.load_state_dict(saved)
    assert second.hyperparameters["lr"] == 0.01
    for step_noise in noise[10:]:
        second.step([gradient(p, n) for p, n in zip(resumed_params, step_noise)])
    for index, (resumed, reference) in enumerate(zip(resumed_params, uninterrupted)):
        assert torch.equal(resumed, reference), f"parameter {index}"


def test_load_state_dict_rejects_mismatch():
    adam = make_optimizer("adam", [torch.zeros(2)])
    adam.step([torch.ones(2)])
    with pytest.raises(ValueError, match="state_dict is of optimizer 'adam'"):
        make_optimizer("rmsprop", [torch.zeros(2)]).load_state_dict(adam.state_dict())
    with pytest.raises(ValueError, match="state for 1 parameters, this optimizer holds 2"):
        make_optimizer("adam", [torch.zeros(2), torch.zeros(2)]).load_state_dict(
            adam.state_dict())
    with pytest.raises(ValueError, match=r"state 'exp_avg' of parameter 0 has shape \(2,\)"):
        make_optimizer("adam", [torch.zeros(3)]).load_state_dict(adam.state_dict())
    with pytest.raises(ValueError, match="dtype torch.float32"):
        make_optimizer("adam", [torch.zeros(2, dtype=torch.float64)]).load_state_dict(
            adam.state_dict())


def test_optimizers_chapter_runs(tmp_path):
    from conftest import image_outputs, outputs_of, run_chapter

    notebook = run_chapter(
        "optimizers", tmp_path, quadratic_steps=10, rosenbrock_steps=20,
        lr_grid=[1e-4, 1e-3, 1e-2], nesterov_steps=20, adadelta_steps=20, n=8, k=2,
        width=8, num_train=128, num_test=64, epochs=2, batch_size=64)
    assert not outputs_of(notebook, "error")
    assert image_outputs(notebook)
    assert (tmp_path / "results" / "optimizers" / "manifest.json").is_file()
