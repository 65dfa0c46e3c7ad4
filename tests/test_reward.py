"""task=reward: a Bradley-Terry reward model trained from scratch on the synthetic pairs ranks held-out pairs."""

from __future__ import annotations

import pytest
from conftest import metric_series, train_in_process

pytestmark = pytest.mark.slow

REWARD = ["task=reward", "data.source.train_examples=400", "data.source.validation_examples=60",
          "model.config.n_layer=2", "trainer.max_steps=30", "trainer.val_check_interval=30",
          "callbacks.model_summary=null", "callbacks.progress_bar=null", "trainer.enable_progress_bar=false"]


def test_reward_model_ranks_held_out_pairs(tmp_path, cache_dir):
    """val/accuracy (the monitored metric) is over the 60 held-out pairs: measured 0.75 after 30 steps."""
    cfg, accuracy = train_in_process(tmp_path, cache_dir, REWARD)
    assert accuracy >= 0.65, accuracy
    assert metric_series(tmp_path / "run", "val/margin")[-1][1] > 0
    assert metric_series(tmp_path / "run", "train/accuracy")
