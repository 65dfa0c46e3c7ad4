"""Pruning inside an Optuna trial: each validation's metric goes to the study, whose pruner may stop the run."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.loggers import WandbLogger

log = logging.getLogger(__name__)


class OptunaPruning(L.Callback):
    """Reports `monitor` at each validation to this run's trial; when the pruner says so, stops at the next step.

    Does nothing outside a search by lmlab's Optuna sweeper. A pruned run writes `pruned.json` into its run
    directory (which the sweeper and `lmlab-compare` read), is tagged `pruned` in W&B and ends like a
    finished run, so its checkpoints and metrics stay for inspection.
    """

    def __init__(self, monitor: str, run_dir: str):
        self.monitor = monitor
        self.run_dir = Path(run_dir)
        self.trial: Any = None
        self.number: int | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if trainer.is_global_zero:
            self.trial, self.number = _this_trial()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        prune = False
        value = trainer.callback_metrics.get(self.monitor)
        if self.trial is not None and value is not None:
            self.trial.report(float(value), trainer.global_step)
            prune = self.trial.should_prune()
        if trainer.world_size > 1:
            prune = trainer.strategy.broadcast(prune, src=0)
        if not prune:
            return
        trainer.should_stop = True
        if trainer.is_global_zero:
            from lmlab.runs.status import record_pruned

            record_pruned(self.run_dir, self.number, trainer.global_step, float(value))
            log.info("Optuna trial %d pruned at step %d (%s=%.4g): stopping", self.number, trainer.global_step,
                     self.monitor, float(value))
            for logger in trainer.loggers:
                if isinstance(logger, WandbLogger):
                    logger.experiment.summary.update({"optuna/state": "pruned", "optuna/trial": self.number})
                    logger.experiment.tags = (*logger.experiment.tags, "pruned")


def _this_trial() -> tuple[Any, int | None]:
    """This job's trial (Hydra's job number is the trial number), or (None, None) outside an Optuna search."""
    from hydra.core.hydra_config import HydraConfig

    from lmlab.sweeps.search import SWEEPER_TARGET

    if not HydraConfig.initialized():
        return None, None
    job = HydraConfig.get()
    sweeper = job.sweeper
    if sweeper.get("_target_") != SWEEPER_TARGET or not sweeper.get("storage") or len(sweeper.objectives or {}) > 1:
        return None, None  # not a search, or multi-objective (Optuna prunes single-objective studies only)
    import optuna
    from hydra.utils import instantiate

    number = int(job.job.num)
    storage = optuna.storages.RDBStorage(sweeper.storage)
    pruner = instantiate(sweeper.pruner) if sweeper.get("pruner") else optuna.pruners.NopPruner()
    study = optuna.load_study(study_name=sweeper.study_name, storage=storage, pruner=pruner)
    trial_id = storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(study.study_name), number)
    return optuna.trial.Trial(study, trial_id), number
