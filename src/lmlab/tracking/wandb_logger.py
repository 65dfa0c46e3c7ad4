"""Weights & Biases: the Lightning `WandbLogger`, offline whenever the server can't be used.

A run is named after its overridden keys and grouped by its sweep; its id is kept in the run directory
so that relaunching the same command (which resumes from the last checkpoint) continues the same W&B run.
"""

from __future__ import annotations

import logging
import netrc
import os
import secrets
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

log = logging.getLogger(__name__)


def wandb_api_key() -> str | None:
    """The key wandb would use: `$WANDB_API_KEY`, else the `~/.netrc` entry written by `wandb login`."""
    if key := os.environ.get("WANDB_API_KEY"):
        return key
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"
    try:
        entry = netrc.netrc().authenticators(host)
    except (OSError, netrc.NetrcParseError):
        return None
    return entry[2] if entry else None


def wandb_reachable(timeout: float = 3.0) -> bool:
    url = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai"))
    try:
        with socket.create_connection((url.hostname or "api.wandb.ai", url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def should_run_offline() -> tuple[bool, str]:
    """(offline?, why). `WANDB_MODE` wins; otherwise offline without a key or without the server."""
    mode = os.environ.get("WANDB_MODE", "").lower()
    if mode in ("offline", "dryrun", "disabled"):
        return True, f"WANDB_MODE={mode}"
    if mode == "online":
        return False, "WANDB_MODE=online"
    if not wandb_api_key():
        return True, "no W&B API key (set WANDB_API_KEY or run `wandb login`)"
    if not wandb_reachable():
        return True, "the W&B server is unreachable"
    return False, "API key found and server reachable"


ID_FILE = "wandb_id.txt"
# Out of run directory names (a run may resume on another device count) but in W&B names, so that the runs
# of a sweep across device counts tell apart.
DEVICE_KEYS = ("trainer.devices", "trainer.num_nodes")


def wandb_run_name(overrides: Sequence[str], default: str = "run") -> str:
    """A short W&B run name from overrides: `model=llama-tiny optimizer.lr=3e-4` → `model=llama-tiny,lr=3e-4`.

    Keys are cut to their last part unless two overrides would then share it; the keys the run directory's
    name leaves out (lmlab.config_keys) are left out, device counts excepted. A long float (an Optuna trial's
    0.000256077385703473) is shown to 3 digits.
    """
    from lmlab.config_keys import in_run_name, override_key
    from lmlab.utils.redact import redact_overrides

    pairs = [(override_key(o), _short_float(o.partition("=")[2])) for o in redact_overrides(overrides)
             if in_run_name(o) or override_key(o) in DEVICE_KEYS]
    last_parts = [key.rsplit(".", 1)[-1] for key, _ in pairs]
    names = [short if last_parts.count(short) == 1 else key for (key, _), short in zip(pairs, last_parts, strict=True)]
    return ",".join(f"{name}={value}" for name, (_, value) in zip(names, pairs, strict=True)) or default


def _short_float(value: str) -> str:
    try:
        float(value)
    except ValueError:
        return value
    return f"{float(value):.3g}" if len(value) > 8 and not value.lstrip("-").isdigit() else value


def wandb_group(experiment_name: str, multirun: bool, sweep_name: str) -> str:
    """The W&B group: one per sweep (`<experiment>-<sweep_name>`); a single run is grouped by its experiment."""
    return f"{experiment_name}-{sweep_name}" if multirun else experiment_name


def run_id(run_dir: Path, resume: bool, write: bool) -> str:
    """The W&B run id kept in `<run_dir>/wandb_id.txt`: reused when resuming, otherwise a new one (saved if `write`)."""
    id_file = run_dir / ID_FILE
    if resume and id_file.is_file():
        return id_file.read_text().strip()
    new_id = secrets.token_hex(4)
    if write:
        run_dir.mkdir(parents=True, exist_ok=True)
        id_file.write_text(new_id + "\n")
    return new_id


def wandb_logger(offline: bool | None = None, save_dir: str = ".", resume: bool = True, **kwargs: Any):
    """Lightning's `WandbLogger`; `offline=None` decides from the key and the network, never failing the run.

    Only rank zero creates the W&B run (Lightning's logger is a no-op elsewhere) and writes the id file.
    """
    from lightning.pytorch.utilities import rank_zero_only

    from lmlab.tracking.loggers import StepsDoneWandbLogger
    from lmlab.utils.redact import redact

    if offline is None:
        offline, why = should_run_offline()
        log.info("W&B: %s (%s)", "offline" if offline else "online", why)
    # An unreachable server otherwise blocks wandb.init for ~90 s.
    os.environ.setdefault("WANDB_INIT_TIMEOUT", "30")
    wandb_id = run_id(Path(save_dir), resume, write=rank_zero_only.rank == 0)

    from lmlab.tracking.history import logged_points

    shown = {key: redact(kwargs[key]) for key in ("name", "tags", "notes", "group", "job_type") if key in kwargs}
    held = logged_points(Path(save_dir), wandb_id) if offline else None  # earlier launches' points
    return StepsDoneWandbLogger(offline=offline, save_dir=save_dir, id=wandb_id, resume="allow", held=held,
                                **{**kwargs, **shown})


def log_config(loggers: Sequence[Any], config: dict, derived: dict | None = None) -> None:
    """Record the fully resolved (secret-redacted) run config in each W&B and MLflow run, and under `module`
    the module's hyperparameters that are not config keys (`derived`: e.g. the tokenizer's vocabulary size);
    call on rank zero."""
    from lightning.pytorch.loggers import WandbLogger

    from lmlab.tracking.mlflow_logger import StepsDoneMLFlowLogger
    from lmlab.utils.redact import redact, redact_overrides

    config = redact({**config, "module": derived} if derived else config)
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            argv = sys.argv  # W&B records the command line in its run metadata when the run starts
            sys.argv = [argv[0], *redact_overrides(argv[1:])]
            try:
                logger.experiment.config.update(config, allow_val_change=True)
            finally:
                sys.argv = argv
        elif isinstance(logger, StepsDoneMLFlowLogger):
            logger.log_config(config)


def finish_wandb() -> None:
    """Close the W&B run (the next run of a multirun starts its own); say how to upload an offline one."""
    import wandb

    run = wandb.run
    if run is None:
        return
    offline, sync_dir, wandb_id = run.offline, run.sync_dir, run.id
    wandb.finish()
    if offline:
        log.info("W&B run %s was saved offline; upload it with: wandb sync %s", wandb_id, sync_dir)
