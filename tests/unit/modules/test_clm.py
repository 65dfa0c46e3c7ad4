"""CausalLMModule: its metrics against hand computations, overfitting, the run directory and the hf/ export."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import TINY, metric_series, train_in_process

from lmlab.models import fuse_activations
from lmlab.modules import CausalLMModule
from lmlab.modules.base import weight_decay_groups

TINY_GPT2 = {"config": {"_target_": "transformers.GPT2Config", "n_layer": 2, "n_head": 2, "n_embd": 32,
                        "n_positions": 64}}
ADAMW = {"_target_": "torch.optim.AdamW", "lr": 1e-3, "weight_decay": 0.1}


def make_module(**kwargs) -> CausalLMModule:
    torch.manual_seed(0)
    return CausalLMModule(model=TINY_GPT2, optimizer=ADAMW, vocab_size=50, **kwargs)


def test_validation_perplexity_is_exp_of_mean_token_cross_entropy():
    module = make_module().eval()
    batches = [torch.randint(0, 50, (3, 16)), torch.randint(0, 50, (5, 9))]  # unequal token counts
    total_nll, total_tokens = 0.0, 0
    with torch.no_grad():
        for batch in batches:
            module.validation_step({"input_ids": batch}, 0)
            logits = module.model(input_ids=batch).logits[:, :-1]
            log_probs = F.log_softmax(logits.double(), dim=-1)
            nll = -log_probs.gather(-1, batch[:, 1:, None]).squeeze(-1)
            total_nll += nll.sum().item()
            total_tokens += nll.numel()
    loss = module.val_loss.compute().item()
    assert loss == pytest.approx(total_nll / total_tokens, rel=1e-5)
    assert math.exp(loss) == pytest.approx(math.exp(total_nll / total_tokens), rel=1e-4)


def test_weight_decay_skips_biases_and_norms():
    module = make_module()
    decay, no_decay = weight_decay_groups(module.model, 0.1)
    names = {id(p): n for n, p in module.model.named_parameters()}
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(names[id(p)].endswith("weight") and p.ndim == 2 for p in decay["params"])
    no_decay_names = {names[id(p)] for p in no_decay["params"]}
    assert any(".ln_1." in n for n in no_decay_names) and any(n.endswith(".bias") for n in no_decay_names)
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(module.model.parameters()))


def test_tiny_model_overfits_a_short_text(tmp_path, cache_dir):
    text = tmp_path / "short.txt"
    text.write_text("the quick brown fox jumps over the lazy dog.\n" * 40)
    _, _ = train_in_process(tmp_path, cache_dir, [
        *TINY, "data=files", f"data.source.train={text}", "data.source.validation_fraction=0.5",
        "data.vocab_size=300", "data.block_size=32", "data.batch_size=4",
        "trainer.max_steps=120", "trainer.val_check_interval=40", "trainer.log_every_n_steps=10",
        "optimizer.lr=3e-3", "optimizer.weight_decay=0.0", "scheduler=constant", "callbacks.samples=null",
    ])
    losses = metric_series(tmp_path / "run", "train/loss")
    assert losses[0][1] > 3.0
    assert losses[-1][1] < 0.5


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, cache_dir):
    tmp_path = tmp_path_factory.mktemp("tiny_run")
    cfg, metric = train_in_process(tmp_path, cache_dir, [*TINY, "trainer.max_steps=30",
                                                         "trainer.val_check_interval=10"])
    return tmp_path / "run", cfg, metric


def test_run_directory_holds_config_checkpoint_metrics_and_export(tiny_run):
    run_dir, cfg, metric = tiny_run
    for name in ("config.yaml", "run.json", "metrics.csv", "checkpoints/last.ckpt", "hf/config.json",
                 "hf/tokenizer.json", "samples.txt"):
        assert (run_dir / name).is_file(), name
    val = metric_series(run_dir, "val/loss")
    assert len(val) == 3 and val[-1][1] < val[0][1]
    assert metric == pytest.approx(val[-1][1])
    assert metric_series(run_dir, "train/tokens_per_sec")[-1][1] > 0


def test_hf_export_reloads_with_the_checkpoints_logits(tiny_run):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run_dir, _, _ = tiny_run
    exported = AutoModelForCausalLM.from_pretrained(run_dir / "hf").eval()
    tokenizer = AutoTokenizer.from_pretrained(run_dir / "hf")
    # weights_only=False: lmlab checkpoints also hold every process's RNG states (numpy arrays among them)
    module = CausalLMModule.load_from_checkpoint(run_dir / "checkpoints" / "last.ckpt", map_location="cpu",
                                                 weights_only=False).eval()
    input_ids = tokenizer("def main():\n    return 0\n", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        expected = module.model(input_ids=input_ids).logits
        actual = exported(input_ids=input_ids).logits  # transformers' own gelu_new: equal to float rounding
        assert torch.allclose(actual, expected, atol=1e-5)
        assert fuse_activations(exported) > 0  # with lmlab's one-kernel GELU: the very same weights, bit for bit
        assert torch.equal(exported(input_ids=input_ids).logits, expected)
    assert exported.config.eos_token_id == tokenizer.eos_token_id
