"""Runs killed (SIGKILL, SIGTERM) at chosen steps and resumed end bitwise equal to an uninterrupted run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import TEST_CALLBACKS, run_cli
from resume_helpers import SHORT, assert_same_params, completed_run, kill_group, launch, wait_for_step

pytestmark = pytest.mark.slow
# 3 documents: 34 training blocks, so real epochs of 4 steps (batch 8). Dropout draws from the global RNG:
# exact only if every RNG state is restored (RNGStateCheckpoint).
RUN = [*(a for a in SHORT if not a.startswith("trainer.limit_train_batches")), "data.max_documents=3",
       "model.config.resid_pdrop=0.1"]
CONFIG_CHANGED = "The config differs from the one this run started with"


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cache_dir) -> Path:
    """One uninterrupted run of 24 steps, shared by every kill test."""
    return completed_run(tmp_path_factory.mktemp("reference"), RUN, cache_dir)


def resume_chain(args: list[str], kill_steps: range, cwd: Path) -> None:
    """Launch, SIGKILL right after the checkpoint of the first step, relaunch (resuming), kill after the next…"""
    for step in kill_steps:
        kill = ["+callbacks.kill._target_=signal_at_step.SigkillAfterStep", f"+callbacks.kill.step={step}"]
        result = run_cli([*args, *kill], cwd=cwd, env=TEST_CALLBACKS)
        assert result.returncode == -9, result.stderr[-3000:]
    result = run_cli(args, cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]


def test_sigkill_after_every_step_of_two_epochs_then_resume_is_bitwise_equal(reference, tmp_path, cache_dir):
    """Killed after each of steps 1-8 in turn (epochs are 4 steps: 4 and 8 end one, and are validated), each
    launch resuming the previous one's checkpoint: the weights equal the uninterrupted run's."""
    run_dir = tmp_path / "run"
    args = [*RUN, f"run_dir={run_dir}", f"paths.cache_dir={cache_dir}"]
    resume_chain(args, range(1, 9), tmp_path)
    assert len((run_dir / "resumes.jsonl").read_text().splitlines()) == 8
    assert_same_params(reference, run_dir)
    epochs = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["epoch"]
    assert epochs == torch.load(reference / "checkpoints" / "last.ckpt", map_location="cpu",
                                weights_only=False)["epoch"]


def test_sigkill_with_limit_train_batches_resumes_exactly(tmp_path, cache_dir):
    """Epochs cut to 3 steps by `trainer.limit_train_batches`: kills at the cut (3) and after it (4)."""
    args = [*RUN, "trainer.limit_train_batches=3", "trainer.max_steps=8", f"paths.cache_dir={cache_dir}"]
    (tmp_path / "reference").mkdir()
    reference = completed_run(tmp_path / "reference", args, cache_dir)
    run_dir = tmp_path / "run"
    resume_chain([*args, f"run_dir={run_dir}"], range(2, 5), tmp_path)
    assert_same_params(reference, run_dir)


def test_sigkill_mid_write_falls_back_and_relaunch_reports_no_config_change(reference, tmp_path, cache_dir):
    """Killed soon after the checkpoints of steps 3, 7 and 10; before the last resume `last.ckpt` is
    truncated by hand (a kill during its write): the run falls back to the newest step checkpoint.
    Relaunching the same command reports no config change."""
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
    assert CONFIG_CHANGED not in output and CONFIG_CHANGED not in log.read_text()
    assert (run_dir / "finished.json").is_file()
    assert len((run_dir / "resumes.jsonl").read_text().splitlines()) == 3
    assert_same_params(reference, run_dir)


@pytest.mark.parametrize("step", [4, 6])
def test_sigterm_checkpoints_the_step_it_stopped_on_and_resumes_exactly(reference, tmp_path, cache_dir, step):
    """SIGTERM during step 4 (an epoch's last step) or 6 (mid-epoch): the run saves that step, exits cleanly,
    and the relaunch resumes it exactly."""
    run_dir = tmp_path / "run"
    args = [*RUN, f"run_dir={run_dir}", f"paths.cache_dir={cache_dir}",
            "callbacks.last_checkpoint.every_n_train_steps=8"]  # only the preemption save can hold the step
    signal_at = ["+callbacks.sigterm._target_=signal_at_step.SigtermDuringStep", f"+callbacks.sigterm.step={step}"]
    result = run_cli([*args, *signal_at], cwd=tmp_path, env=TEST_CALLBACKS)
    assert result.returncode == 0, result.stderr[-3000:]
    stopped = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert stopped["global_step"] == step and not (run_dir / "finished.json").exists()
    assert f"Stopped by a signal at step {step};" in result.stdout + result.stderr

    result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Resuming from {run_dir / 'checkpoints' / 'last.ckpt'}" in result.stdout + result.stderr
    assert_same_params(reference, run_dir)
