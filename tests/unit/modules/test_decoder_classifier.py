"""GPT-2-style classifiers: from a config (`model=gpt2-tiny`) and from an lmlab CLM run (`model.init_from`).

A decoder pools its last token that is not padding, so the model must know the collator's pad token.
Two stdlib packages (asyncio, tkinter), 40 steps: the classifier must clearly beat always answering the
commonest package.
"""

from __future__ import annotations

import json

import pytest
from conftest import TINY, train_in_process
from omegaconf import OmegaConf

CLASSIFY = ["task=classify", "data.source.packages=[asyncio,tkinter]", "data.max_documents=400",
            "data.max_length=48", "data.batch_size=16", "trainer.max_steps=40", "trainer.val_check_interval=20",
            "optimizer.lr=3e-3", "scheduler.num_warmup_steps=4", "callbacks.model_summary=null",
            "callbacks.progress_bar=null", "trainer.enable_progress_bar=false", "callbacks.export_hf=null"]


def validation_report(run_dir) -> dict:
    from lmlab.evaluate import evaluate

    evaluate(OmegaConf.create({"ckpt_path": str(run_dir / "checkpoints" / "last.ckpt"), "split": "validation",
                               "batch_size": None, "accelerator": "cpu", "output_dir": None}))
    return json.loads((run_dir / "eval" / "validation_metrics.json").read_text())


def assert_above_chance(report: dict) -> None:
    support = [scores["support"] for scores in report["per_class"].values()]
    majority = max(support) / sum(support)
    assert report["validation/accuracy"] > majority + 0.1, (report["validation/accuracy"], majority)
    assert report["validation/mcc"] > 0.3


def test_a_decoder_pools_its_last_real_token_whatever_the_padding(tmp_path):
    """A GPT-2 saved without a pad token (like the hub's gpt2) gets the tokenizer's: a padded example then scores
    exactly as it does alone."""
    import torch
    from transformers import GPT2Config, GPT2Model

    from lmlab.data.tokenizer import train_bpe
    from lmlab.modules import SequenceClassificationModule

    tokenizer = train_bpe(["def f(x):\n    return x + 1\n", "class A:\n    pass\n"] * 20, vocab_size=300)
    GPT2Model(GPT2Config(vocab_size=len(tokenizer), n_layer=1, n_embd=32, n_head=2)).save_pretrained(tmp_path / "gpt2")
    module = SequenceClassificationModule(
        model={"pretrained": str(tmp_path / "gpt2"), "config": None}, optimizer={"_target_": "torch.optim.AdamW"},
        labels=["a", "b", "c"], tokenizer=tokenizer).eval()
    assert module.model.config.pad_token_id == tokenizer.pad_token_id is not None
    texts = ["def f(x): return x", "class A: pass and more tokens here"]
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    assert (batch["input_ids"][0] == tokenizer.pad_token_id).any()  # the first one is padded on the right
    with torch.no_grad():
        together = module(dict(batch)).logits
        alone = module(dict(tokenizer(texts[:1], return_tensors="pt"))).logits
    torch.testing.assert_close(together[0], alone[0])


@pytest.mark.slow
def test_gpt2_from_config_learns_the_stdlib_functions_task(tmp_path, cache_dir):
    train_in_process(tmp_path, cache_dir, [*CLASSIFY, "model=gpt2-tiny", "data.vocab_size=512",
                                           "model.config.n_layer=1", "model.config.n_embd=64", "model.config.n_head=2"])
    assert_above_chance(validation_report(tmp_path / "run"))


@pytest.mark.slow
def test_gpt2_initialised_from_an_lmlab_clm_run_learns_the_task(tmp_path, cache_dir):
    train_in_process(tmp_path / "clm", cache_dir, [*TINY, "model.config.n_layer=1"])  # writes hf/ (body + tokenizer)
    clm_run = tmp_path / "clm" / "run"
    assert (clm_run / "hf" / "tokenizer.json").is_file()
    train_in_process(tmp_path / "cls", cache_dir, [*CLASSIFY, "model=gpt2-tiny", f"model.init_from={clm_run}"])
    assert_above_chance(validation_report(tmp_path / "cls" / "run"))
