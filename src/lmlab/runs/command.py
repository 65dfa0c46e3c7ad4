"""`run_command`: what every lmlab command's Hydra entry point wraps around its work: a user error as one line
and status 2, and a teardown (lock, W&B, DDP process group) that lets the next run of a multirun start clean."""

from __future__ import annotations

import logging
import os
import sys
import traceback

from omegaconf import DictConfig, OmegaConf

from lmlab.console import quiet_warnings
from lmlab.errors import LmlabError
from lmlab.runs.lifecycle import Launch, environment_error
from lmlab.runs.logfile import log_to_files
from lmlab.utils.redact import mask

log = logging.getLogger("lmlab")


def run_command(task_fn, cfg: DictConfig, launch: Launch | None = None) -> float | None:
    """Run `task_fn(cfg)`; in a single run a user error is one line on stderr and exit status 2.

    In a multirun the error is raised instead, so Hydra records it for that job and runs the others. `launch`
    (the command's hold on a run directory, when it has one) is ended whatever happened.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    quiet_warnings()
    multirun = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    environ = dict(os.environ)
    try:
        return task_fn(cfg)
    except Exception as e:
        if multirun:  # Hydra records it for this job (its error.txt) and runs the others; train.log keeps it too
            log_to_files(log, logging.ERROR, mask("".join(traceback.format_exception(e)).rstrip()))
            raise
        if not isinstance(e, LmlabError | OSError):
            raise
        error = e if isinstance(e, LmlabError) else environment_error(e, OmegaConf.select(cfg, "paths.run_dir"))
        if error is None:
            raise
        log_to_files(log, logging.ERROR, f"error: {mask(str(error))}")  # train.log of a launch that trained
        print(f"error: {mask(str(error))}", file=sys.stderr)
        sys.exit(2)
    finally:
        if launch is not None:
            launch.end()  # the lock released; a launch that did not train leaves no trace
        _finish_wandb()
        _leave_process_group()
        _restore_environment(environ)


def _finish_wandb() -> None:
    """Close any W&B run, so that the next run of a multirun starts its own (and a failure is synced)."""
    if "wandb" in sys.modules:
        from lmlab.tracking.wandb_logger import finish_wandb

        finish_wandb()


def _leave_process_group() -> None:
    """End this run's DDP process group, so that the next run of a multirun starts its own."""
    if "torch.distributed" in sys.modules:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


def _restore_environment(environ: dict[str, str]) -> None:
    """Put `os.environ` back as it was before the run, so that the next run of a multirun starts from it.

    A run changes the environment of its process: Lightning's launcher leaves LOCAL_RANK, WORLD_SIZE,
    MASTER_PORT... (the next run would believe its processes were started externally and wait for them
    forever), its offline `WandbLogger` sets WANDB_MODE=dryrun (the next run would go offline for that
    reason, whatever its own), seeding sets PL_GLOBAL_SEED.
    """
    for key in set(os.environ) - set(environ):
        del os.environ[key]
    for key, value in environ.items():
        if os.environ.get(key) != value:
            os.environ[key] = value
