"""lmlab's Optuna sweeper: samplers, a study that a relaunch continues, multi-objective, pruning end to end."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from conftest import HELPERS, ROOT, TINY, read_metrics, run_cli

from lmlab.sweeps.search import search_space

QUADRATIC = HELPERS / "quadratic_search.py"


def search_quadratic(sweep: Path, *overrides: str) -> subprocess.CompletedProcess:
    """Optuna over (x - 2)^2 + (y - 1)^2 with lmlab's sweeper, the study stored in `sweep`."""
    return subprocess.run([sys.executable, str(QUADRATIC), "-m", "hydra/sweeper=optuna",
                           f"hydra.searchpath=[file://{ROOT / 'conf'}]", f"hydra.sweep.dir={sweep}",
                           "hydra.sweeper.sampler.seed=0", "+x=interval(-5.0,5.0)", "+y=interval(-3.0,3.0)",
                           *overrides], capture_output=True, text=True, timeout=300, cwd=sweep.parent)


def load_study(sweep: Path) -> optuna.Study:
    return optuna.load_study(study_name=sweep.name, storage=f"sqlite:///{sweep / 'optuna.db'}")


def test_search_space_reads_hydras_grammar_and_the_command_line_wins():
    distributions, fixed = search_space({"optimizer.lr": "tag(log, interval(1e-5, 1e-2))", "model": "a,b",
                                         "data.batch_size": "range(8, 33, 8)"}, ["model=c", "seed=1,2"])
    assert distributions == {
        "optimizer.lr": optuna.distributions.FloatDistribution(1e-5, 1e-2, log=True),
        "data.batch_size": optuna.distributions.IntDistribution(8, 32, step=8),
        "seed": optuna.distributions.CategoricalDistribution([1, 2]),
    }
    assert fixed == ["model=c"]


@pytest.mark.parametrize("sampler", ["TPESampler", "GPSampler", "CmaEsSampler"])
def test_each_sampler_finds_the_minimum_and_prints_the_command_that_reruns_it(tmp_path, sampler):
    sweep = tmp_path / "quad"
    result = search_quadratic(sweep, f"hydra.sweeper.sampler._target_=optuna.samplers.{sampler}",
                              "+hydra.sweeper.sampler.n_startup_trials=5", "hydra.sweeper.n_trials=16")
    assert result.returncode == 0, result.stderr[-3000:]
    study = load_study(sweep)
    assert f"sampler {sampler}" in result.stdout
    values = [t.value for t in study.trials]
    assert len(values) == 16 and min(values[5:]) < min(values[:5])  # the model-based trials beat the random ones
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["best_value"] == min(values)
    x, y = best["best_params"]["+x"], best["best_params"]["+y"]
    assert best["command"] == f"lmlab-train +x={x!r} +y={y!r}" and f"Rerun it: {best['command']}" in result.stdout
    assert sorted(int(p.name) for p in sweep.iterdir() if p.name.isdigit()) == list(range(16))  # job = trial


def test_a_relaunched_study_continues_to_n_trials_in_total_and_keeps_every_trial(tmp_path):
    sweep = tmp_path / "quad"
    assert search_quadratic(sweep, "hydra.sweeper.n_trials=3").returncode == 0
    before = {p: p.read_bytes() for p in sweep.glob("*/summary.json")}
    result = search_quadratic(sweep, "hydra.sweeper.n_trials=5")
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(load_study(sweep).trials) == 5
    assert sorted(p.parent.name for p in sweep.glob("*/summary.json")) == ["0", "1", "2", "3", "4"]
    assert {p: p.read_bytes() for p in before} == before  # the first launch's trials untouched
    assert "3 of 5 trials done" in result.stdout


def test_a_study_stopped_after_two_trials_and_relaunched_twice_samples_six_distinct_parameter_sets(tmp_path):
    """A seeded sampler created again by each launch must not replay earlier trials (nor the enqueued one)."""
    sweep = tmp_path / "quad"
    enqueue = "hydra.sweeper.enqueue=[{+x:1.5,+y:0.5}]"
    for n_trials in (2, 4, 6):
        result = search_quadratic(sweep, f"hydra.sweeper.n_trials={n_trials}", enqueue)
        assert result.returncode == 0, result.stderr[-3000:]
    params = [(t.params["+x"], t.params["+y"]) for t in load_study(sweep).trials]
    assert len(params) == 6 and len(set(params)) == 6, params
    assert params[0] == (1.5, 0.5)


def test_a_multi_objective_search_reports_its_pareto_front(tmp_path):
    sweep = tmp_path / "quad"
    result = search_quadratic(sweep, "hydra.sweeper.n_trials=8", "hydra.sweeper.objectives={loss:min,speed:max}")
    assert result.returncode == 0, result.stderr[-3000:]
    study = load_study(sweep)
    assert [d.name for d in study.directions] == ["MINIMIZE", "MAXIMIZE"]
    front = yaml.safe_load((sweep / "optimization_results.yaml").read_text())["solutions"]
    assert sorted(s["trial"] for s in front) == sorted(t.number for t in study.best_trials)
    for solution in front:
        x, y = solution["params"]["+x"], solution["params"]["+y"]
        assert solution["values"] == {"loss": pytest.approx((x - 2) ** 2 + (y - 1) ** 2),
                                      "speed": pytest.approx(-abs(x))}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_bad_trial_is_pruned_and_a_killed_search_continues_to_six_trials(tmp_path):
    """6 trials on debug=fast; the third (lr=5) is pruned; the search is killed in trial 3 and relaunched."""
    good = "optimizer.weight_decay:0.0,scheduler.num_warmup_steps:0"
    args = [sys.executable, "-m", "lmlab.train", "hparams_search=clm_optuna", *TINY, "sweep_name=s",
            "trainer.val_check_interval=5", "callbacks.samples=null", "callbacks.export_hf=null",
            f"paths.cache_dir={tmp_path / 'cache'}", "hydra.sweeper.n_trials=6",
            "hydra.sweeper.pruner.n_startup_trials=2",
            f"hydra.sweeper.enqueue=[{{optimizer.lr:1e-3,{good}}},{{optimizer.lr:2e-3,{good}}},"
            f"{{optimizer.lr:5.0,{good}}}]"]
    sweep = tmp_path / "outputs" / "clm" / "multirun" / "s"
    search = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    deadline = time.monotonic() + 600
    while not (sweep / "3").is_dir() and search.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(search.pid, signal.SIGKILL)
    stderr = search.communicate()[1]
    assert (sweep / "3").is_dir(), stderr[-3000:]

    steps = {job: max(int(row["step"]) for row in read_metrics(sweep / str(job))) for job in range(3)}
    assert (sweep / "2" / "pruned.json").is_file() and not (sweep / "0" / "pruned.json").exists()
    assert steps[2] < steps[0] == steps[1] >= 19  # stopped at the first validation (step 5), before its budget
    kept = {p: p.read_bytes() for job in range(3) for p in (sweep / str(job)).rglob("*") if p.is_file()}

    relaunch = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert relaunch.returncode == 0, relaunch.stderr[-3000:]
    assert "Running again the trials a stopped launch left unfinished: [3]" in relaunch.stdout + relaunch.stderr
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{sweep / 'optuna.db'}")
    states = [t.state for t in study.trials]
    assert len(states) == 6 and study.trials[2].state == optuna.trial.TrialState.PRUNED
    assert all(s in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for s in states)
    assert sorted(p.parent.name for p in sweep.glob("*/summary.json")) == [str(job) for job in range(6)]
    assert {p: p.read_bytes() for p in kept} == kept  # the first launch's trials untouched

    compared = run_cli([str(sweep)], cwd=tmp_path, module="lmlab.compare")
    assert compared.returncode == 0, compared.stderr
    with open(sweep / "compare.csv", newline="") as f:
        rows = {row["run"]: row for row in csv.DictReader(f)}
    assert rows["2"]["status"] == "pruned at step 5" and rows["0"]["status"] == "finished"
