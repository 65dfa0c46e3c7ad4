"""Acceptance 3 of issue 20: a new objective is its module, its task YAML and its test, nothing else.

This test is the third file: it writes the other two into a directory of its own (a Python module on
PYTHONPATH, a `task/` config on Hydra's search path) and trains the objective with `lmlab-train`, unchanged:
"reversed-block" classification on the packed stdlib blocks: is a block's token order reversed (label 1)
or as written (label 0)? What it proves is the plumbing: no lmlab file changes for a new objective.
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


class ReversedBlockModule(HFModelModule):
    """Is a block's token order reversed? Every other block of a batch is."""

    auto_class = AutoModelForSequenceClassification
    peft_task_type = "SEQ_CLS"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, num_labels=2, **kwargs)
        self.model.config.pad_token_id = self.hparams.vocab_size  # a padding row: no input holds it
        self.val_accuracy = MeanMetric()

    def pairs(self, input_ids):
        labels = (torch.arange(len(input_ids), device=input_ids.device) % 2).long()  # 1: reversed
        return torch.where(labels[:, None].bool(), input_ids.flip(1), input_ids), labels

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
task_name: reversed_block
experiment_name: reversed_block
task:
  module:
    _target_: reversed_block.ReversedBlockModule
monitor:
  metric: val/loss
  mode: min
'''


def test_a_new_objective_is_a_module_a_yaml_and_a_test(tmp_path, cache_dir):
    user = tmp_path / "user"
    (user / "conf" / "task").mkdir(parents=True)
    (user / "reversed_block.py").write_text(MODULE)
    (user / "conf" / "task" / "reversed_block.yaml").write_text(TASK)
    env = {"PYTHONPATH": os.pathsep.join([str(user), os.environ.get("PYTHONPATH", "")])}
    result = run_cli(["task=reversed_block", f"hydra.searchpath=[file://{user / 'conf'}]", "debug=fast",
                      "data.max_documents=100", "data.vocab_size=512", "data.block_size=64", "data.batch_size=16",
                      "model.config.n_layer=2", "model.config.n_embd=64", "model.config.n_head=2",
                      "optimizer.lr=2e-3", "trainer.max_steps=60", "trainer.val_check_interval=30",
                      "trainer.limit_val_batches=4", "callbacks.model_summary=null", "callbacks.progress_bar=null",
                      "trainer.enable_progress_bar=false", f"paths.root_dir={tmp_path}",
                      f"paths.cache_dir={cache_dir}", "run_name=toy"], cwd=tmp_path, env=env)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    run_dir = tmp_path / "outputs" / "reversed_block" / "toy"
    losses = [loss for _, loss in metric_series(run_dir, "train/loss")]
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3  # the loss falls
    assert [step for step, _ in metric_series(run_dir, "val/accuracy")] == [30, 60]  # its own metric, logged
