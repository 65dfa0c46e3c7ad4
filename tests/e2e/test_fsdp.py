"""Acceptance 1 of issue 22: `trainer=fsdp` (FSDP2 per block) with 2 processes on CPU (gloo), through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import TEST_CALLBACKS, metric_series, read_metrics, run_cli
from resume_helpers import SHORT

pytestmark = pytest.mark.slow

# Global batch 8 on 1 or 2 processes, 20 steps, validation (the whole split) every 4, dropout off.
BASE = [*(a for a in SHORT if not a.startswith(("trainer.limit_train_batches", "model.config."))),
        "data.max_documents=3", "global_batch_size=8", "trainer.accelerator=cpu", "trainer.max_steps=20",
        "trainer.limit_val_batches=null", "callbacks.last_checkpoint.every_n_train_steps=10"]
MODELS = {
    "gpt2": ["model.config.n_layer=2", "model.config.n_embd=64", "model.config.n_head=2"],
    "llama": ["model=llama-tiny", "model.config.num_hidden_layers=2", "model.config.hidden_size=64",
              "model.config.num_attention_heads=2", "model.config.num_key_value_heads=1",
              "model.config.intermediate_size=172"],
}
FSDP = ["trainer=fsdp", "trainer.devices=2", "trainer.precision=32-true"]


def held(run_dir: Path) -> list[str]:
    return ["+callbacks.held._target_=held_bytes.HeldBytes", f"+callbacks.held.dirpath={run_dir}/held"]


def run(tmp: Path, args: list[str], cache_dir: Path, export: bool = False) -> Path:
    tmp.mkdir()
    run_dir = tmp / "run"
    base = [a for a in BASE if not (export and a == "callbacks.export_hf=null")]
    result = run_cli([*base, *args, *held(run_dir), f"run_dir={run_dir}", f"paths.cache_dir={cache_dir}"], cwd=tmp,
                     env=TEST_CALLBACKS)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


@pytest.mark.parametrize("model", sorted(MODELS))
def test_fsdp_per_block_on_two_processes_trains_as_one_process_holding_half(model, tmp_path, cache_dir):
    from lmlab.checkpoint.sharded import load_sharded_checkpoint

    single = run(tmp_path / "single", MODELS[model], cache_dir, export=True)
    # the Llama run also recomputes its blocks' activations (model.activation_checkpointing) under FSDP
    checkpointing = ["model.activation_checkpointing=full"] if model == "llama" else []
    sharded = run(tmp_path / "fsdp", [*MODELS[model], *FSDP, *checkpointing], cache_dir, export=True)

    one, two = metric_series(single, "val/loss"), metric_series(sharded, "val/loss")
    assert [s for s, _ in one] == [s for s, _ in two] and len(one) >= 5
    assert torch.allclose(torch.tensor([v for _, v in two]), torch.tensor([v for _, v in one]), rtol=1e-5, atol=0)
    assert one[-1][1] < one[0][1] - 0.1  # it learned

    # one shard file per rank, and the gathered weights are the one process's
    checkpoint = sharded / "checkpoints" / "last.ckpt"
    assert sorted(p.name for p in checkpoint.glob("*.distcp")) == ["__0_0.distcp", "__1_0.distcp"]
    a = load_sharded_checkpoint(checkpoint)["state_dict"]
    b = torch.load(single / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    assert set(a) <= set(b) and all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)

    # every parameter sharded; each rank holds about half the parameter and optimizer bytes
    whole = json.loads((single / "held" / "held-0.json").read_text())
    for rank in (0, 1):
        part = json.loads((sharded / "held" / f"held-{rank}.json").read_text())
        assert part["sharded"] == part["count"] and part["model_params"] == whole["params"]
        assert 0.45 < (part["params"] + part["optimizer"]) / (whole["params"] + whole["optimizer"]) < 0.55

    # the hf/ export of the sharded run, gathered from its last checkpoint, is the one process's model
    from transformers import AutoModelForCausalLM

    exported = [dict(AutoModelForCausalLM.from_pretrained(r / "hf").named_parameters()) for r in (single, sharded)]
    assert exported[0].keys() == exported[1].keys()
    assert all(torch.allclose(exported[0][k], exported[1][k], atol=1e-5) for k in exported[0])


def test_fsdp_gathered_checkpoint_run_killed_after_a_checkpoint_resumes_it_exactly(tmp_path, cache_dir):
    """`trainer.strategy.sharded_checkpoint=false` (one gathered checkpoint file), SIGKILLed right after step 8's
    checkpoint and relaunched: it resumes at step 8 and ends as the uninterrupted run, each metrics row once."""
    from lmlab.checkpoint.resume import newest_valid_checkpoint

    args = [*BASE, *MODELS["gpt2"], *FSDP, "trainer.max_steps=12", "callbacks.last_checkpoint.every_n_train_steps=4",
            "trainer.strategy.sharded_checkpoint=false"]
    reference = run(tmp_path / "reference", args, cache_dir)

    (tmp_path / "killed").mkdir()
    run_dir = tmp_path / "killed" / "run"
    args = [*args, f"run_dir={run_dir}", f"paths.cache_dir={cache_dir}"]
    kill = ["+callbacks.kill._target_=signal_at_step.SigkillAfterStep", "+callbacks.kill.step=8"]
    result = run_cli([*args, *kill], cwd=tmp_path / "killed", env=TEST_CALLBACKS)
    assert result.returncode == -9, result.stderr[-3000:]
    newest, step, skipped = newest_valid_checkpoint(run_dir)
    assert step == 8 and not skipped and newest.is_file()  # one gathered file per checkpoint
    result = run_cli(args, cwd=tmp_path / "killed")
    assert result.returncode == 0, result.stderr[-3000:]
    resumes = [json.loads(line) for line in (run_dir / "resumes.jsonl").read_text().splitlines()]
    assert resumes[-1]["resumed_from"] == str(newest)

    a, b = (torch.load(r / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
            for r in (reference, run_dir))
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], rtol=0, atol=1e-5) for k in a)
    one, two = metric_series(reference, "val/loss"), metric_series(run_dir, "val/loss")
    assert [s for s, _ in one] == [s for s, _ in two] == [4, 8, 12]
    assert torch.allclose(torch.tensor([v for _, v in two]), torch.tensor([v for _, v in one]), rtol=0, atol=1e-5)
    assert row_keys(run_dir) == row_keys(reference)  # each row once: none lost, none repeated


def row_keys(run_dir: Path) -> list[tuple[str, tuple[str, ...]]]:
    """(step, the metrics it holds) for each row of metrics.csv."""
    return sorted((r["step"], tuple(sorted(k for k, v in r.items() if v))) for r in read_metrics(run_dir))
