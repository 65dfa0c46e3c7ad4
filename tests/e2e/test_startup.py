"""Start-up: regional compilation (one block's graph reused by every layer) equals the whole-step compile,
a second launch loads every compiled graph from the cache, and `time_to_first_step_s` is recorded."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import TINY, metric_series, run_cli

from lmlab.modules import CausalLMModule

# no dropout: compiled and eager code draw different dropout masks
TINY_GPT2 = {"_target_": "transformers.GPT2Config", "n_layer": 3, "n_head": 2, "n_embd": 32, "n_positions": 64,
             "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}


def compiled_module(scope: bool | str) -> CausalLMModule:
    torch.manual_seed(0)
    module = CausalLMModule(model={"config": TINY_GPT2, "pad_vocab_multiple": 64, "compile": scope},
                            optimizer={"_target_": "torch.optim.AdamW"}, vocab_size=100)
    module.configure_model()
    return module


def loss_and_grads(module: CausalLMModule, input_ids: torch.Tensor) -> tuple[float, list[torch.Tensor]]:
    loss = module.next_token_loss(input_ids)
    loss.backward()
    return float(loss), [p.grad.clone() for p in module.model.parameters()]


def test_regional_compile_traces_one_block_for_all_layers_and_equals_the_whole_step_compile():
    import torch._dynamo
    from torch._dynamo.utils import counters

    from lmlab.models.blocks import transformer_blocks
    from lmlab.models.compile import compile_counts

    input_ids = torch.randint(0, 100, (2, 16))
    torch._dynamo.reset()
    counters.clear()
    regional = compiled_module("regional")
    assert len(transformer_blocks(regional.model)) == 3
    regional_loss, regional_grads = loss_and_grads(regional, input_ids)
    assert compile_counts()["graphs"] == 2  # one block graph for the three layers, and the loss on the logits
    assert set(regional.model.state_dict()) == set(compiled_module(False).model.state_dict())  # same checkpoints

    whole_loss, whole_grads = loss_and_grads(compiled_module(True), input_ids)
    assert regional_loss == pytest.approx(whole_loss, rel=1e-5)
    for got, want in zip(regional_grads, whole_grads, strict=True):
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-6)


def test_bad_compile_values_are_refused_before_training(tmp_path):
    for override, key in (("model.compile=blocks", "model.compile"), ("model.compile_mode=fast", "model.compile_mode")):
        result = run_cli([*TINY, override, f"paths.root_dir={tmp_path}"], cwd=tmp_path)
        assert result.returncode == 2
        assert result.stderr.strip().startswith(f"error: {key}=") and len(result.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "outputs").exists() or not any((tmp_path / "outputs").rglob("metrics.csv"))


@pytest.mark.slow
def test_a_second_launch_loads_every_compiled_graph_from_the_cache(tmp_path, cache_dir):
    """Two jobs of a sweep (two run directories, one cache): the second compiles nothing and trains the same."""
    compile_cache = tmp_path / "compile"
    summaries, losses = [], []
    for job in ("first", "second"):
        run_dir = tmp_path / job
        result = run_cli([*TINY, "model.compile=regional", "trainer.max_steps=4", "trainer.val_check_interval=4",
                          "trainer.log_every_n_steps=1", "callbacks.samples=null", "callbacks.export_hf=null",
                          f"paths.cache_dir={cache_dir}", f"paths.compile_cache_dir={compile_cache}",
                          f"run_dir={run_dir}"], cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "First optimizer step" in result.stdout + result.stderr
        summaries.append(json.loads((run_dir / "summary.json").read_text()))
        losses.append([loss for _, loss in metric_series(run_dir, "train/loss")])
    first, second = (s["compile"] for s in summaries)
    assert first["inductor_compiled"] > 0 and first["graphs"] >= 2
    assert second["inductor_compiled"] == 0 and second["inductor_from_cache"] == first["inductor_compiled"]
    assert losses[0] == pytest.approx(losses[1], rel=1e-6) and len(losses[0]) == 4
    for summary in summaries:
        assert 0 < summary["time_to_first_step_s"] < 600
