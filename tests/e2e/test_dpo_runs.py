"""Acceptance 4 of issue 34 through the CLI: a DPO run SIGKILLed after a checkpoint resumes to the uninterrupted
run's weights and metrics exactly (its reference rebuilt from the start, not from the resumed policy), and 2
processes (DDP, gloo) log and train what 1 process does with the same global batch. The same of precomputed
reference log-probabilities (task.module.precompute_reference), and under trainer=fsdp a reference sharded as
the policy is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import TEST_CALLBACKS, metric_series, run_cli
from resume_helpers import assert_same_params, completed_run, final_params

pytestmark = pytest.mark.slow

# 64 pairs, 8 a step: epochs of 8 steps, 10 steps in all; a checkpoint every step, validation every 5.
DPO_RUN = ["task=dpo", "data.source.train_examples=64", "data.source.validation_examples=12",
           "data.generation_examples=0", "data.batch_size=8", "data.eval_batch_size=5", "global_batch_size=8",
           "model.config.n_layer=2", "model.config.n_embd=64", "model.config.n_head=2", "model.config.n_positions=64",
           "optimizer.lr=2e-3", "trainer.max_steps=10", "trainer.val_check_interval=5", "trainer.log_every_n_steps=1",
           "trainer.accelerator=cpu", "callbacks.last_checkpoint.every_n_train_steps=1", "callbacks.export_hf=null",
           "callbacks.model_summary=null", "callbacks.progress_bar=null", "trainer.enable_progress_bar=false"]
METRICS = ("train/loss", "train/rewards/chosen", "train/rewards/margins", "train/rewards/accuracies",
           "train/logps/rejected", "val/loss", "val/rewards/margins", "val/rewards/accuracies")


PRECOMPUTED = [*DPO_RUN, "task.module.precompute_reference=true"]


@pytest.fixture(scope="module")
def single(tmp_path_factory, cache_dir) -> Path:
    return completed_run(tmp_path_factory.mktemp("single"), DPO_RUN, cache_dir)


@pytest.fixture(scope="module")
def precomputed(tmp_path_factory, cache_dir) -> Path:
    return completed_run(tmp_path_factory.mktemp("precomputed"), PRECOMPUTED, cache_dir)


def killed_and_resumed(args: list[str], tmp_path: Path, cache_dir: Path) -> Path:
    """`args` SIGKILLed once step 6's checkpoint is on disk, then relaunched to the end: its run directory."""
    run = [*args, f"run_dir={tmp_path / 'run'}", f"paths.cache_dir={cache_dir}"]
    kill = ["+callbacks.kill._target_=signal_at_step.SigkillAfterStep", "+callbacks.kill.step=6"]
    killed = run_cli([*run, *kill], tmp_path, env=TEST_CALLBACKS)
    assert killed.returncode == -9, killed.stderr[-3000:]
    resumed = run_cli(run, tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resuming from" in (tmp_path / "run" / "train.log").read_text()
    return tmp_path / "run"


def assert_same_series(a: Path, b: Path, atol: float) -> None:
    """Every metric of METRICS logged at the same steps by runs `a` and `b`, its values within `atol`."""
    for metric in METRICS:
        one, other = metric_series(a, metric), metric_series(b, metric)
        assert [s for s, _ in one] == [s for s, _ in other] and one, metric
        assert torch.allclose(torch.tensor([v for _, v in one]), torch.tensor([v for _, v in other]), rtol=0,
                              atol=atol), (metric, one, other)


def test_sigkill_after_a_checkpoint_then_resume_is_exact(single, tmp_path, cache_dir):
    run = killed_and_resumed(DPO_RUN, tmp_path, cache_dir)
    assert_same_params(single, run)
    assert not any(k.startswith("reference.") for k in final_params(single))  # the policy only
    for metric in METRICS:  # after the kill too: the same reference as the uninterrupted run
        assert metric_series(run, metric) == metric_series(single, metric), metric


def test_two_processes_equal_one(single, tmp_path, cache_dir):
    two = completed_run(tmp_path, [*DPO_RUN, "trainer=ddp"], cache_dir)
    assert_same_series(single, two, atol=1e-5)
    a, b = final_params(single), final_params(two)
    assert all(torch.allclose(a[k], b[k], atol=1e-4) for k in a)


def test_precomputed_reference_logs_what_the_live_one_does(single, precomputed):
    """Reference log-probabilities computed once before training and read from the batches: every logged loss,
    reward and log-probability of the 10 steps and 2 validations within 1e-6 of the live reference's."""
    assert_same_series(single, precomputed, atol=1e-6)
    assert "reference log-probabilities of the train pairs" in (precomputed / "train.log").read_text()


def test_precomputed_reference_resumes_exactly_after_sigkill(precomputed, tmp_path, cache_dir):
    """The relaunch rebuilds the starting policy, finds the same cache entry (keyed by its weights) and ends on the
    uninterrupted run's weights and metrics exactly."""
    run = killed_and_resumed(PRECOMPUTED, tmp_path, cache_dir)
    assert "Reusing cached reference log-probabilities of the train pairs" in (run / "train.log").read_text()
    assert_same_params(precomputed, run)
    for metric in METRICS:
        assert metric_series(run, metric) == metric_series(precomputed, metric), metric


def test_precomputed_reference_on_two_processes_is_computed_once(single, tmp_path):
    """trainer=ddp on a fresh cache: one process computes each split's log-probabilities, the other waits and reads
    them; the run logs what the 1-process live-reference run does."""
    cache = tmp_path / "cache"
    result = run_cli([*PRECOMPUTED, "trainer=ddp", f"run_dir={tmp_path / 'run'}", f"paths.cache_dir={cache}"],
                     tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    for split in ("train", "validation"):
        assert output.count(f"Building reference log-probabilities of the {split} pairs") == 1, output[-3000:]
    assert len([p for p in (cache / "reference_logps").iterdir() if p.is_dir()]) == 2
    assert_same_series(single, tmp_path / "run", atol=1e-5)


def test_fsdp_shards_the_reference_like_the_policy(single, tmp_path, cache_dir):
    """trainer=fsdp on 2 CPU processes (gloo): the frozen reference's parameters are DTensors, each rank holds
    about half of its bytes and no optimizer state for it, and the run logs what the 1-process run does."""
    held = tmp_path / "held"
    run = [*DPO_RUN, "trainer=fsdp", "trainer.accelerator=cpu", "trainer.precision=32-true", "trainer.devices=2",
           "+callbacks.held._target_=held_bytes.HeldBytes", f"+callbacks.held.dirpath={held}",
           f"run_dir={tmp_path / 'run'}", f"paths.cache_dir={cache_dir}"]
    result = run_cli(run, tmp_path, env=TEST_CALLBACKS)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((held / f"held-{rank}.json").read_text()) for rank in (0, 1)]
    whole = ranks[0]["reference_params"]
    assert whole > 0 and sum(rank["reference"] for rank in ranks) == whole
    for rank in ranks:
        assert rank["reference_sharded"] == rank["reference_count"] > 0  # every parameter a DTensor
        assert rank["reference"] <= 0.55 * whole
        assert rank["optimizer"] == 2 * (rank["params"] - rank["reference"])  # AdamW's two moments: the policy's
    assert_same_series(single, tmp_path / "run", atol=1e-5)


def test_fsdp_on_two_processes_trains_and_resumes_on_one(tmp_path, cache_dir):
    """trainer=fsdp: 2 CPU processes (gloo) train 4 steps with sharded checkpoints; the run resumes on 1 process
    (the same global batch by accumulation) to step 6, its reference rebuilt, and DPO's metrics go on."""
    run = [*DPO_RUN, "trainer=fsdp", "trainer.accelerator=cpu", "trainer.precision=32-true",
           "callbacks.last_checkpoint.every_n_train_steps=2", "trainer.val_check_interval=2",
           f"run_dir={tmp_path / 'run'}", f"paths.cache_dir={cache_dir}"]
    two = run_cli([*run, "trainer.devices=2", "trainer.max_steps=4"], tmp_path)
    assert two.returncode == 0, two.stderr[-3000:]
    one = run_cli([*run, "trainer.devices=1", "trainer.max_steps=6", "resume=force"], tmp_path)
    assert one.returncode == 0, one.stderr[-3000:]
    assert "Resuming from" in (tmp_path / "run" / "train.log").read_text()
    losses = metric_series(tmp_path / "run", "val/loss")
    assert [step for step, _ in losses] == [2, 4, 6] and losses[-1][1] < losses[0][1]
    accuracies = metric_series(tmp_path / "run", "val/rewards/accuracies")
    assert len(accuracies) == 3 and all(0 <= value <= 1 for _, value in accuracies)
