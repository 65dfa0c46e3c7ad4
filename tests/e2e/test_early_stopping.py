"""`callbacks=early_stopping`: a run whose monitored metric stalls stops, and a resumed run keeps counting."""

from __future__ import annotations

import pytest
import torch
from conftest import TINY_BERT, train_in_process
from labelled_data import write_labelled_csvs

# A learning rate too small to change any prediction: val/accuracy stays exactly where it starts.
STALLED = ["callbacks=early_stopping", "callbacks.early_stopping.patience=2", "optimizer.lr=1e-9",
           "scheduler=constant", "scheduler.num_warmup_steps=0", "trainer.val_check_interval=2",
           "callbacks.export_hf=null"]


def early_stopping_state(ckpt) -> dict:
    checkpoint = torch.load(ckpt, weights_only=False, map_location="cpu")
    return next(state for key, state in checkpoint["callbacks"].items() if key.startswith("EarlyStopping"))


@pytest.mark.slow
def test_a_stalled_metric_stops_the_run_and_a_resumed_run_keeps_its_patience(tmp_path, cache_dir):
    data = write_labelled_csvs(tmp_path / "data")
    overrides = [*TINY_BERT, f"data.source.path={data}", *STALLED]

    # uninterrupted: validations at steps 2 (best), 4 (1 without improvement), 6 (2 = patience): stop
    train_in_process(tmp_path / "whole", cache_dir, [*overrides, "trainer.max_steps=40"])
    whole = tmp_path / "whole" / "run" / "checkpoints" / "last.ckpt"
    assert torch.load(whole, weights_only=False)["global_step"] == 6
    assert early_stopping_state(whole)["wait_count"] == 2

    # stopped after step 4, one validation without improvement already counted ...
    train_in_process(tmp_path / "split", cache_dir, [*overrides, "trainer.max_steps=4"])
    first = tmp_path / "split" / "run" / "checkpoints" / "last.ckpt"
    assert early_stopping_state(first)["wait_count"] == 1
    # ... then resumed: one more stalled validation (step 6) is enough. A fresh counter would stop at step 10.
    train_in_process(tmp_path / "split", cache_dir, [*overrides, "trainer.max_steps=40", "resume=force"])
    resumed = torch.load(first, weights_only=False)
    assert resumed["global_step"] == 6
    assert early_stopping_state(first)["wait_count"] == 2
