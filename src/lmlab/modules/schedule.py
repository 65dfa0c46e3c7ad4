"""The learning-rate schedule's length when a run continues with another budget (`resume=force` with a
larger `trainer.max_steps`): `scheduler.on_budget_change` chooses.

- `replan` (default): the schedule is computed for the new budget, as if the run had been launched with
  it; the LR at the resumed step becomes that longer run's (a decaying schedule steps back up).
- `continue`: the schedule planned when the run started goes on unchanged; past its end the LR stays at
  its final value (for a decay to 0: no further learning; for a constant schedule: the same LR).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from lmlab.errors import LmlabError

SCHEDULE_STEPS_KEY = "lr_schedule_steps"  # in each checkpoint: the steps its schedule was planned for
MODES = ("replan", "continue")


def schedule_steps(budget: int, on_budget_change: str, resumed: int | None) -> int:
    """The steps to plan the schedule for: this launch's budget, or (`continue`) the resumed checkpoint's."""
    if on_budget_change not in MODES:
        raise LmlabError(f"scheduler.on_budget_change={on_budget_change!r} must be one of {', '.join(MODES)}")
    return resumed if on_budget_change == "continue" and resumed else budget


def _held(step: int, lr_lambda: Callable[[int], float], last: int) -> float:
    return lr_lambda(min(step, last))


def hold_after(scheduler, last: int) -> None:
    """Keep a `LambdaLR` schedule at its value of step `last` after it (a cosine would otherwise rise again)."""
    from torch.optim.lr_scheduler import LambdaLR

    if isinstance(scheduler, LambdaLR):  # every `transformers.get_scheduler` schedule but reduce_lr_on_plateau
        scheduler.lr_lambdas = [functools.partial(_held, lr_lambda=f, last=last) for f in scheduler.lr_lambdas]
