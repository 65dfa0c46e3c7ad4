"""`Run`: one launch of `lmlab-train` in its run directory, from the checked config to the finished marker.

    run = Run(cfg)           # secrets masked, train.log held back, every config error in one line
    plan = run.claim()       # the run directory's lock, and where this launch resumes from
    run.start()              # this launch trains: train.log attached, metrics rows past the resume point dropped
    run.record(loggers)      # config.yaml, run.json, overrides (or the resume's record), config to the loggers
    run.finish(trainer)      # finished.json when training ended normally; the monitored metric

The teardown (lock released, held-back log records dropped, W&B closed, DDP process group left) is the
command's (`lmlab.runs.command.run_command`), so it runs whatever happened. A relaunch refused before
`start`, or into a finished run, leaves every file of the run directory byte-identical.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from omegaconf import DictConfig

from lmlab.checkpoint.resume import ResumePlan
from lmlab.runs.config_checks import check_config
from lmlab.runs.lifecycle import Launch
from lmlab.runs.validate import validate_config

log = logging.getLogger("lmlab")


class Run:
    """A launch's run directory and what it does there; see the module's docstring for the order."""

    def __init__(self, cfg: DictConfig, launch: Launch):
        self.launch = launch
        launch.begin(cfg)  # secrets masked in every log line; train.log held back until this launch trains
        validate_config(cfg)  # every bad value of lmlab's keys, in one message
        check_config(cfg)  # before the Lightning import: bad input fails fast
        self.cfg = cfg
        self.run_dir = Path(cfg.paths.run_dir)
        self.plan = ResumePlan()

    def claim(self) -> ResumePlan:
        """Take the run directory (one writer) and plan this launch: resume, start afresh or nothing to do."""
        from lightning.pytorch.utilities import rank_zero_only

        from lmlab.checkpoint.resume import plan_resume, report
        from lmlab.distributed import apply_global_batch_size, validate_every_n_steps
        from lmlab.parallel.fsdp_config import require_sharding_strategy

        if rank_zero_only.rank != 0:  # ranks started by srun or torchrun: rank 0 alone writes the run's train.log
            self.launch.file_log.drop()  # begin held the file handler back; this rank never gets it
        apply_global_batch_size(self.cfg)
        validate_every_n_steps(self.cfg)
        self.launch.claim(self.run_dir)
        self.plan = plan_resume(self.cfg, self.run_dir)
        if self.plan.ckpt_path:
            require_sharding_strategy(self.cfg, Path(self.plan.ckpt_path))
        if rank_zero_only.rank == 0:
            report(self.plan, self.run_dir)
        return self.plan

    def start(self) -> None:
        self.launch.start_training(self.run_dir, self.plan.step)

    def record(self, loggers: list, derived_hparams: dict) -> None:
        """What the run directory keeps about this launch (rank 0): the first launch's config and provenance,
        a resume's own record. The loggers get the config and `derived_hparams` (what no config key holds),
        and, on resume, what an earlier launch logged to metrics.csv but not to them."""
        from hydra.core.hydra_config import HydraConfig
        from lightning.pytorch.utilities import rank_zero_only

        from lmlab.checkpoint.resume import record_resume
        from lmlab.tracking.loggers import continue_history
        from lmlab.tracking.wandb_logger import log_config
        from lmlab.utils.provenance import resolved_config, write_provenance
        from lmlab.utils.rich_utils import print_config_tree

        if rank_zero_only.rank != 0:
            return
        if prints_config(self.cfg.get("print_config", "sweep")):
            print_config_tree(self.cfg)
        overrides = HydraConfig.get().overrides.task if HydraConfig.initialized() else []
        if self.plan.ckpt_path and (self.run_dir / "config.yaml").is_file():
            record_resume(self.run_dir, overrides, self.plan)  # keeps the first launch's config.yaml and run.json
        else:
            write_provenance(self.cfg, self.run_dir, overrides)
        if self.plan.branch:
            from lmlab.checkpoint.branch import write_branch

            write_branch(self.run_dir, self.plan.branch)
        config = {**resolved_config(self.cfg), "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
        log_config(loggers, config, derived_hparams)
        if self.plan.ckpt_path:
            continue_history(loggers, self.run_dir, self.plan.step)
        log.info("Run directory: %s", self.run_dir)

    def finish(self, trainer) -> float | None:
        """The monitored metric; `finished.json` when training ran to its end (not stopped by a signal)."""
        from lightning.pytorch.trainer.states import TrainerStatus

        from lmlab.checkpoint.resume import mark_finished

        metric = trainer.callback_metrics.get(self.cfg.monitor.metric)
        metric = None if metric is None else float(metric)
        if trainer.state.status == TrainerStatus.FINISHED and trainer.is_global_zero:
            mark_finished(self.run_dir, trainer.global_step, metric)
        return metric


def prints_config(mode: bool | str) -> bool:
    """Whether this launch prints its config tree (`print_config`): true: always; sweep (the default): a sweep's
    first job only; false: never. Every run has it in its config.yaml, so a single run's console stays short."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if mode is True or mode is False:
        return mode
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN and HydraConfig.get().job.num == 0
