"""Lightning loggers adapted to lmlab: one step convention; one W&B config record."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only

STEP_KEY = "trainer/global_step"  # Lightning's W&B step metric


def steps_done(step: int) -> int:
    """lmlab's step of a point Lightning logs at `step` (see `StepsDone`)."""
    return step + 1


class StepsDone:
    """Logs each point at the number of optimizer steps done, as the console, the checkpoint names
    (`step000005.ckpt`), `summary.json` and `lmlab-compare` count them.

    Lightning passes the index of the step just taken (4 after 5 steps, also for the validation that
    follows it); this is the one place lmlab turns that into steps done. A learning rate logged before a
    step is then at the step that uses it.
    """

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        super().log_metrics(metrics, None if step is None else steps_done(step))


class StepsDoneTensorBoardLogger(StepsDone, TensorBoardLogger):
    """Lightning's `TensorBoardLogger` on lmlab's step axis."""


class StepsDoneWandbLogger(WandbLogger):
    """Lightning's `WandbLogger` on lmlab's step axis (W&B's own step too), each point once, with the run's
    config as its only config record.

    `logged`: the (step, metric) points the run's earlier launches wrote (offline; None online), skipped
    when logged again (`lmlab.runs.wandb_history`). `lmlab.runs.tracking.log_config` records lmlab's
    resolved config, and the module's hyperparameters that are not config keys under `module`; Lightning
    would add the module's hyperparameters a second time, with the config's nodes rewritten.
    """

    def __init__(self, *args: Any, logged: set[tuple[int, str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Lightning always passes `anonymous`, which wandb 0.31 answers with a deprecation warning per run
        self._wandb_init.pop("anonymous", None)
        self.logged = logged
        # the last step that can be logged twice: up to the steps of the earlier launches (a validation
        # repeated after resuming); later points are not remembered, so the set does not grow with the run
        self._repeatable_until = max((step for step, _ in logged or ()), default=-1)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if step is None:
            super().log_metrics(metrics)
        else:
            self.log_points(steps_done(step), metrics)

    def log_points(self, step: int, metrics: Mapping[str, float]) -> int:
        """Log the points of `metrics` that W&B does not hold yet at `step`; returns how many."""
        new = {k: v for k, v in metrics.items() if self.logged is None or (step, k) not in self.logged}
        if new:
            self.experiment.log({**new, STEP_KEY: step}, step=step)
            if self.logged is not None and step <= self._repeatable_until:
                self.logged.update((step, k) for k in new)
        return len(new)

    def log_missing(self, points: Sequence[tuple[int, Mapping[str, float]]]) -> int:
        """Log the (step, metrics) points (from `metrics.csv`) that W&B lacks; returns how many (offline only)."""
        if self.logged is None:
            return 0
        self._repeatable_until = max(self._repeatable_until, *(step for step, _ in points), -1)
        return sum(self.log_points(step, metrics) for step, metrics in points)

    def log_hyperparams(self, params: Any) -> None:
        pass
