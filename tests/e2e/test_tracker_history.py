"""Every tracker holds what `metrics.csv` holds: each point once, at its step, with its value (issues 23 and 30).

Crossed as users combine them: `trainer.log_every_n_steps` 1, 5, 10 × `trainer.val_check_interval` 2, 5, 10 and
epoch end × `callbacks=downstream_eval` off and on, each a plain run and a run SIGKILLed after a validation and
relaunched; and every kill moment of a step (mid-step, during and after the checkpoint, during and after a
validation). W&B (offline, its files), TensorBoard (`EventAccumulator`) and MLflow (`MlflowClient` on a local
store) are read with their own readers; a console with W&B's "will be ignored" fails the test.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import HELPERS, TEST_CALLBACKS, TINY, assert_no_dropped_data
from tracker_readers import csv_held, mlflow_held, tensorboard_held, wandb_held

pytestmark = pytest.mark.slow

TIMING = ("train/tokens_per_sec", "train/mfu")  # measured again by a relaunch; the killed launch's stay held
BASE = [*TINY, "logger=[wandb,tensorboard,mlflow]", "trainer.max_steps=20", "trainer.limit_train_batches=10",
        "trainer.num_sanity_val_steps=0", "callbacks.last_checkpoint.every_n_train_steps=4",
        "callbacks.export_hf=null"]
DOWNSTREAM = ["callbacks=downstream_eval", "callbacks.downstream_eval.every_n_steps=10",
              "callbacks.downstream_eval.limit=4", "callbacks.model_summary=null", "callbacks.progress_bar=null"]
CADENCES = list(itertools.product([1, 5, 10], ["2", "5", "10", "1.0"], [False, True]))
MOMENTS = ["mid-step", "after-validation", "after-checkpoint", "during-checkpoint", "during-validation"]
# the kill moments of issue 23: 8 steps, every step logged, a validation and a checkpoint every 2
MOMENT_RUN = [*TINY, "logger=[wandb,tensorboard,mlflow]", "trainer.max_steps=8", "trainer.val_check_interval=2",
              "trainer.log_every_n_steps=1", "callbacks.last_checkpoint.every_n_train_steps=2",
              "callbacks.export_hf=null", "trainer.num_sanity_val_steps=0"]


def cadence_name(log_every: int, val: str, downstream: bool) -> str:
    return f"log{log_every}-val{val}-{'eval' if downstream else 'plain'}"


def kill(step: int, moment: str) -> list[str]:
    return ["+callbacks.kill._target_=signal_at_step.SigkillAt", f"+callbacks.kill.step={step}",
            f"+callbacks.kill.moment={moment}"]


@pytest.fixture(scope="module")
def launches(tmp_path_factory, cache_dir):
    """Every job of this module, launched once (two at a time); (directory, {job: exit statuses}, store URI)."""
    root = tmp_path_factory.mktemp("trackers")
    store = f"sqlite:///{root}/mlflow.db"
    jobs = []
    for log_every, val, downstream in CADENCES:
        name = cadence_name(log_every, val, downstream)
        epoch_end = ["trainer.check_val_every_n_epoch=1"] if val == "1.0" else []  # an epoch: 10 steps
        args = [*BASE, f"trainer.log_every_n_steps={log_every}", f"trainer.val_check_interval={val}", *epoch_end,
                *(DOWNSTREAM if downstream else []), f"logger.mlflow.tracking_uri={store}",
                f"paths.cache_dir={cache_dir}"]
        jobs.append({"name": f"{name}-once", "launches": [[*args, f"run_dir={root / (name + '-once')}"]]})
        killed = [*args, f"run_dir={root / (name + '-killed')}"]
        jobs.append({"name": f"{name}-killed", "launches": [[*killed, *kill(10, "after-validation")], killed]})
    for moment in MOMENTS:
        args = [*MOMENT_RUN, f"logger.mlflow.tracking_uri={store}", f"paths.cache_dir={cache_dir}",
                f"run_dir={root / moment}"]
        jobs.append({"name": moment, "launches": [[*args, *kill(3 if moment == "mid-step" else 4, moment)], args]})
    # the first job builds the tokenizer and the data cache alone; then two at a time
    spec = root / "jobs.json"
    spec.write_text(json.dumps({"cwd": str(root), "parallel": 1, "jobs": jobs[:1]}))
    first = _run_matrix(spec)
    spec.write_text(json.dumps({"cwd": str(root), "parallel": 2, "jobs": jobs[1:]}))
    return root, {**first, **_run_matrix(spec)}, store


def _run_matrix(spec: Path) -> dict[str, list[int]]:
    result = subprocess.run([sys.executable, str(HELPERS / "launch_matrix.py"), str(spec)],
                            capture_output=True, text=True, timeout=1800, env=TEST_CALLBACKS_ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


# W&B's warnings shown (WANDB_SILENT hides the one this module looks for)
TEST_CALLBACKS_ENV = {**{k: v for k, v in os.environ.items() if k != "WANDB_SILENT"}, **TEST_CALLBACKS}


def check_trackers(run_dir: Path, store: str) -> None:
    """Each tracker holds every point of `metrics.csv` (same step, same value) and no other, none twice."""
    expected = csv_held(run_dir)
    assert expected, run_dir
    trackers = {"wandb": wandb_held(run_dir), "tensorboard": tensorboard_held(run_dir),
                "mlflow": mlflow_held(run_dir, store)}
    trackers["wandb"] = {point: values for point, values in trackers["wandb"].items() if point[1] != "samples"}
    for tracker, held in trackers.items():
        assert set(held) == set(expected), (tracker, sorted(set(expected) - set(held)),
                                            sorted(set(held) - set(expected)))
        # as often as metrics.csv holds it (Lightning repeats `epoch` in each row of a step), W&B once a step
        repeated = {p for p, values in held.items() if len(values) > (1 if tracker == "wandb" else len(expected[p]))}
        assert not repeated, (tracker, sorted(repeated))
        for point, values in expected.items():
            if point[1] not in TIMING:
                assert held[point][-1] == pytest.approx(values[-1], rel=1e-6), (tracker, point)


def check_console(root: Path, name: str) -> None:
    """No tracker dropped data; lm-eval's progress bars and git probes stay out of a training console."""
    for log in sorted(root.glob(f"{name}.*.log")):
        console = log.read_text()
        assert_no_dropped_data(console)
        assert "fatal: not a git repository" not in console and "Running loglikelihood requests" not in console


@pytest.mark.parametrize(("log_every", "val", "downstream"), CADENCES)
@pytest.mark.parametrize("launch", ["once", "killed"])
def test_every_tracker_holds_the_points_of_metrics_csv(launch, log_every, val, downstream, launches):
    root, statuses, store = launches
    name = f"{cadence_name(log_every, val, downstream)}-{launch}"
    assert statuses[name] == ([0] if launch == "once" else [-9, 0]), (root / f"{name}.0.log").read_text()[-3000:]
    check_console(root, name)
    run_dir = root / name
    check_trackers(run_dir, store)
    steps = {step for step, key in csv_held(run_dir) if key == "val/loss"}
    assert max(steps) == 20 and (10 in steps)  # the last step's validation, and the one the kill came after
    if downstream:
        assert {step for step, key in csv_held(run_dir) if key.startswith("eval/")} == {10, 20}
    samples = Counter(step for (step, key), values in wandb_held(run_dir).items() if key == "samples"
                      for _ in values)
    assert samples == Counter(dict.fromkeys(steps, 1))  # a table of samples at each validation, once


@pytest.mark.parametrize("moment", MOMENTS)
def test_every_tracker_holds_every_point_once_whatever_the_kill_moment(moment, launches):
    root, statuses, store = launches
    assert statuses[moment] == [-9, 0], (root / f"{moment}.1.log").read_text()[-3000:]
    check_console(root, moment)
    check_trackers(root / moment, store)
    assert max(step for step, _ in csv_held(root / moment)) == 8


def test_a_sweep_logs_to_one_mlflow_experiment_and_a_relaunch_continues_its_runs(tmp_path, cache_dir):
    """Two jobs: one MLflow experiment, a run each with its config, metrics and `hf/` artifact; relaunched with a
    larger budget, the same two MLflow runs continue, each point once."""
    from conftest import run_cli
    from mlflow.tracking import MlflowClient

    store = f"sqlite:///{tmp_path}/mlflow.db"
    args = ["-m", *TINY, "logger=mlflow", f"logger.mlflow.tracking_uri={store}", "logger.mlflow.log_hf_export=true",
            "optimizer.lr=1e-3,3e-3", "sweep_name=lrs", "trainer.val_check_interval=2",
            "callbacks.last_checkpoint.every_n_train_steps=2", f"paths.root_dir={tmp_path}",
            f"paths.cache_dir={cache_dir}"]
    first = run_cli([*args, "trainer.max_steps=4"], cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    jobs = [tmp_path / "outputs" / "clm" / "multirun" / "lrs" / str(i) for i in range(2)]
    ids = [(job / "mlflow_id.txt").read_text().strip() for job in jobs]
    client = MlflowClient(store)
    [experiment] = [e for e in client.search_experiments() if e.name != "Default"]
    assert experiment.name == "clm-lrs"
    assert sorted(r.info.run_id for r in client.search_runs([experiment.experiment_id])) == sorted(ids)
    for run_id, lr in zip(ids, ("0.001", "0.003"), strict=True):
        run = client.get_run(run_id)
        assert run.data.params["optimizer.lr"] == lr and run.info.status == "FINISHED"
        assert {f.path for f in client.list_artifacts(run_id, "hf")} >= {"hf/config.json", "hf/model.safetensors"}
    again = run_cli([*args, "trainer.max_steps=8", "resume=force"], cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert [(job / "mlflow_id.txt").read_text().strip() for job in jobs] == ids  # the same MLflow runs, continued
    assert len(client.search_runs([experiment.experiment_id])) == 2
    for job, run_id in zip(jobs, ids, strict=True):
        held = mlflow_held(job, store)
        assert {step for step, key in held if key == "val/loss"} == {2, 4, 6, 8}
        assert set(held) == set(csv_held(job))
        assert client.get_run(run_id).data.tags["resumed.trainer.max_steps"] == "8"
    from lmlab.compare import main as compare  # what lmlab-compare reads from the store is metrics.csv's

    sweep = jobs[0].parent
    tables = {}
    for source in ("csv", "mlflow"):
        compare([str(sweep), f"source={source}", f"out={tmp_path / source}"])
        tables[source] = (tmp_path / source / "compare.csv").read_text()
    assert tables["mlflow"] == tables["csv"]
