"""Lightning loggers adapted to lmlab: one step convention; one W&B config record."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger


class StepsDone:
    """Logs each point at the number of optimizer steps done, as the console, the checkpoint names
    (`step000005.ckpt`), `summary.json` and `lmlab-compare` count them.

    Lightning passes the index of the step just taken (4 after 5 steps, also for the validation that
    follows it); this is the one place lmlab turns that into steps done. A learning rate logged before a
    step is then at the step that uses it.
    """

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        super().log_metrics(metrics, None if step is None else step + 1)


class StepsDoneTensorBoardLogger(StepsDone, TensorBoardLogger):
    """Lightning's `TensorBoardLogger` on lmlab's step axis."""


class StepsDoneWandbLogger(StepsDone, WandbLogger):
    """Lightning's `WandbLogger` on lmlab's step axis, with the run's config as its only config record.

    `lmlab.runs.tracking.log_config` records lmlab's resolved config, and the module's hyperparameters that
    are not config keys under `module`; Lightning would add the module's hyperparameters a second time,
    with the config's nodes rewritten and the derived values at the top level.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Lightning always passes `anonymous`, which wandb 0.31 answers with a deprecation warning per run
        self._wandb_init.pop("anonymous", None)

    def log_hyperparams(self, params: Any) -> None:
        pass
