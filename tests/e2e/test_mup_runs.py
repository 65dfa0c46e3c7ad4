"""model.mup=true (issue 33) in the runs a user launches: SIGKILLed and relaunched it ends bitwise as the
uninterrupted run (the checkpoint is rebuilt with μP), FSDP on two processes equals one process, compiled it trains
as eager does, and every export is a standard model with the run's logits."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import TEST_CALLBACKS, metric_series, run_cli
from resume_helpers import SHORT, assert_same_params, completed_run, final_params
from transformers import AutoModelForCausalLM

# 12 steps of global batch 8, a checkpoint and a validation every 4 steps; width 64 against a base of 16 (m = 4),
# at a learning rate where μP's 1/m on the hidden matrices and the logits matters; exported to hf/ at the end.
RUN = [*(a for a in SHORT if a != "callbacks.export_hf=null"), "model.mup=true", "model.mup_base_width=16",
       "optimizer.lr=1e-2", "data.max_documents=3",
       "global_batch_size=8", "data.eval_batch_size=5", "trainer.limit_val_batches=3", "trainer.max_steps=12",
       "trainer.accelerator=cpu", "trainer.gradient_clip_val=1.0", "callbacks.last_checkpoint.every_n_train_steps=4"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cache_dir):
    return completed_run(tmp_path_factory.mktemp("reference"), RUN, cache_dir)


def export_logits(run_dir) -> torch.Tensor:
    model = AutoModelForCausalLM.from_pretrained(run_dir / "hf").eval()
    assert "mup_width_multiplier" not in model.config.to_dict()  # folded: a standard model
    with torch.no_grad():
        return model(input_ids=torch.arange(64).view(2, 32) % model.config.vocab_size).logits


def kill_and_relaunch(run_dir, args: list[str], kill: list[str], tmp_path) -> None:
    result = run_cli([*args, f"run_dir={run_dir}", *kill], cwd=tmp_path, env=TEST_CALLBACKS)
    assert result.returncode == -9, result.stderr[-3000:]
    result = run_cli([*args, f"run_dir={run_dir}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Resuming from" in result.stdout + result.stderr


@pytest.mark.slow
def test_sigkilled_after_a_checkpoint_and_relaunched_ends_bitwise_as_the_uninterrupted_run(reference, tmp_path,
                                                                                            cache_dir):
    run_dir = tmp_path / "run"
    kill_and_relaunch(run_dir, [*RUN, f"paths.cache_dir={cache_dir}"],
                      ["trainer.plugins=[{_target_:kill_after_save.KillAfterSave,steps:[8]}]"], tmp_path)
    assert_same_params(reference, run_dir)
    assert metric_series(run_dir, "val/loss") == metric_series(reference, "val/loss")
    assert torch.equal(export_logits(run_dir), export_logits(reference))
    one = metric_series(reference, "val/loss")
    assert one[-1][1] < one[0][1] - 0.1  # it learned


@pytest.mark.slow
def test_fsdp_on_two_processes_killed_and_relaunched_equals_one_process(reference, tmp_path, cache_dir):
    """FSDP2 shards the μP model after μP has re-initialised and scaled it; its sharded checkpoint is rebuilt with
    μP on resume, and the export gathered from it is folded as the one-process run's is."""
    from lmlab.checkpoint.sharded import load_sharded_checkpoint

    run_dir = tmp_path / "run"
    kill_and_relaunch(run_dir, [*RUN, "trainer=fsdp", "trainer.devices=2", "trainer.precision=32-true",
                                f"paths.cache_dir={cache_dir}"],
                      ["+callbacks.kill._target_=signal_at_step.SigkillAfterStep", "+callbacks.kill.step=8"], tmp_path)
    one, two = metric_series(reference, "val/loss"), metric_series(run_dir, "val/loss")
    assert [s for s, _ in one] == [s for s, _ in two] == [4, 8, 12]
    assert torch.allclose(torch.tensor([v for _, v in two]), torch.tensor([v for _, v in one]), rtol=0, atol=1e-5)
    weights, expected = load_sharded_checkpoint(run_dir / "checkpoints" / "last.ckpt")["state_dict"], \
        final_params(reference)
    assert weights.keys() == expected.keys()
    assert all(torch.allclose(weights[k], expected[k], rtol=0, atol=1e-4) for k in weights)
    assert torch.allclose(export_logits(run_dir), export_logits(reference), rtol=0, atol=1e-3)


@pytest.mark.slow
def test_compiled_it_trains_as_the_eager_run(reference, tmp_path, cache_dir):
    run_dir = completed_run(tmp_path, [*RUN, "model.compile=true"], cache_dir)
    assert json.loads((run_dir / "summary.json").read_text())["compile"]["graphs"] >= 1  # it did compile
    one, compiled = metric_series(reference, "val/loss"), metric_series(run_dir, "val/loss")
    assert [s for s, _ in one] == [s for s, _ in compiled]
    assert torch.allclose(torch.tensor([v for _, v in compiled]), torch.tensor([v for _, v in one]), rtol=0,
                          atol=1e-3)
    assert torch.allclose(export_logits(run_dir), export_logits(reference), rtol=0, atol=1e-2)
