"""GPT-2-style classifiers: from a config (`model=gpt2-tiny`) and from an lmlab CLM run (`model.init_from`).

A decoder pools its last token that is not padding, so the model must know the collator's pad token.
Three stdlib packages, a few dozen steps: the classifier must beat always answering the commonest package.
"""

from __future__ import annotations

import json

import pytest
from conftest import TINY, train_in_process
from omegaconf import OmegaConf

pytestmark = pytest.mark.slow

CLASSIFY = ["task=classify", "data.source.packages=[unittest,tkinter,email]", "data.max_examples=300",
            "data.max_length=32", "data.batch_size=16", "trainer.max_steps=40", "trainer.val_check_interval=20",
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
    assert report["validation/accuracy"] > majority + 0.05, (report["validation/accuracy"], majority)
    assert report["validation/mcc"] > 0.1


def test_gpt2_from_config_learns_the_stdlib_functions_task(tmp_path, cache_dir):
    train_in_process(tmp_path, cache_dir, [*CLASSIFY, "model=gpt2-tiny", "data.vocab_size=512",
                                           "model.config.n_layer=1", "model.config.n_embd=64", "model.config.n_head=2"])
    module_config = json.loads((tmp_path / "run" / "hf").joinpath("config.json").read_text()) \
        if (tmp_path / "run" / "hf").exists() else None
    assert module_config is None  # no export asked for; the checkpoint is what lmlab-eval reads
    assert_above_chance(validation_report(tmp_path / "run"))


def test_gpt2_initialised_from_an_lmlab_clm_run_learns_the_task(tmp_path, cache_dir):
    train_in_process(tmp_path / "clm", cache_dir, [*TINY, "model.config.n_layer=1"])  # writes hf/ (body + tokenizer)
    clm_run = tmp_path / "clm" / "run"
    assert (clm_run / "hf" / "tokenizer.json").is_file()
    train_in_process(tmp_path / "cls", cache_dir, [*CLASSIFY, "model=gpt2-tiny", f"model.init_from={clm_run}"])
    report = validation_report(tmp_path / "cls" / "run")
    assert_above_chance(report)
