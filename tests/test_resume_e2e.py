"""Acceptance 1-3: runs killed (SIGKILL, SIGTERM) and resumed end bitwise equal to an uninterrupted run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from conftest import run_cli
from resume_helpers import SHORT, assert_same_params, completed_run, kill_group, launch, wait_for_step

pytestmark = pytest.mark.slow
# 3 documents: 34 training blocks, so real epochs of 4 steps (kill points fall mid-epoch and on epoch
# ends). Dropout draws from the global RNG: exact only if every RNG state is restored (RNGStateCheckpoint).
RUN = [*(a for a in SHORT if not a.startswith("trainer.limit_train_batches")), "data.max_documents=3",
       "model.config.resid_pdrop=0.1"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cache_dir) -> Path:
    """One uninterrupted run of 24 steps, shared by every kill test."""
    return completed_run(tmp_path_factory.mktemp("reference"), RUN, cache_dir)


def test_sigkill_at_several_steps_then_resume_is_bitwise_equal(reference, tmp_path, cache_dir):
    """Killed soon after the checkpoints of steps 3, 7 and 10 (epochs are 4 steps), and
    resumed each time; before the last resume `last.ckpt` is truncated by hand (acceptance 3)."""
    run_dir, log = tmp_path / "run", tmp_path / "train.log"
    args = [*RUN, f"run_dir={run_dir}", f"paths.cache_dir={cache_dir}"]
    for step in (3, 7, 10):
        with launch(args, tmp_path, log) as process:
            wait_for_step(run_dir, step, process)
            kill_group(process)
            assert process.returncode == -9
    last = run_dir / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])

    result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert "Skipping a checkpoint that does not load" in output and "last.ckpt" in output
    assert f"Resuming from {run_dir / 'checkpoints' / 'step'}" in output
    assert (run_dir / "finished.json").is_file()
    assert len((run_dir / "resumes.jsonl").read_text().splitlines()) == 3
    assert_same_params(reference, run_dir)


def test_sigterm_checkpoints_the_step_it_stopped_on_and_resumes_exactly(reference, tmp_path, cache_dir):
    """SIGTERM during step 6 (mid-epoch; epochs are 4 steps): the run saves step 6 and exits cleanly.

    Known limit, not tested: a signal during the last step of an epoch resumes one epoch off (README)."""
    run_dir = tmp_path / "run"
    args = [*RUN, f"run_dir={run_dir}", f"paths.cache_dir={cache_dir}",
            "callbacks.last_checkpoint.every_n_train_steps=4"]  # only the preemption save can hold step 6
    signal_at = ["+callbacks.sigterm._target_=signal_at_step.SigtermDuringStep", "+callbacks.sigterm.step=6"]
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))}
    result = run_cli([*args, *signal_at], cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    stopped = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert stopped["global_step"] == 6 and not (run_dir / "finished.json").exists()
    assert "Stopped by a signal at step 6;" in result.stdout + result.stderr

    result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Resuming from {run_dir / 'checkpoints' / 'last.ckpt'}" in result.stdout + result.stderr
    assert_same_params(reference, run_dir)
