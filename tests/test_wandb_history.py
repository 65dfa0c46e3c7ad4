"""Acceptance 1 of issue 23: after a SIGKILL at any moment and a relaunch, the run's W&B records hold every
`metrics.csv` point exactly once, at the same step, with the same value (W&B offline, its files parsed)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from conftest import TINY, run_cli
from test_resume_e2e import TEST_CALLBACKS

from lmlab.runs.tracker_history import csv_points, offline_files
from lmlab.runs.wandb_records import history_rows

pytestmark = pytest.mark.slow
# 8 steps, a validation and a checkpoint every 2, every step logged; the kill comes at step 4 (3 for
# mid-step: its checkpoint is older), after W&B has written some of the run and before it has written all.
RUN = [*TINY, "logger=wandb", "trainer.max_steps=8", "trainer.val_check_interval=2", "trainer.log_every_n_steps=1",
       "callbacks.last_checkpoint.every_n_train_steps=2", "callbacks.samples=null", "callbacks.export_hf=null",
       "trainer.num_sanity_val_steps=0"]
TIMING = ("train/tokens_per_sec", "train/mfu")  # measured again by the relaunch; the killed launch's stay in W&B


def wandb_points(run_dir: Path) -> Counter:
    """(step, metric) -> how many of the run's W&B history rows hold it, over every launch's file."""
    run_id = (run_dir / "wandb_id.txt").read_text().strip()
    files = offline_files(run_dir, run_id)
    assert files
    return Counter((row["trainer/global_step"], key) for path in files for row in history_rows(path)
                   for key in row if key != "trainer/global_step" and not key.startswith("_"))


def wandb_values(run_dir: Path) -> dict:
    run_id = (run_dir / "wandb_id.txt").read_text().strip()
    return {(row["trainer/global_step"], key): value for path in offline_files(run_dir, run_id)
            for row in history_rows(path) for key, value in row.items()}


@pytest.mark.parametrize("moment", ["mid-step", "after-validation", "after-checkpoint", "during-checkpoint",
                                    "during-validation"])
def test_wandb_holds_every_metrics_csv_point_once_after_a_kill_and_a_relaunch(moment, tmp_path, cache_dir):
    run_dir = tmp_path / "run"
    args = [*RUN, f"run_dir={run_dir}", f"paths.cache_dir={cache_dir}"]
    step = 3 if moment == "mid-step" else 4
    killed = run_cli([*args, "+callbacks.kill._target_=signal_at_step.SigkillAt", f"+callbacks.kill.step={step}",
                      f"+callbacks.kill.moment={moment}"], cwd=tmp_path, env=TEST_CALLBACKS)
    assert killed.returncode == -9, killed.stderr[-3000:]
    relaunched = run_cli(args, cwd=tmp_path)
    assert relaunched.returncode == 0, relaunched.stderr[-3000:]

    expected = {(step, key): value for step, values in csv_points(run_dir) for key, value in values.items()}
    assert max(step for step, _ in expected) == 8 and any(key == "val/loss" for _, key in expected)
    counts, values = wandb_points(run_dir), wandb_values(run_dir)
    assert set(counts) == set(expected), (set(expected) - set(counts), set(counts) - set(expected))
    assert [point for point, n in counts.items() if n > 1] == []  # every point once
    for point, value in expected.items():
        if point[1] not in TIMING:
            assert values[point] == pytest.approx(value, rel=1e-6), point
