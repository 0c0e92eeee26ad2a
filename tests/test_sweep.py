"""The sweep engine: configs, batched ensembles, the result cache, crashes, Dask."""

import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import parity_learning
from conftest import TOLERANCES
from parity_learning import sweep
from parity_learning.sweep import ResultStore, RunConfig, RunResult, run_group, run_sweep

TINY = dict(n=10, k=3, num_train=200, num_validation=100, num_test=100, width=16,
            epochs=3, batch_size=32)


def assert_same_history(first, second, **tolerance):
    assert sorted(first.values) == sorted(second.values)
    for name in first.values:
        np.testing.assert_allclose(first.array(name), second.array(name), **tolerance,
                                   err_msg=name)
    assert np.array_equal(first.diverged_step, second.diverged_step)


# --------------------------------------------------------------------------
# Configs


def test_config_key_is_fixed_value():
    # A literal: a change of the hash would silently orphan every stored run.
    assert RunConfig().key == "fb2fdb8199ee52af"


def test_config_key_same_in_other_process():
    code = "from parity_learning.sweep import RunConfig; print(RunConfig(lr=0.3).key)"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert output == RunConfig(lr=0.3).key


def test_config_key_changes_with_every_field():
    base = RunConfig()
    changed = dict(task="digit_parity", n=21, k=4, structured_fraction=0.25,
                   digit_source="fashion-mnist", num_train=999, num_validation=7,
                   num_test=3, method="dfa", optimizer="adam", lr=0.2,
                   optimizer_options=(("momentum", 0.5),), width=8, hidden_layers=2,
                   activation="tanh", epochs=2, batch_size=3, loss="hinge", seed=1,
                   dtype="float64", device="cuda")
    assert set(changed) == {f.name for f in dataclasses.fields(RunConfig)}
    for name, value in changed.items():
        assert dataclasses.replace(base, **{name: value}).key != base.key, name


def test_config_round_trips_through_dict():
    config = RunConfig(optimizer_options=(("momentum", 0.9),), lr=1)
    again = RunConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config
    assert again.key == config.key


@pytest.mark.parametrize(
    "field, value, message",
    [("task", "xor", "RunConfig.task"), ("width", 0, "RunConfig.width"),
     ("lr", -1.0, "RunConfig.lr"), ("device", "tpu", "RunConfig.device"),
     ("method", "magic", "method"), ("dtype", "float16", "RunConfig.dtype"),
     ("structured_fraction", 2.0, "structured_fraction")],
)
def test_config_rejects_invalid_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        RunConfig(**{field: value})


def test_config_rejects_fa_at_depth_two():
    with pytest.raises(ValueError, match="hidden_layers=1"):
        RunConfig(method="fa", hidden_layers=1)


def test_config_from_dict_rejects_unknown_field():
    with pytest.raises(ValueError, match="colour"):
        RunConfig.from_dict({"colour": "red"})


def test_grid_skips_methods_undefined_at_depth():
    tasks = [dict(task="sparse_parity", hidden_layers=1),
             dict(task="sparse_parity", hidden_layers=2)]
    configs = sweep.grid_configs(tasks, ["bp", "fa"], ["sgd"], {"sgd": [0.1, 0.3]},
                                 seeds=range(2), **TINY)
    pairs = sorted({(c.method, c.hidden_layers) for c in configs})
    assert pairs == [("bp", 1), ("bp", 2), ("fa", 2)]
    assert len(configs) == 3 * 2 * 2


def test_grid_rejects_missing_learning_rates():
    with pytest.raises(ValueError, match="adam"):
        sweep.grid_configs([{}], ["bp"], ["sgd", "adam"], {"sgd": [0.1]}, seeds=[0])


def test_group_configs_splits_by_all_but_seed():
    configs = [RunConfig(seed=s, lr=lr, **TINY) for lr in (0.1, 0.2) for s in range(5)]
    groups = sweep.group_configs(configs, max_ensemble=3)
    assert [len(g) for g in groups] == [3, 2, 3, 2]
    for group in groups:
        assert len({c.without_seed() for c in group}) == 1


# --------------------------------------------------------------------------
# Batched ensembles


def test_ensemble_matches_separate_runs_float64():
    configs = [RunConfig(seed=s, dtype="float64", optimizer="sgd",
                         optimizer_options=(("momentum", 0.9),), **TINY) for s in range(3)]
    batched = run_group(configs)
    for config, member in zip(configs, batched):
        (single,) = run_group([config])
        assert member.config == config
        assert_same_history(member.history, single.history, **TOLERANCES[torch.float64])


def test_ensemble_members_differ_by_seed():
    results = run_group([RunConfig(seed=s, **TINY) for s in range(2)])
    first, second = (r.history.array("train_loss") for r in results)
    assert not np.array_equal(first, second)


def test_diverged_run_has_nan_metrics():
    (result,) = run_group([RunConfig(lr=1e6, loss="hinge", **TINY)])
    frame = sweep.results_frame([result])
    assert result.diverged
    assert bool(frame["diverged"].iloc[0])
    assert np.isnan(frame["test_accuracy"].iloc[0])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the fallback without CUDA")
def test_missing_cuda_falls_back_to_cpu(caplog):
    with caplog.at_level(logging.WARNING, logger="parity_learning.sweep"):
        (result,) = run_group([RunConfig(device="cuda", **TINY)])
    assert result.device == "cpu"
    assert "CUDA is not available" in caplog.text


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_run_matches_cpu_run():
    config = RunConfig(dtype="float64", **TINY)
    (cpu,) = run_group([config])
    (gpu,) = run_group([dataclasses.replace(config, device="cuda")])
    assert gpu.device == "cuda"
    assert_same_history(cpu.history, gpu.history, rtol=1e-8, atol=1e-10)


# --------------------------------------------------------------------------
# Result store and cache


def test_result_round_trips_through_json(tmp_path):
    (result,) = run_group([RunConfig(**TINY)])
    store = ResultStore(tmp_path)
    store.save(result)
    loaded = store.load(result.config)
    assert loaded.config == result.config
    assert loaded.device == result.device
    assert_same_history(loaded.history, result.history, rtol=0, atol=0)


def test_cache_returns_stored_run_without_training(tmp_path, monkeypatch):
    configs = [RunConfig(seed=s, **TINY) for s in range(2)]
    first = run_sweep(configs, tmp_path)

    def fail(group):
        raise AssertionError("run_group called for a stored run")

    monkeypatch.setattr(sweep, "run_group", fail)
    again = run_sweep(configs, tmp_path)
    for a, b in zip(first, again):
        assert_same_history(a.history, b.history, rtol=0, atol=0)


def count_trained(monkeypatch):
    trained = []
    original = sweep.run_group

    def counting(group):
        trained.extend(group)
        return original(group)

    monkeypatch.setattr(sweep, "run_group", counting)
    return trained


def test_cache_recomputes_changed_config(tmp_path, monkeypatch):
    config = RunConfig(**TINY)
    run_sweep([config], tmp_path)
    trained = count_trained(monkeypatch)
    changed = dataclasses.replace(config, lr=0.05)
    run_sweep([config, changed], tmp_path)
    assert trained == [changed]


def test_cache_recomputes_new_library_version(tmp_path, monkeypatch):
    config = RunConfig(**TINY)
    run_sweep([config], tmp_path)
    trained = count_trained(monkeypatch)
    monkeypatch.setattr(parity_learning, "__version__", "999.0.0")
    (result,) = run_sweep([config], tmp_path)
    assert trained == [config]
    assert result.library_version.startswith("999.0.0+")
    assert len(list(tmp_path.glob(f"{config.key}-*.json"))) == 2


def test_force_recomputes_every_run(tmp_path, monkeypatch):
    configs = [RunConfig(seed=s, **TINY) for s in range(2)]
    run_sweep(configs, tmp_path)
    trained = count_trained(monkeypatch)
    run_sweep(configs, tmp_path, force=True)
    assert trained == configs


def test_failed_write_leaves_no_file(tmp_path, monkeypatch):
    (result,) = run_group([RunConfig(**TINY)])
    store = ResultStore(tmp_path)

    def broken_replace(source, target):
        raise OSError("disk full")

    monkeypatch.setattr(sweep.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        store.save(result)
    assert list(tmp_path.iterdir()) == []
    assert store.load(result.config) is None


def test_store_ignores_truncated_result_file(tmp_path, caplog):
    (result,) = run_group([RunConfig(**TINY)])
    store = ResultStore(tmp_path)
    path = store.save(result)
    path.write_text(path.read_text()[:100])
    with caplog.at_level(logging.WARNING, logger="parity_learning.sweep"):
        assert store.load(result.config) is None
    assert "unreadable" in caplog.text


def test_sweep_removes_partial_files(tmp_path):
    partial = tmp_path / ".abc-0.1.0.xyz.partial"
    partial.write_text('{"config": ')
    run_sweep([RunConfig(**TINY)], tmp_path)
    assert not partial.exists()


def test_local_workers_match_in_process(tmp_path):
    configs = [RunConfig(seed=s, lr=lr, **TINY) for lr in (0.1, 0.3) for s in range(2)]
    serial = run_sweep(configs, tmp_path / "serial")
    parallel = run_sweep(configs, tmp_path / "parallel", workers=2)
    for a, b in zip(serial, parallel):
        assert a.config == b.config
        assert_same_history(a.history, b.history, rtol=0, atol=0)


# --------------------------------------------------------------------------
# Crashes and Dask


def child_pids(pid):
    path = f"/proc/{pid}/task/{pid}/children"
    with open(path) as file:
        return [int(p) for p in file.read().split()]


def test_sweep_survives_sigkill_of_workers(tmp_path):
    configs = [RunConfig(seed=s, lr=lr, **{**TINY, "num_train": 2000, "epochs": 8})
               for lr in (0.05, 0.1, 0.2, 0.4) for s in range(4)]
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps([c.to_dict() for c in configs]))
    results_dir = tmp_path / "runs"
    command = [sys.executable, "-m", "parity_learning.sweep", str(grid), "--results-dir",
               str(results_dir), "--workers", "2", "--max-ensemble", "1",
               "--log-level", "WARNING"]

    sweeper = subprocess.Popen(command, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while len(list(results_dir.glob("*.json"))) < 2:
        assert sweeper.poll() is None, "the sweep ended before it could be killed"
        assert time.monotonic() < deadline, "no run finished within 60 s"
        time.sleep(0.02)
    workers = child_pids(sweeper.pid)
    for pid in [sweeper.pid, *workers]:
        os.kill(pid, signal.SIGKILL)
    sweeper.wait()
    finished = len(list(results_dir.glob("*.json")))
    assert 0 < finished < len(configs), "the kill came too late to interrupt the sweep"

    store = ResultStore(results_dir)
    loaded = [store.load(c) for c in configs]
    assert all(r is None or r.config == c for r, c in zip(loaded, configs))

    subprocess.run(command, check=True, timeout=120)
    files = sorted(results_dir.glob("*.json"))
    assert len(files) == len(configs)
    assert {f.name for f in files} == {store.path(c).name for c in configs}
    assert list(results_dir.glob(".*")) == []
    for config in configs:
        assert store.load(config).config == config


def test_dask_matches_local(tmp_path):
    distributed = pytest.importorskip("distributed")
    configs = [RunConfig(seed=s, lr=lr, **TINY) for lr in (0.1, 0.3) for s in range(2)]
    local = run_sweep(configs, tmp_path / "local")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  host="127.0.0.1", protocol="tcp://",
                                  dashboard_address=None) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        remote = run_sweep(configs, tmp_path / "dask", scheduler=cluster.scheduler_address)
    for a, b in zip(local, remote):
        assert a.config == b.config
        assert_same_history(a.history, b.history, rtol=0, atol=0)


# --------------------------------------------------------------------------
# Summaries and the command line


def test_select_learning_rates_uses_validation_only():
    rows = []
    for lr, validation, test in [(0.1, 0.9, 0.6), (0.3, 0.7, 0.99)]:
        for seed in range(2):
            rows.append(dict(task_label="t", method="bp", optimizer="sgd", lr=lr,
                             seed=seed, diverged=False, validation_accuracy=validation,
                             test_accuracy=test))
    chosen = sweep.select_learning_rates(pd.DataFrame(rows))
    assert chosen["lr"].tolist() == [0.1]


def test_select_learning_rates_ranks_divergence_last():
    rows = [dict(task_label="t", method="bp", optimizer="sgd", lr=0.1, diverged=False,
                 validation_accuracy=0.6),
            dict(task_label="t", method="bp", optimizer="sgd", lr=1.0, diverged=True,
                 validation_accuracy=np.nan),
            dict(task_label="t", method="bp", optimizer="sgd", lr=1.0, diverged=False,
                 validation_accuracy=0.95)]
    chosen = sweep.select_learning_rates(pd.DataFrame(rows))
    assert chosen["lr"].tolist() == [0.1]


def test_stack_histories_pads_stopped_runs():
    results = run_group([RunConfig(seed=s, **TINY) for s in range(2)])
    stacked = sweep.stack_histories(results)
    assert stacked.array("test_accuracy").shape == (TINY["epochs"] + 1, 2)
    assert stacked.diverged.tolist() == [False, False]


def test_command_line_help_documents_every_option():
    output = subprocess.run([sys.executable, "-m", "parity_learning.sweep", "--help"],
                            capture_output=True, text=True, check=True).stdout
    for option in ("--results-dir", "--workers", "--threads-per-worker", "--scheduler",
                   "--max-ensemble", "--force", "--log-level"):
        assert option in output


def test_command_line_reports_invalid_grid(tmp_path, caplog):
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps([{"width": -3}]))
    with caplog.at_level(logging.ERROR):
        assert sweep.main([str(grid), "--results-dir", str(tmp_path / "runs")]) == 1
    assert "RunConfig.width" in caplog.text


@pytest.mark.parametrize("text, message", [
    ("42", "must hold a JSON list of RunConfig objects or one object of grid_configs "
           "arguments, got int: 42"),
    ('[{"task": "sparse_parity"', "is not valid JSON: Expecting"),
    ('{"tasks": [{"n": 8}], "methods": ["bp"], "optimizers": ["sgd"], '
     '"learning_rates": [0.1], "seeds": [0]}',
     "learning_rates must map each optimizer to its list of learning rates"),
])
def test_command_line_explains_bad_grid_file(tmp_path, caplog, text, message):
    grid = tmp_path / "grid.json"
    grid.write_text(text)
    with caplog.at_level(logging.ERROR):
        assert sweep.main([str(grid), "--results-dir", str(tmp_path / "runs")]) == 1
    assert message in caplog.text
    assert str(grid) in caplog.text


def test_cpu_fallback_run_not_reused_on_cuda(tmp_path, monkeypatch):
    config = RunConfig(device="cuda", **TINY)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    (first,) = run_sweep([config], tmp_path)
    assert first.device == "cpu"
    trained = count_trained(monkeypatch)
    run_sweep([config], tmp_path)
    assert trained == []  # still no CUDA, so the stored CPU run is reused

    # With CUDA present, the stored CPU run does not count; training is
    # stubbed out because this machine may have no GPU.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(sweep, "run_group", lambda group: trained.extend(group) or [
        dataclasses.replace(first, device="cuda") for _ in group])
    (second,) = run_sweep([config], tmp_path)
    assert trained == [config]
    assert second.device == "cuda"


def test_histories_of_groups_runs_by_columns():
    results = run_group([RunConfig(seed=s, **TINY) for s in range(3)])
    results += run_group([RunConfig(seed=0, lr=0.3, **TINY)])
    frame = sweep.results_frame(results)
    groups = sweep.histories_of(results, frame, ["lr"])
    assert list(groups) == [(0.1,), (0.3,)]
    assert groups[(0.1,)].array("test_accuracy").shape == (TINY["epochs"] + 1, 3)
    np.testing.assert_array_equal(groups[(0.3,)].array("test_accuracy")[:, 0],
                                  results[3].history.array("test_accuracy"))


# --------------------------------------------------------------------------
# The chapter


def test_parity_grid_chapter_executes(tmp_path):
    from conftest import image_outputs, outputs_of, run_chapter

    notebook = run_chapter("parity_grid", tmp_path, sparse_tasks=[[8, 3, 1]], digit_ks=[2],
                           num_seeds=2, width=8, num_train=200, digit_num_train=100,
                           num_validation=100, num_test=100, epochs=2, digit_epochs=1,
                           lr_factors=[1.0], workers=1)
    assert outputs_of(notebook, "error") == []
    assert len(image_outputs(notebook)) >= 3
    manifest = json.loads((tmp_path / "results" / "parity_grid" / "manifest.json").read_text())
    assert "test_accuracy_heatmaps.png" in manifest["files"]
    assert "halves.tex" in manifest["files"]
    assert len(list((tmp_path / "results" / "runs" / "parity_grid").glob("*.json"))) == 224


def test_source_hash_follows_any_edit(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "notes.txt").write_text("not a module\n")
    before = sweep.source_hash(tmp_path)
    (tmp_path / "notes.txt").write_text("changed\n")
    assert sweep.source_hash(tmp_path) == before
    (tmp_path / "a.py").write_text("x = 2\n")
    assert sweep.source_hash(tmp_path) != before


def test_library_version_names_sources():
    version, _, digest = sweep.library_version().partition("+")
    assert version == parity_learning.__version__
    assert digest == sweep.source_hash(Path(parity_learning.__file__).parent)

