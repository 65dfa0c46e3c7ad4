"""`Launch`: what one launch holds while it runs, and its steps that protect the run directory, in the order
`lmlab.train` takes them.

1. `begin`: secrets are known and masked in every log line; `train.log` records are held back.
2. `claim`: the run directory's lock (after the config was validated, before any file in it is read to plan
   the resume).
3. `start_training`: this launch really trains: `train.log` gets its records, `metrics.csv` loses the rows
   past the checkpoint it resumes from.
4. `end` (the command's teardown, whatever happened): the lock is released; held-back records of a launch that
   did not train are dropped, and the run directory Hydra made for it is removed when it holds nothing else.

A relaunch refused in 1-2, or into a finished run, leaves every file of the run directory byte-identical.
"""

from __future__ import annotations

import errno
import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from lmlab.console import prefix_ranks
from lmlab.errors import LmlabError
from lmlab.runs.lock import RunLock, launch_rank_zero
from lmlab.runs.logfile import DeferredFileLog
from lmlab.runs.preflight import NEW_DIRS_KEY
from lmlab.utils.redact import mask, redact_logging, remember, secrets_in, secrets_in_overrides

log = logging.getLogger("lmlab")
# OS errors that are the user's environment, not a bug: one line naming the path and the cause.
ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


class Launch:
    """One launch of a command: its lock, its held-back `train.log`, whether it trained. Made by the command's
    entry point, handed to the work and torn down by `lmlab.runs.command.run_command`."""

    def __init__(self):
        self.file_log = DeferredFileLog()
        self.lock: RunLock | None = None
        self.new_dirs: Path | None = None
        self.training = False

    def begin(self, cfg: DictConfig) -> None:
        from hydra.core.hydra_config import HydraConfig

        from lmlab.data.cache import new_launch

        new_launch()  # the next job of a sweep says which cache entries it reuses, once
        overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
        self.file_log.defer()
        try:
            plain = OmegaConf.to_container(cfg, resolve=True)
        except Exception:  # noqa: BLE001 - an unresolvable config is reported by validate_config
            plain = OmegaConf.to_container(cfg, resolve=False)
        remember([*secrets_in(plain), *secrets_in_overrides(overrides)])
        redact_logging()
        prefix_ranks()
        if HydraConfig.initialized() and (made := HydraConfig.get().runtime.get(NEW_DIRS_KEY)):
            self.new_dirs = Path(made)  # what Hydra created for this single run (lmlab.runs.preflight)

    def claim(self, run_dir: Path) -> None:
        self.lock = RunLock(run_dir)
        self.lock.acquire()

    def start_training(self, run_dir: Path, resumed_step: int) -> None:
        """Attach `train.log`; drop the metrics rows a resumed run logs again (all of them when starting over)."""
        from lmlab.tracking.metrics import drop_rows_after, drop_samples_after  # imports Lightning: off `--help`

        self.training = True
        self.file_log.attach()
        redact_logging()
        prefix_ranks()
        if not launch_rank_zero():
            return
        if dropped := drop_rows_after(run_dir, resumed_step):
            log.info("Dropped %d rows of metrics.csv logged after step %d, where this run resumes", dropped,
                     resumed_step)
        drop_samples_after(run_dir, resumed_step)
        clear_partial_writes(run_dir)

    def end(self) -> None:
        """Release the lock; a launch that did not train leaves neither log records nor the directories made
        for it."""
        if self.lock is not None:
            self.lock.release()
        self.file_log.drop()
        if not self.training and self.new_dirs is not None:
            remove_unused_new_dirs(self.new_dirs)
        self.new_dirs = None


def remove_unused_new_dirs(new_dirs: Path) -> None:
    """Remove the directories Hydra created for a launch that was refused, when they hold nothing but the
    empty `train.log` Hydra opened: a refused launch leaves no trace."""
    import shutil

    if not new_dirs.is_dir():
        return
    files = [p for p in new_dirs.rglob("*") if not p.is_dir()]
    if all(p.name == "train.log" and p.stat().st_size == 0 for p in files):
        shutil.rmtree(new_dirs, ignore_errors=True)


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


def environment_error(e: OSError, run_dir: str | None) -> LmlabError | None:
    """A one-line `LmlabError` for a full disk, a read-only or forbidden path; None for other OS errors."""
    if e.errno not in ENVIRONMENT_ERRNOS:
        return None
    where = e.filename or (f"a file under {run_dir}" if run_dir else "a file")
    return LmlabError(mask(f"{where}: {e.strerror or e} (while writing the run's files; free space or fix "
                           "permissions, then relaunch)"))
