"""Sweeps: a shared cache built once under concurrency, failed runs reported, multirun and Optuna end to end."""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import os
import time
from pathlib import Path

import pytest
import yaml
from conftest import QUICK, compose, metric_series, run_cli
from wandb_offline import offline_run

from lmlab.data.cache import cached_dir
from lmlab.sweeps.summary import sweep_summary


def _ask_for_entry(cache: Path, builders: Path, barrier, results) -> None:
    """One process of the race: wait for the other, then ask the cache for the same entry."""

    def build(tmp: Path) -> None:
        with open(builders, "a") as f:
            f.write(f"{os.getpid()}\n")
        for i in range(10):  # slow enough that the other process asks while this one writes
            (tmp / f"part{i}.bin").write_bytes(bytes([i]) * 100_000)
            time.sleep(0.05)

    barrier.wait()
    results.put(str(cached_dir(cache, "entry", build, "test data")))


def test_two_processes_asking_for_one_cache_entry_build_it_once(tmp_path):
    cache, builders = tmp_path / "cache", tmp_path / "builders.txt"
    context = multiprocessing.get_context("fork")  # fork: no second import of the package
    barrier, results = context.Barrier(2), context.Queue()
    procs = [context.Process(target=_ask_for_entry, args=(cache, builders, barrier, results)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    assert len(builders.read_text().split()) == 1  # exactly one writer
    assert {results.get(timeout=5), results.get(timeout=5)} == {str(cache / "entry")}
    parts = sorted((cache / "entry").iterdir())
    assert [p.name for p in parts] == [f"part{i}.bin" for i in range(10)]
    assert all(p.read_bytes() == bytes([i]) * 100_000 for i, p in enumerate(parts))  # complete, not torn
    assert sorted(p.name for p in cache.iterdir()) == ["entry", "entry.lock"]  # no half-built leftovers


@pytest.mark.parametrize("model", ["gpt2-tiny", "llama-tiny"])
@pytest.mark.parametrize("data", ["stdlib", "wikitext2"])
def test_every_job_of_the_documented_sweep_composes(model, data):
    """`lmlab-train -m model=gpt2-tiny,llama-tiny data=stdlib,wikitext2 optimizer.lr=1e-3,3e-4`, job by job."""
    cfg = compose([f"model={model}", f"data={data}", "optimizer.lr=3e-4", "hydra.mode=MULTIRUN", "sweep_name=s"])
    assert cfg.model.name == model and cfg.optimizer.lr == 3e-4
    assert cfg.data.source._target_ == {"stdlib": "lmlab.data.StdlibCorpus", "wikitext2": "lmlab.data.HubDataset"}[data]
    assert cfg.hydra.sweep.dir.endswith("outputs/clm/multirun/s")


def test_sweep_summary_counts_every_outcome_and_names_each_failed_run_and_its_error(tmp_path):
    from test_compare import kill_holding_the_lock

    from lmlab.runs.status import record_pruned

    for job in ("0", "1", "2", "3", "4"):
        (tmp_path / job).mkdir()
    for job in ("0", "2"):
        (tmp_path / job / "finished.json").write_text("{}")
    (tmp_path / "1" / "error.txt").write_text("LmlabError: optimizer.lr=-0.001 must be positive\noverrides: ...\n")
    record_pruned(tmp_path / "3", trial=3, step=10, value=5.2)
    (tmp_path / "4" / "metrics.csv").write_text("step,train/loss\n5,6.1\n10,5.9\n")
    kill_holding_the_lock(tmp_path / "4")
    summary = sweep_summary(tmp_path)
    assert summary.splitlines()[0].endswith("2 of 5 runs finished, 1 failed, 1 pruned, 1 killed")
    assert "FAILED #1: LmlabError: optimizer.lr=-0.001 must be positive" in summary
    assert "#3: pruned at step 10" in summary and "#4: killed at step 10" in summary
    assert f"lmlab-compare {tmp_path}" in summary


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_multirun_over_models_and_learning_rates(tmp_path):
    """2 models x 3 learning rates, one of them invalid: 4 runs train, 2 fail, the data is tokenized once."""
    result = run_cli(["-m", "model=gpt2-tiny,llama-tiny", "optimizer.lr=1e-3,3e-4,-1e-3", *QUICK, "logger=wandb",
                      "sweep_name=s", f"paths.cache_dir={tmp_path / 'cache'}"], cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0  # a run failed, and the command says so
    sweep = tmp_path / "outputs" / "clm" / "multirun" / "s"
    assert sorted(int(p.name) for p in sweep.iterdir() if p.name.isdigit()) == list(range(6))

    # Tokenizer and packed splits are built by the first run and reused by the three others.
    assert output.count("Building tokenizer (cache miss)") == 1, output[-3000:]
    assert output.count("Building tokenized train split (cache miss)") == 1
    assert output.count("Building tokenized validation split (cache miss)") == 1
    assert output.count("Reusing cached tokenizer") == 3  # once by each later run that trains (lmlab.data.cache)

    failed = sorted(p.parent.name for p in sweep.glob("*/error.txt"))
    finished = sorted(p.parent.name for p in sweep.glob("*/summary.json"))
    assert len(failed) == 2 and len(finished) == 4
    for job in failed:
        assert (sweep / job / "error.txt").read_text().startswith("LmlabError: optimizer.lr=-0.001 must be a positive")
    assert "4 of 6 runs finished, 2 failed" in result.stderr
    assert "must be a positive learning rate" in result.stderr

    # Each run is its own W&B run (finished before the next began), grouped by the sweep.
    ids = set()
    for job in finished:
        overrides = yaml.safe_load((sweep / job / "overrides.yaml").read_text())
        model = next(o for o in overrides if o.startswith("model="))
        lr = next(o for o in overrides if o.startswith("optimizer.lr=")).replace("optimizer.", "")
        [wandb_file] = (sweep / job).glob("wandb/offline-run-*/run-*.wandb")
        run = offline_run(wandb_file)
        assert run["group"] == "clm-s" and run["job_type"] == "clm"
        assert model in run["name"].split(",") and lr in run["name"].split(",")
        assert any("val/loss" in row for row in run["history"])
        ids.add(run["id"])
    assert len(ids) == 4

    # lmlab-compare: one row per run, the swept keys as columns, metrics as in each run's CSV.
    compared = run_cli([str(sweep)], cwd=tmp_path, module="lmlab.compare")
    assert compared.returncode == 0, compared.stderr
    assert "(4 curves)" in compared.stdout
    with open(sweep / "compare.csv", newline="") as f:
        rows = {row["run"]: row for row in csv.DictReader(f)}
    assert sorted(rows) == [str(i) for i in range(6)]
    for job in finished:
        overrides = yaml.safe_load((sweep / job / "overrides.yaml").read_text())
        assert f"model={rows[job]['model']}" in overrides and f"optimizer.lr={rows[job]['optimizer.lr']}" in overrides
        values = [v for _, v in metric_series(sweep / job, "val/loss")]
        assert rows[job]["best val/loss"] == f"{min(values):.4g}" and rows[job]["final val/loss"] == f"{values[-1]:.4g}"
        assert rows[job]["status"] == "finished"
    assert all(rows[job]["status"].startswith("failed: LmlabError") for job in failed)
    assert (sweep / "compare.png").stat().st_size > 0 and (sweep / "compare.md").is_file()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_optuna_search_reports_the_best_trial(tmp_path):
    result = run_cli(["hparams_search=clm_optuna", "hydra.sweeper.n_trials=3", *QUICK, "sweep_name=opt",
                      f"paths.cache_dir={tmp_path / 'cache'}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = tmp_path / "outputs" / "clm" / "multirun" / "opt"
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert set(best["best_params"]) == {"optimizer.lr", "optimizer.weight_decay", "scheduler.num_warmup_steps"}
    # Optuna minimized what train() returned: the last val/loss of each trial.
    finals = {job.name: metric_series(job, "val/loss")[-1][1] for job in sweep.iterdir() if job.name.isdigit()}
    assert len(finals) == 3 and best["best_value"] == pytest.approx(min(finals.values()))
    best_job = min(finals, key=finals.get)
    trial_overrides = yaml.safe_load((sweep / best_job / "overrides.yaml").read_text())
    assert f"optimizer.lr={best['best_params']['optimizer.lr']}" in trial_overrides
    assert "Best parameters:" in result.stdout + result.stderr


def _own_data_config(project: Path) -> Path:
    """A user's project: `conf/data/mine.yaml` (text files of their own) beside a corpus, outside the package."""
    (project / "conf" / "data").mkdir(parents=True)
    corpus = project / "corpus.txt"
    corpus.write_text(Path(argparse.__file__).read_text())
    (project / "conf" / "data" / "mine.yaml").write_text(
        f"# my corpus\ndefaults:\n  - files\n  - _self_\nsource:\n  train: {corpus}\n")
    return project / "conf"


@pytest.mark.slow
def test_a_sweep_spans_a_packaged_data_config_and_the_users_own(tmp_path):
    conf = _own_data_config(tmp_path / "project")
    result = run_cli(["-m", "data=stdlib,mine", f"hydra.searchpath=[file://{conf}]", *QUICK, "trainer.max_steps=2",
                      "sweep_name=own", f"paths.cache_dir={tmp_path / 'cache'}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = tmp_path / "outputs" / "clm" / "multirun" / "own"
    sources = {}
    for job in ("0", "1"):
        assert (sweep / job / "finished.json").is_file()
        sources[job] = yaml.safe_load((sweep / job / "config.yaml").read_text())["data"]["source"]
    assert sources["0"]["_target_"] == "lmlab.data.StdlibCorpus"
    assert sources["1"]["_target_"] == "lmlab.data.TextFiles" and sources["1"]["train"].endswith("corpus.txt")


def test_config_dir_adds_the_users_config_groups(tmp_path):
    conf = _own_data_config(tmp_path / "project")
    result = run_cli(["--config-dir", str(conf), "data=mine", "--cfg", "job"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert yaml.safe_load(result.stdout)["data"]["source"]["_target_"] == "lmlab.data.TextFiles"


def test_a_failed_sweep_job_ends_with_the_summary_and_its_traceback_stays_in_its_error_file(tmp_path):
    """Two jobs refused by validation (cheap): the console ends with lmlab's summary; Hydra's "Error executing job
    ... Traceback ... HYDRA_FULL_ERROR" is not printed (the traceback is in each job's error.txt)."""
    result = run_cli(["-m", "optimizer.lr=-1e-3,-2e-3", "sweep_name=bad", f"paths.cache_dir={tmp_path / 'cache'}"],
                     cwd=tmp_path)
    assert result.returncode == 1, result.stderr[-3000:]
    for hydra_line in ("Error executing job", "Traceback", "HYDRA_FULL_ERROR"):
        assert hydra_line not in result.stdout + result.stderr, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    sweep = tmp_path / "outputs" / "clm" / "multirun" / "bad"
    assert lines[-4] == f"Sweep {sweep}: 0 of 2 runs finished, 2 failed"
    for line, (job, lr) in zip(lines[-3:-1], ((0, -0.001), (1, -0.002)), strict=True):
        assert line.startswith(f"  FAILED #{job}: LmlabError: optimizer.lr={lr} must be a positive learning rate")
        assert line.endswith(f"(details: {sweep / str(job) / 'error.txt'})")
    assert "Traceback" in (sweep / "0" / "error.txt").read_text()


@pytest.mark.parametrize(("override", "says"), [
    ("hydra.sweeper.sampler._target_=optuna.samplers.TPESamplr",
     "hydra.sweeper.sampler._target_='optuna.samplers.TPESamplr' names nothing importable"),
    ("hydra.sweeper.n_trials=0", "hydra.sweeper.n_trials=0 must be a positive number of trials"),
])
def test_a_bad_search_setting_is_one_line_before_any_job(override, says, tmp_path):
    result = run_cli(["-m", "hparams_search=clm_optuna", "debug=fast", override, f"paths.root_dir={tmp_path}"],
                     cwd=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"error: {says}"), result.stderr
    assert not (tmp_path / "outputs").exists()
