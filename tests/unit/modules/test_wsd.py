"""scheduler=wsd (issue 33): warmup, a constant LR, then a decay of the chosen shape over the run's last fraction."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import compose
from hydra.utils import instantiate

from lmlab.errors import LmlabError
from lmlab.modules.options import SCHEDULERS, WSD_SHAPES
from lmlab.modules.schedule import hold_after
from lmlab.modules.wsd import SHAPES, wsd_schedule


def learning_rates(steps: int, **kwargs) -> list[float]:
    """The LR factor at each step 0 … steps + 4 of a schedule planned for `steps` (held after, as lmlab does)."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = wsd_schedule(optimizer, num_training_steps=steps, **kwargs)
    hold_after(scheduler, steps)
    rates = []
    for _ in range(steps + 5):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


@pytest.mark.parametrize(("shape", "halfway"), [("linear", 0.5), ("cosine", 0.5), ("1-sqrt", 1 - math.sqrt(0.5))])
def test_warmup_then_stable_then_the_decay_over_the_last_fraction(shape, halfway):
    lr = learning_rates(100, num_warmup_steps=10, decay_fraction=0.2, decay_type=shape)
    assert lr[0] == 0 and lr[5] == pytest.approx(0.5)  # linear warmup over 10 steps
    assert lr[10:81] == [1.0] * 71  # stable until the last 20 steps
    assert lr[90] == pytest.approx(halfway)  # halfway through the decay, by its shape
    assert all(a >= b for a, b in zip(lr[80:100], lr[81:101], strict=True))
    assert lr[100:] == [0.0] * 5  # at the end and after it (held): min_lr_ratio


def test_the_stable_phase_is_the_same_for_every_budget():
    short, long = learning_rates(100, num_warmup_steps=10), learning_rates(300, num_warmup_steps=10)
    assert short[:80] == long[:80]


def test_min_lr_ratio_and_an_impossible_plan():
    assert learning_rates(50, decay_fraction=0.5, decay_type="linear", min_lr_ratio=0.1)[50] == pytest.approx(0.1)
    with pytest.raises(LmlabError, match="do not fit in 20 steps"):
        learning_rates(20, num_warmup_steps=10, decay_fraction=0.6)
    with pytest.raises(LmlabError, match="scheduler.decay_type='exp'"):
        learning_rates(20, decay_type="exp")


def test_the_config_builds_it_and_validation_knows_its_shapes(tmp_path):
    cfg = compose(["scheduler=wsd", f"paths.root_dir={tmp_path}"])
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = instantiate({k: v for k, v in cfg.scheduler.items() if k != "on_budget_change"},
                           optimizer=optimizer, num_training_steps=400)
    assert schedule.lr_lambdas[0](300) == 1.0 and schedule.lr_lambdas[0](399) < 0.1
    assert WSD_SHAPES is SHAPES  # one definition, light (validation does not import transformers)


def test_the_scheduler_names_validation_knows_are_transformers_own():
    from transformers import SchedulerType

    assert set(SCHEDULERS) == {t.value for t in SchedulerType}
