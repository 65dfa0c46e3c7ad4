"""What happened to a run, from its files and its lock: one answer for `lmlab-compare` and a sweep's summary."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from lmlab.checkpoint.resume import FINISHED_MARKER
from lmlab.runs.lock import lock_state

PRUNED_FILE = "pruned.json"  # in a run directory: the trial was stopped early by the pruner
ERROR_FILE = "error.txt"  # a failed job's error, written by the sweep (`lmlab.sweeps.summary.SweepReport`)


def last_step(run_dir: Path) -> int | None:
    """The steps the run has done: its summary's, else its last `metrics.csv` row's."""
    summary = run_dir / "summary.json"
    if summary.is_file() and (step := json.loads(summary.read_text()).get("global_step")) is not None:
        return int(step)
    if not (run_dir / "metrics.csv").is_file():
        return None
    with open(run_dir / "metrics.csv", newline="") as f:
        steps = [int(float(row["step"])) for row in csv.DictReader(f) if row.get("step")]
    return max(steps) if steps else None


def run_status(run_dir: Path, step: int | None = None) -> str:
    """`failed`, `pruned at step N`, `finished`, `running` (its lock's holder lives), `killed at step N` (the
    holder died holding the lock: SIGKILL, out of memory), `interrupted at step N` (stopped before its end,
    lock released: a signal), or `no metrics yet`. `step`: the run's last step, if the caller has read it."""
    if (run_dir / ERROR_FILE).is_file():
        return "failed"
    if pruned := trial_pruned(run_dir):
        return f"pruned at step {pruned['step']}"
    if (run_dir / FINISHED_MARKER).is_file():
        return "finished"
    lock = lock_state(run_dir)
    if lock == "alive":
        return "running"
    step = last_step(run_dir) if step is None else step
    if step is None:
        return "no metrics yet" if lock is None else "killed before its first step"
    return f"{'killed' if lock == 'dead' else 'interrupted'} at step {step}"


def trial_pruned(run_dir: str | Path) -> dict | None:
    """What the pruner decided for this run (step, value), or None when it ran its whole budget."""
    path = Path(run_dir) / PRUNED_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def record_pruned(run_dir: str | Path, trial: int, step: int, value: float) -> None:
    path = Path(run_dir) / PRUNED_FILE
    path.write_text(json.dumps({"trial": trial, "step": step, "value": value}, indent=2) + "\n")
