"""A run continued with a larger budget (`resume=force trainer.max_steps=<more>`): same run, same
directory, one line saying so, and the LR schedule re-planned or continued as `scheduler.on_budget_change` says."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import TINY, metric_series, run_cli
from transformers import get_scheduler

from lmlab.errors import LmlabError
from lmlab.modules.schedule import hold_after, schedule_steps


def cosine(steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    return get_scheduler("cosine", optimizer, num_warmup_steps=2, num_training_steps=steps)


def lr_at(scheduler, step: int) -> float:
    return scheduler.lr_lambdas[0](step)


def test_replan_plans_for_the_new_budget_and_continue_for_the_first_one():
    assert schedule_steps(20, "replan", resumed=10) == 20
    assert schedule_steps(20, "continue", resumed=10) == 10
    assert schedule_steps(20, "continue", resumed=None) == 20  # a fresh start plans for its budget
    with pytest.raises(LmlabError, match="scheduler.on_budget_change='later'"):
        schedule_steps(20, "later", resumed=10)


def test_a_schedule_is_held_at_its_last_value_past_its_end():
    held, plain = cosine(10), cosine(10)
    hold_after(held, 10)
    assert [lr_at(held, s) for s in range(11)] == [lr_at(plain, s) for s in range(11)]
    assert lr_at(plain, 15) > lr_at(plain, 10)  # the cosine rises again: why it is held
    assert [lr_at(held, s) for s in (11, 15, 20)] == [lr_at(plain, 10)] * 3


@pytest.mark.slow
def test_resume_force_with_a_larger_max_steps_continues_the_same_run(tmp_path, cache_dir):
    args = [*TINY, "callbacks.samples=null", "callbacks.export_hf=null", f"paths.root_dir={tmp_path}",
            f"paths.cache_dir={cache_dir}"]
    first = run_cli([*args, "trainer.max_steps=10"], cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    [run_dir] = (tmp_path / "outputs" / "clm").iterdir()
    second = run_cli([*args, "trainer.max_steps=20", "resume=force"], cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert [p.name for p in (tmp_path / "outputs" / "clm").iterdir()] == [run_dir.name]
    assert json.loads((run_dir / "finished.json").read_text())["global_step"] == 20
    output = second.stdout + second.stderr
    assert output.count("Continuing this run from step 10 with another budget (trainer.max_steps: 10 -> 20); "
                        "the LR schedule is re-planned for the new budget (scheduler.on_budget_change=replan)") == 1
    assert "The config differs" not in output  # the budget is not a change of what is trained
    assert [s for s, _ in metric_series(run_dir, "train/loss")] == [5, 10, 15, 20]
    assert [s for s, _ in metric_series(run_dir, "val/loss")] == [10, 20]
    third = run_cli([*args, "trainer.max_steps=30", "resume=force"], cwd=tmp_path)  # names the previous budget
    assert third.returncode == 0, third.stderr[-3000:]
    assert "with another budget (trainer.max_steps: 20 -> 30)" in third.stdout + third.stderr
