"""The steps of a launch that protect its run directory, in the order `lmlab.train` calls them.

1. `begin_launch`: secrets are known and masked in every log line; `train.log` records are held back.
2. `claim_run_dir`: the run directory's lock (after the config was validated, before any file in it is read
   to plan the resume).
3. `start_training`: this launch really trains: `train.log` gets its records, `metrics.csv` loses the rows
   past the checkpoint it resumes from.
4. `end_launch`: the lock is released; held-back records of a launch that did not train are dropped.

A relaunch refused in 1-2, or into a finished run, leaves every file of the run directory byte-identical.
"""

from __future__ import annotations

import errno
import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from lmlab.console import prefix_ranks
from lmlab.errors import LmlabError
from lmlab.runs.lock import acquire_run_lock, launch_rank_zero, release_run_locks
from lmlab.runs.logfile import attach_file_logging, defer_file_logging, drop_file_logging
from lmlab.utils.redact import mask, redact_logging, remember, secrets_in, secrets_in_overrides

log = logging.getLogger("lmlab")
# OS errors that are the user's environment, not a bug: one line naming the path and the cause.
ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}
_training = False  # set by `start_training`


def begin_launch(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    from lmlab.data.cache import new_launch

    global _training
    _training = False
    new_launch()  # the next job of a sweep says which cache entries it reuses, once
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    defer_file_logging()
    try:
        plain = OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # noqa: BLE001 - an unresolvable config is reported by validate_config
        plain = OmegaConf.to_container(cfg, resolve=False)
    remember([*secrets_in(plain), *secrets_in_overrides(overrides)])
    redact_logging()
    prefix_ranks()


def claim_run_dir(run_dir: Path) -> None:
    acquire_run_lock(run_dir)


def start_training(run_dir: Path, resumed_step: int) -> None:
    """Attach `train.log`; drop the metrics rows a resumed run logs again (all of them when starting over)."""
    from lmlab.tracking.metrics import drop_rows_after, drop_samples_after  # imports Lightning: off the `--help` path

    global _training
    _training = True
    attach_file_logging()
    redact_logging()
    prefix_ranks()
    if not launch_rank_zero():
        return
    if dropped := drop_rows_after(run_dir, resumed_step):
        log.info("Dropped %d rows of metrics.csv logged after step %d, where this run resumes", dropped, resumed_step)
    drop_samples_after(run_dir, resumed_step)
    clear_partial_writes(run_dir)


def clear_partial_writes(run_dir: Path) -> None:
    """Remove the `<file>.tmp-<pid>` files a killed writer left (a checkpoint, its checksum, metrics.csv) and
    the `.tmp-`/`.old-` directories of a sharded checkpoint's write: this launch holds the run's lock, so no
    live process is writing them."""
    import shutil

    patterns = ("*.ckpt.tmp-*", "*.ckpt.sha256.tmp-*", "metrics.csv.tmp-*", "samples.txt.tmp-*", "checkpoints/*.tmp-*",
                "checkpoints/*.ckpt.old-*")
    for leftover in [p for pattern in patterns for p in run_dir.glob(pattern)]:
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
        log.info("Removed %s, left by a write that was interrupted", leftover)


def end_launch() -> None:
    """Release the lock; a launch that did not train leaves neither log records nor the directories made for it."""
    from lmlab.runs.preflight import remove_unused_new_dirs

    release_run_locks()
    drop_file_logging()
    if not _training:
        remove_unused_new_dirs()


def environment_error(e: OSError, run_dir: str | None) -> LmlabError | None:
    """A one-line `LmlabError` for a full disk, a read-only or forbidden path; None for other OS errors."""
    if e.errno not in ENVIRONMENT_ERRNOS:
        return None
    where = e.filename or (f"a file under {run_dir}" if run_dir else "a file")
    return LmlabError(mask(f"{where}: {e.strerror or e} (while writing the run's files; free space or fix "
                           "permissions, then relaunch)"))
