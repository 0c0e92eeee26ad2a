"""Grids of training runs: configs, a result cache, and local or Dask execution.

A run is a frozen ``RunConfig``. Its result is stored in one JSON file,
``<results_dir>/<config hash>-<library version>.json``, written to a
temporary file in the same folder and renamed into place, so a reader sees
either a complete file or none. ``run_sweep`` trains only the runs that have
no stored result, or all of them with ``force=True``. It groups runs that
differ only in their seed into one ensemble (matrix products over a leading
dimension E) and runs the groups in local worker processes or on a Dask
cluster.

Command line: ``python -m parity_learning.sweep --help``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import functools
import hashlib
import itertools
import json
import logging
import multiprocessing
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm  # tqdm.auto warns in kernels without ipywidgets

from .losses import LOSSES
from .methods import build_method, get_method
from .models import ACTIVATIONS
from .optim import OPTIMIZERS, make_optimizer
from .seeding import check_seed
from .train import History, train

__all__ = [
    "RunConfig",
    "RunResult",
    "ResultStore",
    "grid_configs",
    "group_configs",
    "run_group",
    "run_sweep",
    "results_frame",
    "select_learning_rates",
    "stack_histories",
    "histories_of",
    "main",
]

log = logging.getLogger(__name__)

TASKS = ("sparse_parity", "digit_parity")
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def library_version() -> str:
    """Return the library version and a hash of its sources: ``0.1.0+1a2b3c4d5e6f``.

    Stored results are keyed by it, so an edit to any module of the package
    recomputes them even when ``__version__`` stays the same. The version is
    read at call time; the source hash once per process.
    """
    from . import __version__

    return f"{__version__}+{_package_source_hash()}"


@functools.lru_cache(maxsize=1)
def _package_source_hash() -> str:
    return source_hash(Path(__file__).parent)


def source_hash(directory: Path) -> str:
    """Return the first 12 hex digits of SHA-256 over the names and bytes of
    the ``*.py`` files in ``directory``, in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(Path(directory).glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


# --------------------------------------------------------------------------
# Configs


def _check_int(name, value, minimum, owner="RunConfig."):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{owner}{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{owner}{name} must be an integer >= {minimum}, got {value}")


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"RunConfig.{name} must be one of {sorted(choices)}, got {value!r}")


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines one training run.

    ``task`` is ``"sparse_parity"`` (``n``, ``k``, ``structured_fraction``) or
    ``"digit_parity"`` (``k`` digits from ``digit_source``). Every run has a
    validation set of ``num_validation`` examples, which tuning uses, and a
    test set of ``num_test``. ``device`` names a torch device; a CUDA device
    that is not present falls back to the CPU with a warning.
    """

    task: str = "sparse_parity"
    n: int = 20
    k: int = 3
    structured_fraction: float = 0.5
    digit_source: str = "sklearn"
    num_train: int = 1000
    num_validation: int = 500
    num_test: int = 1000
    method: str = "bp"
    optimizer: str = "sgd"
    lr: float = 0.1
    optimizer_options: tuple[tuple[str, float], ...] = ()
    width: int = 64
    hidden_layers: int = 1
    activation: str = "relu"
    epochs: int = 10
    batch_size: int = 64
    loss: str = "bce"
    seed: int = 0
    dtype: str = "float32"
    device: str = "cpu"

    def __post_init__(self):
        _check_choice("task", self.task, TASKS)
        _check_choice("dtype", self.dtype, DTYPES)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("loss", self.loss, LOSSES)
        _check_choice("activation", self.activation, ACTIVATIONS)
        get_method(self.method)

        for name in ("n", "k", "num_train", "num_validation", "num_test", "width",
                     "hidden_layers", "epochs", "batch_size"):
            _check_int(name, getattr(self, name), 1)
        check_seed(self.seed, "RunConfig.seed")
        if self.task == "sparse_parity" and self.k > self.n:
            raise ValueError(f"RunConfig.k must be in [1, n={self.n}] for sparse parity, "
                             f"got k={self.k}")
        if not 0.0 <= self.structured_fraction <= 1.0:
            raise ValueError(
                f"RunConfig.structured_fraction must be in [0, 1], got "
                f"{self.structured_fraction}"
            )
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not self.lr > 0:
            raise ValueError(f"RunConfig.lr must be a positive number, got {self.lr!r}")
        if not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ValueError(
                f"RunConfig.device must be 'cpu', 'cuda' or 'cuda:<index>', got {self.device!r}"
            )

        options = tuple(tuple(pair) for pair in self.optimizer_options)
        if any(len(pair) != 2 or not isinstance(pair[0], str) for pair in options):
            raise ValueError(
                "RunConfig.optimizer_options must be (name, value) pairs, got "
                f"{self.optimizer_options!r}"
            )
        object.__setattr__(self, "optimizer_options", tuple(sorted(options)))
        object.__setattr__(self, "lr", float(self.lr))

        if not get_method(self.method).supports(self.hidden_layers):
            raise ValueError(
                f"RunConfig.method {self.method!r} is not defined for "
                f"hidden_layers={self.hidden_layers}"
            )

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["optimizer_options"] = [list(pair) for pair in self.optimizer_options]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "RunConfig":
        """Build a config from ``to_dict`` output; unknown keys raise ValueError."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown RunConfig fields {unknown}; valid: {sorted(known)}")
        data = dict(data)
        if "optimizer_options" in data:
            data["optimizer_options"] = tuple(tuple(p) for p in data["optimizer_options"])
        return cls(**data)

    @property
    def key(self) -> str:
        """A stable hash of every field: SHA-256 of the sorted JSON, 16 hex digits."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def task_label(self) -> str:
        if self.task == "sparse_parity":
            return f"sparse parity n={self.n}, k={self.k}, depth {self.hidden_layers + 1}"
        return f"digit parity k={self.k}, depth {self.hidden_layers + 1}"

    def without_seed(self) -> "RunConfig":
        return dataclasses.replace(self, seed=0)


def grid_configs(
    tasks: Sequence[dict],
    methods: Sequence[str],
    optimizers: Sequence[str],
    learning_rates: dict[str, Sequence[float]],
    seeds: Iterable[int],
    **common,
) -> list[RunConfig]:
    """Expand a grid into configs: tasks x methods x optimizers x lrs x seeds.

    Each entry of ``tasks`` holds the task's own fields (``task``, ``n``,
    ``k``, ``hidden_layers``, ...); ``learning_rates[optimizer]`` lists the
    learning rates that the tuning stage tries for that optimizer;
    ``common`` sets the remaining fields of every config. Methods that are
    not defined for a task's depth (FA with one hidden layer, lazy models
    with more than one) are left out.
    """
    seeds = list(seeds)
    if not isinstance(learning_rates, Mapping):
        raise ValueError("learning_rates must map each optimizer to its list of learning "
                         f"rates, e.g. {{\"sgd\": [0.1, 0.3]}}, got {learning_rates!r}")
    missing = sorted(set(optimizers) - set(learning_rates))
    if missing:
        raise ValueError(f"learning_rates has no entry for optimizers {missing}; it must map "
                         "each optimizer to its list of learning rates")
    configs = []
    for task, method, optimizer in itertools.product(tasks, methods, optimizers):
        fields = {**common, **task}
        if not get_method(method).supports(fields.get("hidden_layers", 1)):
            continue
        for lr, seed in itertools.product(learning_rates[optimizer], seeds):
            configs.append(RunConfig(**fields, method=method, optimizer=optimizer,
                                     lr=lr, seed=seed))
    return configs


def group_configs(configs: Sequence[RunConfig], max_ensemble: int = 8):
    """Split configs into groups that differ only in seed, at most ``max_ensemble`` each."""
    _check_int("max_ensemble", max_ensemble, 1, owner="group_configs: ")
    groups: dict[RunConfig, list[RunConfig]] = {}
    for config in configs:
        groups.setdefault(config.without_seed(), []).append(config)
    chunks = []
    for members in groups.values():
        for start in range(0, len(members), max_ensemble):
            chunks.append(members[start : start + max_ensemble])
    return chunks


# --------------------------------------------------------------------------
# Results and their store


@dataclass
class RunResult:
    """The outcome of one run: its config, its metric history and where it ran."""

    config: RunConfig
    history: History
    library_version: str
    device: str
    seconds: float  # wall time of the run's group, shared by its members

    def final(self, metric: str) -> float:
        return float(self.history.final(metric))

    @property
    def diverged(self) -> bool:
        return bool(self.history.diverged)

    def to_json(self) -> str:
        values = {name: [float(v) for v in series] for name, series in self.history.values.items()}
        payload = {
            "config": self.config.to_dict(),
            "key": self.config.key,
            "library_version": self.library_version,
            "device": self.device,
            "seconds": self.seconds,
            "diverged_step": int(self.history.diverged_step),
            "values": values,
        }
        return json.dumps(payload, indent=1)

    @classmethod
    def from_json(cls, text: str) -> "RunResult":
        payload = json.loads(text)
        config = RunConfig.from_dict(payload["config"])
        if config.key != payload["key"]:
            raise ValueError(f"stored key {payload['key']} does not match its config {config.key}")
        history = History(())
        for name, series in payload["values"].items():
            history.values[name] = [np.asarray(v, dtype=np.float64) for v in series]
        history.diverged_step = np.asarray(payload["diverged_step"])
        return cls(config, history, payload["library_version"], payload["device"],
                   payload["seconds"])


class ResultStore:
    """A folder of result files, one per (config hash, library version)."""

    suffix = ".json"

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def path(self, config: RunConfig) -> Path:
        return self.directory / f"{config.key}-{library_version()}{self.suffix}"

    def load(self, config: RunConfig) -> RunResult | None:
        """Return the stored result of ``config``, or None if there is none.

        A file that cannot be parsed (which an atomic write never leaves, but
        a damaged disk might) is logged and treated as missing.
        """
        path = self.path(config)
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        try:
            result = RunResult.from_json(text)
        except (ValueError, KeyError, TypeError) as error:
            log.warning("ignoring unreadable result file %s: %s", path, error)
            return None
        if result.config != config:
            log.warning("ignoring result file %s: it holds another config", path)
            return None
        return result

    def save(self, result: RunResult) -> Path:
        """Write ``result`` atomically: a temporary file, fsync, then rename."""
        path = self.path(result.config)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".partial",
                                             dir=self.directory)
        try:
            with os.fdopen(handle, "w") as file:
                file.write(result.to_json())
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return path

    def remove_partial_files(self) -> int:
        """Delete temporary files that a killed writer left; return how many."""
        leftovers = list(self.directory.glob(f".*{'.partial'}"))
        for path in leftovers:
            path.unlink(missing_ok=True)
        if leftovers:
            log.info("removed %d partial result files from %s", len(leftovers), self.directory)
        return len(leftovers)


# --------------------------------------------------------------------------
# Training one group


def resolve_device(name: str) -> str:
    """Return ``name`` if that device is present, else ``"cpu"`` with a warning."""
    device = device_here(name)
    if device != name:
        log.warning("config names device %r but CUDA is not available; running on the CPU", name)
    return device


def device_here(name: str) -> str:
    """Return the device a run configured for ``name`` uses on this machine."""
    return "cpu" if name.startswith("cuda") and not torch.cuda.is_available() else name


@functools.lru_cache(maxsize=4)
def _digits(source: str):
    from .data import load_digits

    return load_digits(source)


def build_task(config: RunConfig):
    """Build the data task of ``config`` from its own seed."""
    from .data import DigitParityTask, SparseParityTask

    dtype = DTYPES[config.dtype]
    if config.task == "sparse_parity":
        return SparseParityTask(
            config.n, config.k, config.num_train, config.num_test, config.seed,
            num_validation=config.num_validation,
            structured_fraction=config.structured_fraction, dtype=dtype,
        )
    return DigitParityTask(
        _digits(config.digit_source), config.k, config.num_train, config.num_test,
        config.seed, num_validation=config.num_validation, dtype=dtype,
    )


def _member_history(history: History, index: int | None) -> History:
    single = History(())
    for name, series in history.values.items():
        single.values[name] = [np.asarray(v if index is None else v[index]) for v in series]
    steps = np.asarray(history.diverged_step)
    single.diverged_step = steps if index is None else steps[index]
    return single


def run_group(configs: Sequence[RunConfig]) -> list[RunResult]:
    """Train configs that differ only in seed: one model, or one batched ensemble.

    One config trains a plain model. Several train as an ensemble in which
    member e sees the initial weights, feedback matrices, data and batch
    order of a single run with ``configs[e].seed``.
    """
    configs = list(configs)
    first = configs[0]
    if any(c.without_seed() != first.without_seed() for c in configs):
        raise ValueError("run_group needs configs that differ only in their seed")
    started = time.perf_counter()
    device = resolve_device(first.device)
    tasks = [build_task(c) for c in configs]
    seeds = [c.seed for c in configs]
    sizes = (tasks[0].input_dim, *[first.width] * first.hidden_layers, 1)
    ensemble = len(configs) > 1
    model, rule = build_method(first.method, sizes, seeds if ensemble else seeds[0],
                               activation=first.activation, dtype=DTYPES[first.dtype],
                               device=device)
    optimizer = make_optimizer(first.optimizer, model.parameters(), lr=first.lr,
                               **dict(first.optimizer_options))
    history = train(model, rule, optimizer, tasks if ensemble else tasks[0],
                    epochs=first.epochs, batch_size=first.batch_size,
                    seed=seeds if ensemble else seeds[0], loss=first.loss, progress=False)
    seconds = time.perf_counter() - started
    version = library_version()
    return [
        RunResult(config, _member_history(history, e if ensemble else None), version,
                  device, seconds)
        for e, config in enumerate(configs)
    ]


# --------------------------------------------------------------------------
# Sweeps


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def _run_local(groups, workers, threads):
    if workers == 1:
        # Small matrices train much faster on one thread than on several that
        # compete with other processes, so the in-process path uses the same
        # thread count as a worker process, then restores the caller's.
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            for group in groups:
                yield run_group(group)
        finally:
            torch.set_num_threads(previous)
        return
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(threads,)
    ) as pool:
        futures = [pool.submit(run_group, group) for group in groups]
        try:
            for future in concurrent.futures.as_completed(futures):
                yield future.result()
        except concurrent.futures.process.BrokenProcessPool as error:
            raise RuntimeError(
                "a sweep worker process died; finished runs are stored, run the "
                "sweep again to complete the rest"
            ) from error


def _run_dask(groups, scheduler):
    from distributed import Client, as_completed

    with Client(scheduler) as client:
        log.info("sweep connected to Dask scheduler %s", scheduler)
        futures = [client.submit(run_group, group, pure=False) for group in groups]
        for future in as_completed(futures):
            yield future.result()


def run_sweep(
    configs: Sequence[RunConfig],
    results_dir: str | os.PathLike,
    *,
    workers: int = 1,
    scheduler: str | None = None,
    force: bool = False,
    max_ensemble: int = 8,
    threads_per_worker: int = 1,
    progress: bool | None = None,
) -> list[RunResult]:
    """Return one result per config, training only those without a stored result.

    ``workers`` local processes train the groups (1 trains in this process);
    with ``scheduler`` (a Dask scheduler address such as
    ``tcp://127.0.0.1:8786``) the groups go to that cluster instead. Each
    result is stored as soon as its group finishes, so an interrupted sweep
    resumes where it stopped. ``force=True`` retrains every run.
    """
    _check_int("workers", workers, 1, owner="run_sweep: ")
    _check_int("threads_per_worker", threads_per_worker, 1, owner="run_sweep: ")
    _check_int("max_ensemble", max_ensemble, 1, owner="run_sweep: ")
    store = ResultStore(results_dir)
    store.remove_partial_files()
    configs = list(configs)
    results: dict[str, RunResult] = {}
    if not force:
        for config in configs:
            stored = store.load(config)
            # A CUDA config that fell back to the CPU is not reused on a machine
            # that has CUDA. The run is trained again there.
            if stored is not None and stored.device == device_here(config.device):
                results[config.key] = stored
            elif stored is not None:
                log.info("stored run %s ran on %s, not %s; training it again",
                         config.key, stored.device, config.device)
    pending = list({c.key: c for c in configs if c.key not in results}.values())
    log.info("sweep of %d runs: %d stored, %d to train", len(configs),
             len(configs) - len(pending), len(pending))
    groups = group_configs(pending, max_ensemble)
    executions = _run_dask(groups, scheduler) if scheduler else _run_local(
        groups, workers, threads_per_worker)
    disable = None if progress is None else not progress
    with tqdm(total=len(pending), desc="sweep", unit="run", disable=disable) as bar:
        for group_results in executions:
            for result in group_results:
                store.save(result)
                results[result.config.key] = result
            bar.update(len(group_results))
    return [results[c.key] for c in configs]


# --------------------------------------------------------------------------
# Summaries


def results_frame(results: Sequence[RunResult]) -> pd.DataFrame:
    """Return one row per run: its config fields and final metrics.

    A diverged run has NaN metrics and ``diverged`` True, so that tables can
    show it as diverged instead of as an accuracy.
    """
    rows = []
    for result in results:
        row = result.config.to_dict()
        row.pop("optimizer_options")
        row["key"] = result.config.key
        row["task_label"] = result.config.task_label
        row["diverged"] = result.diverged
        row["seconds"] = result.seconds
        for name in result.history.values:
            if name.endswith("accuracy") or name.endswith("loss"):
                row[name] = result.final(name)
        rows.append(row)
    return pd.DataFrame(rows)


def select_learning_rates(frame: pd.DataFrame, metric: str = "validation_accuracy"):
    """Pick, per (task, method, optimizer), the lr with the best mean ``metric``.

    Only the validation split chooses. A learning rate at which any seed
    diverged ranks below every one at which none did. Returns a frame with
    one row per (task_label, method, optimizer): ``lr`` and its mean metric.
    """
    keys = ["task_label", "method", "optimizer"]
    scores = (
        frame.groupby(keys + ["lr"], sort=False)
        .agg(score=(metric, "mean"), diverged=("diverged", "any"))
        .reset_index()
    )
    scores["rank_score"] = scores["score"].fillna(-np.inf) - scores["diverged"] * 10.0
    best = scores.loc[scores.groupby(keys, sort=False)["rank_score"].idxmax()]
    return best[keys + ["lr", "score"]].rename(columns={"score": metric}).reset_index(drop=True)


def stack_histories(results: Sequence[RunResult]) -> History:
    """Combine single-run histories into one History with one member per run."""
    stacked = History((len(results),))
    for name in results[0].history.values:
        epochs = max(len(r.history.values[name]) for r in results)
        for epoch in range(epochs):
            values = [r.history.values[name][epoch] if epoch < len(r.history.values[name])
                      else np.nan for r in results]
            stacked.values.setdefault(name, []).append(np.asarray(values, dtype=np.float64))
    stacked.diverged_step = np.asarray([r.history.diverged_step for r in results])
    return stacked


def histories_of(results: Sequence[RunResult], frame: pd.DataFrame,
                 by: Sequence[str]) -> dict[tuple, History]:
    """Group the runs named by ``frame`` (its ``key`` column) by the columns ``by``.

    Returns, per group in the order of first appearance, one History whose
    members are the group's runs (see ``stack_histories``).
    """
    by_key = {result.config.key: result for result in results}
    missing = sorted(set(frame["key"]) - set(by_key))
    if missing:
        raise ValueError(f"frame names runs that are not in results: {missing[:3]}")
    groups = {}
    for values, rows in frame.groupby(list(by), sort=False):
        groups[values] = stack_histories([by_key[key] for key in rows["key"]])
    return groups


# --------------------------------------------------------------------------
# Command line


def _read_grid(path: Path) -> list[RunConfig]:
    try:
        spec = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"grid file {path} is not valid JSON: {error}") from error
    is_list = isinstance(spec, list) and all(isinstance(item, dict) for item in spec)
    if not (is_list or isinstance(spec, dict)):
        raise ValueError(
            f"grid file {path} must hold a JSON list of RunConfig objects or one object "
            f"of grid_configs arguments, got {type(spec).__name__}: {str(spec)[:60]}"
        )
    try:
        if is_list:
            return [RunConfig.from_dict(item) for item in spec]
        return grid_configs(**spec)
    except (TypeError, ValueError) as error:
        raise ValueError(f"grid file {path} is not a valid grid: {error}") from error


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m parity_learning.sweep",
        description="Train a grid of runs, reusing stored results.",
    )
    parser.add_argument(
        "grid", type=Path,
        help="JSON file: a list of RunConfig dicts, or the keyword arguments of "
             "grid_configs (tasks, methods, optimizers, learning_rates, seeds, and "
             "common fields)")
    parser.add_argument("--results-dir", type=Path, required=True,
                        help="folder of the result files, one per run")
    parser.add_argument("--workers", type=int, default=1,
                        help="local worker processes (default 1: train in this process)")
    parser.add_argument("--threads-per-worker", type=int, default=1,
                        help="torch threads in each local worker process (default 1)")
    parser.add_argument("--scheduler", default=None,
                        help="address of a Dask scheduler, e.g. tcp://127.0.0.1:8786; "
                             "when given, runs go to that cluster instead of local workers")
    parser.add_argument("--max-ensemble", type=int, default=8,
                        help="most seeds trained together as one batched model (default 8)")
    parser.add_argument("--force", action="store_true",
                        help="retrain every run, ignoring stored results")
    parser.add_argument("--log-level", default="INFO",
                        help="logging level name (default INFO)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        configs = _read_grid(args.grid)
        results = run_sweep(configs, args.results_dir, workers=args.workers,
                            scheduler=args.scheduler, force=args.force,
                            max_ensemble=args.max_ensemble,
                            threads_per_worker=args.threads_per_worker)
    except (ValueError, TypeError, FileNotFoundError, RuntimeError) as error:
        log.error("sweep failed: %s", error)
        return 1
    diverged = sum(r.diverged for r in results)
    log.info("sweep done: %d runs in %s, %d diverged", len(results), args.results_dir, diverged)
    return 0


if __name__ == "__main__":
    sys.exit(main())
