"""The local_gpus launcher: each job of a sweep on GPUs of its own, fake GPUs here (the jobs run on CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import HELPERS, ROOT

JOB = HELPERS / "gpu_slot_job.py"


def sweep_on_gpus(sweep: Path, gpus: str, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(JOB), "-m", "hydra/launcher=local_gpus",
                           f"hydra.searchpath=[file://{ROOT / 'conf'}]", f"hydra.sweep.dir={sweep}", *overrides],
                          capture_output=True, text=True, timeout=300, cwd=sweep.parent,
                          env={**os.environ, "CUDA_VISIBLE_DEVICES": gpus})


def records(sweep: Path) -> dict[int, dict]:
    return {int(p.parent.name): json.loads(p.read_text()) for p in sweep.glob("*/gpus.json")}


def test_jobs_that_overlap_in_time_never_share_a_gpu_and_hold_as_many_as_they_ask(tmp_path):
    sweep = tmp_path / "s"
    result = sweep_on_gpus(sweep, "0,1,2,3", "+trainer.devices=1,2", "+k=1,2,3", "+seconds=3")
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = records(sweep)
    assert sorted(jobs) == list(range(6))
    for number, job in jobs.items():
        asked = 1 if number < 3 else 2  # the first swept key varies slowest: jobs 0-2 ask for 1 GPU, 3-5 for 2
        assert len(job["gpus"]) == len(set(job["gpus"])) == asked and set(job["gpus"]) <= {"0", "1", "2", "3"}
    overlapping = 0
    for a in jobs:
        for b in jobs:
            if a < b and jobs[a]["start"] < jobs[b]["end"] and jobs[b]["start"] < jobs[a]["end"]:
                overlapping += 1
                assert not set(jobs[a]["gpus"]) & set(jobs[b]["gpus"]), (a, b, jobs)
    assert overlapping >= 3  # the jobs did run side by side


def test_a_killed_job_frees_its_gpus_and_the_sweep_goes_on(tmp_path):
    sweep = tmp_path / "s"
    # Jobs 0 and 1 take both GPUs and SIGKILL themselves; 2 and 3 can only run once those GPUs are free again.
    result = sweep_on_gpus(sweep, "0,1", "+die=true,false", "+k=1,2", "+trainer.devices=2", "+seconds=1",
                           "+hydra.callbacks.sweep_report._target_=lmlab.sweeps.summary.SweepReport")
    assert result.returncode != 0  # the sweep says a job failed
    assert "job #0 ended by signal 9 (SIGKILL)" in result.stderr + result.stdout
    jobs = records(sweep)
    assert sorted(jobs) == [2, 3] and all(job["gpus"] == ["0", "1"] for job in jobs.values())
    for killed in ("0", "1"):  # each killed job's directory says so, and the sweep's summary names it
        assert (sweep / killed / "error.txt").read_text().startswith(
            f"RuntimeError: job #{killed} ended by signal 9 (SIGKILL), without a result")
        assert f"FAILED #{killed}: RuntimeError: job #{killed} ended by signal 9" in result.stderr
    assert not (sweep / "2" / "error.txt").exists()


def test_a_job_asking_for_more_gpus_than_the_sweep_sees_is_refused_before_any_runs(tmp_path):
    sweep = tmp_path / "s"
    result = sweep_on_gpus(sweep, "0,1", "+trainer.devices=1,4", "+seconds=1")
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "error: job #1 asks for trainer.devices=4 GPUs but the sweep sees 2 (0,1); set CUDA_VISIBLE_DEVICES or "
        "hydra.launcher.gpus"]
    assert records(sweep) == {} and not [p for p in sweep.glob("*") if p.name != "multirun.yaml"]
