"""Against a real (one-node, local) SLURM cluster: sweeps, preemption, time-limit requeue, DDP over tasks.

`scripts/slurm_local.sh start` (as root) installs and starts the cluster; `.ci/run` does it before the tests.
Without `sbatch` or a cluster that answers, these tests skip.
"""

from __future__ import annotations

import csv
import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import HELPERS, TEST_CALLBACKS, TINY, metric_series, run_cli
from resume_helpers import SHORT, assert_same_params, completed_run, final_params
from wandb_offline import offline_run


def _cluster_up() -> bool:
    if not shutil.which("sbatch"):
        return False
    result = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
    return result.returncode == 0 and any(s in result.stdout for s in ("idle", "mixed", "allocated"))


pytestmark = [pytest.mark.slow, pytest.mark.slurm,
              pytest.mark.skipif(not _cluster_up(), reason="no SLURM cluster (bash scripts/slurm_local.sh start)")]
RUN = [*(a for a in SHORT if not a.startswith("trainer.limit_train_batches")), "data.max_documents=3",
       "model.config.resid_pdrop=0.1"]
SLURM_LAUNCHER = ["hydra/launcher=slurm", "hydra.launcher.partition=debug", "hydra.launcher.gpus_per_node=null",
                  "hydra.launcher.mem_gb=2", "hydra.launcher.cpus_per_task=1"]


def sbatch(script: Path, lines: list[str], *options: str) -> str:
    """Submit a batch script running `lines`; returns the job id."""
    header = " ".join(["--open-mode=append", f"--output={script.parent}/slurm-%j.out", *options])
    script.write_text(f"#!/bin/bash\n#SBATCH {header}\ncd {script.parent}\n" + "\n".join(lines) + "\n")
    return subprocess.run(["sbatch", "--parsable", str(script)], capture_output=True, text=True,
                          check=True).stdout.strip().split(";")[0]


def lmlab_train(args: list[str]) -> str:
    return shlex.join([sys.executable, "-m", "lmlab.train", *args])


def fresh_dir(path: Path) -> Path:
    path.mkdir()
    return path


def job_state(job: str) -> str:
    out = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout
    return next((w.split("=", 1)[1] for w in out.split() if w.startswith("JobState=")), "GONE")


def wait_for(condition, timeout: float, what: str, job: str | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert job is None or job_state(job) not in ("FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL"), \
            f"job {job} ended {job_state(job)} while waiting for {what}"
        assert time.monotonic() < deadline, f"no {what} after {timeout}s (job {job}: {job_state(job or '')})"
        time.sleep(0.5)


def test_slurm_multirun_runs_both_jobs_and_compare_tables_them(tmp_path, cache_dir):
    result = run_cli(["-m", *SLURM_LAUNCHER, *TINY, "optimizer.lr=1e-3,3e-4", "sweep_name=slurm",
                      f"paths.cache_dir={cache_dir}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert "Bypassing sacct error" not in output and "accounting storage is disabled" not in output.replace(
        "SLURM accounting is off here (sacct: Slurm accounting storage is disabled)", "")
    sweep = tmp_path / "outputs" / "clm" / "multirun" / "slurm"
    for job in ("0", "1"):
        for name in ("config.yaml", "metrics.csv", "finished.json", "checkpoints/last.ckpt", "hf/config.json"):
            assert (sweep / job / name).is_file(), f"{sweep / job / name} missing"
    table = run_cli([str(sweep)], cwd=tmp_path, module="lmlab.compare")
    assert table.returncode == 0, table.stderr
    assert "0.001" in table.stdout and "0.0003" in table.stdout


def test_a_sweep_across_device_counts_submits_each_job_with_its_own_tasks(tmp_path, cache_dir):
    """`-m trainer.devices=1,2`: job 0 is one SLURM task, job 1 two, each a DDP run of that many processes;
    their W&B names differ and lmlab-compare shows the device count."""
    sweep = ["trainer.devices=1,2", "trainer.accelerator=cpu", "trainer.max_steps=3", "trainer.val_check_interval=3",
             "sweep_name=devices", "logger=wandb", "logger.wandb.offline=true",
             "+callbacks.ranks._target_=record_ranks.RecordRanks"]
    result = run_cli(["-m", *SLURM_LAUNCHER, *TINY, *sweep, f"paths.cache_dir={cache_dir}"], cwd=tmp_path,
                     env=TEST_CALLBACKS)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = tmp_path / "outputs" / "clm" / "multirun" / "devices"
    for job, tasks in (("0", 1), ("1", 2)):
        assert (runs / job / "finished.json").is_file()
        ranks = [json.loads((runs / job / f"rank{rank}.json").read_text()) for rank in range(tasks)]
        assert {r["slurm_ntasks"] for r in ranks} == {str(tasks)} and {r["world_size"] for r in ranks} == {tasks}
        assert len({r["slurm_job_id"] for r in ranks}) == 1 and not (runs / job / f"rank{tasks}.json").exists()
    names = [offline_run(next((runs / job).glob("wandb/offline-run-*/run-*.wandb")))["name"] for job in "01"]
    assert names[0] != names[1] and "devices=1" in names[0] and "devices=2" in names[1]
    table = run_cli([str(runs)], cwd=tmp_path, module="lmlab.compare")
    assert table.returncode == 0, table.stderr
    with open(runs / "compare.csv", newline="") as f:
        rows = {row["run"]: row for row in csv.DictReader(f)}
    assert {run: row["trainer.devices"] for run, row in rows.items()} == {"0": "1", "1": "2"}, table.stdout


def test_usr1_preemption_checkpoints_requeues_and_resumes_exactly(tmp_path, cache_dir):
    reference = completed_run(fresh_dir(tmp_path / "reference"), RUN, cache_dir)
    run_dir = tmp_path / "run"
    # steps slowed to 0.3 s (the weights do not change): the signal lands mid-run, not after the end
    slow = ["+callbacks.slow._target_=slow_steps.SlowSteps", "+callbacks.slow.seconds=0.3"]
    command = lmlab_train([*RUN, *slow, f"run_dir={run_dir}", f"paths.cache_dir={cache_dir}"])
    job = sbatch(tmp_path / "job.sh", [f"export PYTHONPATH={HELPERS}", f"exec {command}"],
                 "--ntasks=1", "--cpus-per-task=1", "--requeue")
    wait_for(lambda: any(int(p.stem[4:]) >= 3 for p in (run_dir / "checkpoints").glob("step*.ckpt")), 300,
             "step 3", job)
    subprocess.run(["scancel", "--signal=USR1", "--batch", job], check=True)
    wait_for(lambda: (run_dir / "finished.json").is_file(), 400, "finished run", job)
    log = "".join(p.read_text() for p in tmp_path.glob("slurm-*.out"))
    assert "Stopped by a signal at step" in log and f"scontrol requeue {job}: exit status 0" in log
    assert f"Resuming from {run_dir / 'checkpoints' / 'last.ckpt'}" in log
    assert len((run_dir / "resumes.jsonl").read_text().splitlines()) == 1
    assert_same_params(reference, run_dir)


def test_time_limit_requeues_through_submitit_and_loses_no_step(tmp_path, cache_dir):
    """A 2-minute SLURM limit, SIGUSR2 60 s before it (submitit), steps slowed to 0.5 s so that the run
    outlasts a launch: it saves at a step boundary, submitit requeues it, and the next launch resumes from
    that very step, until it finishes."""
    slow = [*TINY, "trainer.max_steps=100", "trainer.val_check_interval=50", "trainer.log_every_n_steps=1",
            "callbacks.last_checkpoint.every_n_train_steps=1000", "sweep_name=limit",
            "+callbacks.slow._target_=slow_steps.SlowSteps", "+callbacks.slow.seconds=0.5"]
    result = run_cli(["-m", *SLURM_LAUNCHER, *slow, "hydra.launcher.timeout_min=2", "hydra.launcher.signal_delay_s=60",
                      "hydra.launcher.max_num_timeout=8", f"paths.cache_dir={cache_dir}"], cwd=tmp_path, timeout=1500,
                     env=TEST_CALLBACKS)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "outputs" / "clm" / "multirun" / "limit" / "0"
    assert (run_dir / "finished.json").is_file()
    resumes = (run_dir / "resumes.jsonl").read_text().splitlines()
    assert resumes, "the job was never requeued: make the run longer than the time limit"
    log = (run_dir / "train.log").read_text()
    stops = [int(line.split("at step ")[1].split(";")[0]) for line in log.splitlines() if "Stopped by a signal" in line]
    assert len(stops) == len(resumes) and "Handing the time-limit signal to submitit" in log
    steps = [s for s, _ in metric_series(run_dir, "train/loss")]
    assert steps == list(range(steps[0], 101))  # every step logged once: none lost, none repeated


def test_ddp_over_two_slurm_tasks_matches_one_process(tmp_path, cache_dir):
    ddp = [*RUN, "model.config.resid_pdrop=0.0", "global_batch_size=8", "trainer.limit_val_batches=null",
           "trainer.accelerator=cpu", "trainer.max_steps=8"]
    single = completed_run(fresh_dir(tmp_path / "single"), ddp, cache_dir)
    run_dir = tmp_path / "run"
    command = lmlab_train([*ddp, "trainer=ddp", "trainer.devices=2", f"run_dir={run_dir}",
                           f"paths.cache_dir={cache_dir}"])
    job = sbatch(tmp_path / "ddp.sh", [f"srun {command}"], "--nodes=1", "--ntasks-per-node=2", "--cpus-per-task=1")
    wait_for(lambda: job_state(job) in ("COMPLETED", "FAILED", "GONE"), 600, "the job's end")
    log = "".join(p.read_text() for p in tmp_path.glob("slurm-*.out"))
    assert job_state(job) in ("COMPLETED", "GONE") and (run_dir / "finished.json").is_file(), log[-3000:]
    assert "GLOBAL_RANK: 1" in log  # Lightning took the ranks from SLURM
    assert not (tmp_path / "outputs").exists()  # no second run directory
    train_log = (run_dir / "train.log").read_text()
    assert train_log.count("Run directory:") == 1 and train_log.count("Seed set to") == 1
    one, two = metric_series(single, "val/loss"), metric_series(run_dir, "val/loss")
    assert [s for s, _ in one] == [s for s, _ in two]
    assert torch.allclose(torch.tensor([v for _, v in one]), torch.tensor([v for _, v in two]), rtol=1e-5)
    a, b = final_params(single), final_params(run_dir)
    assert all(torch.allclose(a[k], b[k], atol=1e-4) for k in a)
