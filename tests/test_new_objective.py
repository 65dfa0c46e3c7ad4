"""Acceptance 3 of issue 20: a new objective is its module, its task YAML and its test, nothing else.

This test is the third file: it writes the other two into a directory of its own (a Python module on
PYTHONPATH, a `task/` config on Hydra's search path) and trains the objective with `lmlab-train`, unchanged:
"next-half" classification on the packed stdlib blocks, where a block's second half either follows its
first half or is another block's (label 0 or 1). Code has structure a tiny model picks up within a few steps.
"""

from __future__ import annotations

import os

import pytest
from conftest import metric_series, run_cli

pytestmark = pytest.mark.slow

MODULE = '''
import torch
from torchmetrics import MeanMetric
from transformers import AutoModelForSequenceClassification

from lmlab.modules.base import HFModelModule


class NextHalfModule(HFModelModule):
    """Does a block's second half follow its first half? Negatives take the next block's second half."""

    auto_class = AutoModelForSequenceClassification
    peft_task_type = "SEQ_CLS"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, num_labels=2, **kwargs)
        self.model.config.pad_token_id = self.model.config.eos_token_id or 0
        self.val_accuracy = MeanMetric()

    def pairs(self, input_ids):
        half = input_ids.shape[1] // 2
        labels = (torch.arange(len(input_ids), device=input_ids.device) % 2).long()  # 1: swapped
        second = torch.where(labels[:, None].bool(), input_ids.roll(1, dims=0)[:, half:], input_ids[:, half:])
        return torch.cat([input_ids[:, :half], second], dim=1), labels

    def training_step(self, batch, batch_idx):
        inputs, labels = self.pairs(batch["input_ids"])
        loss = self.model(input_ids=inputs, labels=labels).loss
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        inputs, labels = self.pairs(batch["input_ids"])
        output = self.model(input_ids=inputs, labels=labels)
        self.val_accuracy.update((output.logits.argmax(-1) == labels).float())
        self.log("val/loss", output.loss)

    def on_validation_epoch_end(self):
        self.log("val/accuracy", self.val_accuracy.compute())
        self.val_accuracy.reset()
'''
TASK = '''# @package _global_
defaults:
  - override /model: gpt2-tiny
  - override /data: stdlib
task_name: next_half
experiment_name: next_half
task:
  module:
    _target_: next_half.NextHalfModule
monitor:
  metric: val/loss
  mode: min
'''


def test_a_new_objective_is_a_module_a_yaml_and_a_test(tmp_path, cache_dir):
    user = tmp_path / "user"
    (user / "conf" / "task").mkdir(parents=True)
    (user / "next_half.py").write_text(MODULE)
    (user / "conf" / "task" / "next_half.yaml").write_text(TASK)
    env = {"PYTHONPATH": os.pathsep.join([str(user), os.environ.get("PYTHONPATH", "")])}
    result = run_cli(["task=next_half", f"hydra.searchpath=[file://{user / 'conf'}]", "debug=fast",
                      "data.max_documents=100", "data.vocab_size=512", "data.block_size=64", "data.batch_size=16",
                      "model.config.n_layer=2", "model.config.n_embd=64", "model.config.n_head=2",
                      "optimizer.lr=2e-3", "trainer.max_steps=60", "trainer.val_check_interval=30",
                      "trainer.limit_val_batches=4", "callbacks.model_summary=null", "callbacks.progress_bar=null",
                      "trainer.enable_progress_bar=false", f"paths.root_dir={tmp_path}",
                      f"paths.cache_dir={cache_dir}", "run_name=toy"], cwd=tmp_path, env=env)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    run_dir = tmp_path / "outputs" / "next_half" / "toy"
    losses = [loss for _, loss in metric_series(run_dir, "train/loss")]
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3  # it learns
    assert metric_series(run_dir, "val/accuracy")[-1][1] > 0.6  # chance is 0.5
