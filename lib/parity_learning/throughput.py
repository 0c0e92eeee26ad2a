"""Training throughput of the library against plain torch, in one run on one machine.

Three ratios, each against a baseline measured in the same run:

1. samples per second of one BP model of the library (hand-written gradients,
   ``optim.SGD``) divided by that of the same network written the usual way
   (``torch.nn``, autograd, ``torch.optim.SGD``); target >= 1.0;
2. per-model throughput of an 8-member batched ensemble divided by that of
   8 models trained one after another; target >= 3 at the quick-profile
   shape;
3. FLOP/s achieved by a library training step divided by the FLOP/s of
   ``torch.matmul`` on the step's own matrix products; target >= 0.5 at the
   full-profile shape.

Timings are the best of ``repeats`` repetitions of ``steps`` steps. The
benchmarks page calls :func:`run`; ``benchmarks/throughput.py`` is its
command-line version.
"""

from __future__ import annotations

import logging
import platform
import time

import torch

from .losses import bce_with_logits
from .models import MLP
from .optim import make_optimizer
from .rules import make_rule
from .seeding import torch_generator

__all__ = ["SHAPES", "TARGETS", "run", "summary_lines"]

log = logging.getLogger(__name__)

#: (input width n_0, hidden width, batch size). The quick shape is sparse
#: parity of the quick profile. The full shape is digit parity of the full
#: profile: three of scikit-learn's 8x8 digits side by side, width 512 and
#: batch 128, its task with the most inputs.
SHAPES = {"quick": (16, 64, 64), "full": (3 * 8 * 8, 512, 128)}
TARGETS = {"library_vs_torch": 1.0, "ensemble_vs_sequential": 3.0, "matmul_fraction": 0.5}
ENSEMBLE = 8


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_time(step, steps: int, repeats: int, device: torch.device) -> float:
    """Return the best wall time in seconds of ``steps`` calls of ``step``."""
    for _ in range(min(steps, 10)):  # warm-up: allocator, kernels, caches
        step()
    synchronize(device)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(steps):
            step()
        synchronize(device)
        times.append(time.perf_counter() - started)
    return min(times)


def batch(shape, device, members=None, dtype=torch.float32):
    n_0, _, size = shape
    generator = torch_generator(0, "benchmark-data")
    leading = () if members is None else (members,)
    X = torch.randint(0, 2, (*leading, size, n_0), generator=generator).to(dtype) * 2 - 1
    y = torch.randint(0, 2, (*leading, size), generator=generator).to(dtype) * 2 - 1
    return X.to(device), y.to(device)


def library_step(model, X, y):
    rule = make_rule("bp")
    optimizer = make_optimizer("sgd", model.parameters(), lr=0.01)

    def step():
        cache = model.forward(X)
        _, dlogits = bce_with_logits(cache.logits, y)
        optimizer.step(rule.gradients(model, cache, dlogits))

    return step


def library_model(shape, device, seed=0):
    n_0, width, _ = shape
    return MLP((n_0, width, 1), generator=torch_generator(seed, "init"), device=device)


def torch_step(shape, device, X, y):
    n_0, width, _ = shape
    torch.manual_seed(0)  # the baseline only; the library never uses global state
    network = torch.nn.Sequential(torch.nn.Linear(n_0, width), torch.nn.ReLU(),
                                  torch.nn.Linear(width, 1)).to(device)
    optimizer = torch.optim.SGD(network.parameters(), lr=0.01)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    target = (y + 1) / 2

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(network(X)[:, 0], target)
        loss.backward()
        optimizer.step()

    return step


def measure_single(shape, device, steps, repeats):
    X, y = batch(shape, device)
    library = best_time(library_step(library_model(shape, device), X, y), steps, repeats, device)
    plain = best_time(torch_step(shape, device, X, y), steps, repeats, device)
    samples = steps * shape[2]
    return {"library_samples_per_s": samples / library, "torch_samples_per_s": samples / plain,
            "library_vs_torch": plain / library}


def measure_ensemble(shape, device, steps, repeats):
    models = [library_model(shape, device, seed) for seed in range(ENSEMBLE)]
    X, y = batch(shape, device, members=ENSEMBLE)
    batched = best_time(library_step(MLP.stack(models), X, y), steps, repeats, device)
    single_steps = [library_step(m, X[e], y[e]) for e, m in enumerate(models)]

    def sequential():
        for step in single_steps:
            step()

    one_by_one = best_time(sequential, steps, repeats, device)
    samples = steps * shape[2]
    return {"batched_per_model_samples_per_s": samples * ENSEMBLE / batched,
            "sequential_per_model_samples_per_s": samples * ENSEMBLE / one_by_one,
            "ensemble_vs_sequential": one_by_one / batched}


def step_products(shape):
    """Return the (m, k, n) shapes of the matrix products of one BP step.

    Forward: X W_1^T and h_1 W_2^T. Backward: delta_2 W_2 (the hidden error),
    delta_1^T X and delta_2^T h_1 (the weight gradients).
    """
    n_0, width, size = shape
    return [(size, n_0, width), (size, width, 1), (size, 1, width), (width, size, n_0),
            (1, size, width)]


def measure_flops(shape, device, steps, repeats):
    products = step_products(shape)
    flops = sum(2 * m * k * n for m, k, n in products)
    X, y = batch(shape, device)
    library = best_time(library_step(library_model(shape, device), X, y), steps, repeats, device)
    generator = torch_generator(0, "benchmark-matmul")
    operands = [(torch.randn(m, k, generator=generator).to(device),
                 torch.randn(k, n, generator=generator).to(device)) for m, k, n in products]

    def matmuls():
        for a, b in operands:
            torch.matmul(a, b)

    plain = best_time(matmuls, steps, repeats, device)
    return {"flop_per_step": flops, "library_flop_per_s": flops * steps / library,
            "matmul_flop_per_s": flops * steps / plain, "matmul_fraction": plain / library}


def run(device_name: str, steps: int, repeats: int, threads: int | None) -> dict:
    """Measure all three ratios and return them with the machine they ran on."""
    for name, value in (("steps", steps), ("repeats", repeats)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if device_name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device_name!r} requested but CUDA is not available")
    previous_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _measure_all(torch.device(device_name), steps, repeats)
    finally:
        torch.set_num_threads(previous_threads)


def _measure_all(device: torch.device, steps: int, repeats: int) -> dict:
    report = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda"
        else f"CPU, {torch.get_num_threads()} torch threads, {platform.processor() or platform.machine()}",
        "torch": torch.__version__,
        "steps": steps,
        "repeats": repeats,
        "shapes": {name: dict(zip(("n_0", "width", "batch"), shape))
                   for name, shape in SHAPES.items()},
        "targets": TARGETS,
    }
    for name, shape in SHAPES.items():
        log.info("measuring the %s shape %s on %s", name, shape, device)
        report[name] = {**measure_single(shape, device, steps, repeats),
                        **measure_ensemble(shape, device, steps, repeats),
                        **measure_flops(shape, device, steps, repeats)}
    return report


def summary_lines(report: dict) -> list[str]:
    """Return one line per ratio with its target, at the shape the target names."""
    checks = [("library_vs_torch", "quick"), ("library_vs_torch", "full"),
              ("ensemble_vs_sequential", "quick"), ("matmul_fraction", "full")]
    lines = [f"device: {report['device']}"]
    for ratio, shape in checks:
        value, target = report[shape][ratio], TARGETS[ratio]
        verdict = "meets" if value >= target else "misses"
        lines.append(f"{ratio} at the {shape} shape: {value:.2f} ({verdict} the target {target})")
    return lines
