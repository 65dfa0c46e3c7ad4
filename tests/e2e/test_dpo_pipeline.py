"""Acceptance 2 of issue 34: SFT → DPO on the embedded sets. A tiny GPT-2 SFT'd on uppercasing letter strings, then
DPO'd (model.init_from=<the SFT run>) on the preference pairs of the same prompts: on held-out pairs the chosen
answer's log-ratio beats the rejected one's for >= 90% of them, and greedy exact match on the 200 held-out prompts
does not fall below the SFT model's. lmlab-generate answers from the DPO checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SFT_TINY, metric_series, run_cli, train_in_process

pytestmark = pytest.mark.slow

# Every one of the 200 validation prompts is answered greedily for val/exact_match, by SFT and by DPO alike.
SFT = [*SFT_TINY, "data.generation_examples=200", "optimizer.lr=5e-3", "trainer.max_steps=300",
       "trainer.val_check_interval=300"]
DPO = ["task=dpo", *SFT_TINY[1:], "data.generation_examples=200", "data.batch_size=32", "task.module.beta=1.0",
       "optimizer.lr=2e-4", "trainer.max_steps=60", "trainer.val_check_interval=60"]


def test_dpo_after_sft_prefers_the_right_answers_and_keeps_exact_match(tmp_path, cache_dir):
    (tmp_path / "sft").mkdir()
    (tmp_path / "dpo").mkdir()
    sft_cfg, _ = train_in_process(tmp_path / "sft", cache_dir, SFT)
    sft_run = Path(sft_cfg.paths.run_dir)
    dpo_cfg, _ = train_in_process(tmp_path / "dpo", cache_dir, [*DPO, f"model.init_from={sft_run}"])
    dpo_run = Path(dpo_cfg.paths.run_dir)

    sft_exact = metric_series(sft_run, "val/exact_match")[-1][1]
    accuracy, exact = metric_series(dpo_run, "val/rewards/accuracies"), metric_series(dpo_run, "val/exact_match")
    print(f"SFT exact match {sft_exact}; DPO accuracy {accuracy}, exact match {exact}")
    assert accuracy[-1][1] >= 0.9, accuracy
    assert exact[-1][1] >= sft_exact, (exact, sft_exact)
    assert metric_series(dpo_run, "val/rewards/margins")[-1][1] > 0

    out = tmp_path / "answers.jsonl"
    result = run_cli([str(dpo_run / "checkpoints" / "last.ckpt"), "upper abc", "upper xyzw", "max_new_tokens=8",
                      f"out={out}"], tmp_path, module="lmlab.generate")
    assert result.returncode == 0, result.stderr[-2000:]
    assert [json.loads(line)["completion"] for line in out.read_text().splitlines()] == ["ABC", "XYZW"]
