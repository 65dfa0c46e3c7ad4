"""A Hydra callback that checks, before Hydra creates the run directory, that it can be created and written.

Hydra makes `hydra.run.dir` (and opens `train.log`) before lmlab's code runs, so a read-only or full
output directory would otherwise end in Hydra's traceback. This prints one line and exits with status 2.
"""

from __future__ import annotations

import errno
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict, read_write

MIN_FREE_BYTES = 1 << 20  # less than this is a full disk: not even the config and the log fit
# Where the preflight hands the launch the outermost directory Hydra is about to create for a single run
# (absent: the run directory existed already): `hydra.runtime.<NEW_DIRS_KEY>`, read by `lmlab.runs.lifecycle`.
NEW_DIRS_KEY = "lmlab_new_dirs"


def directory_problem(directory: Path) -> str | None:
    """Why `directory` cannot be created and written (naming the path and the cause), or None."""
    existing = directory.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a directory"
    if os.statvfs(existing).f_flag & os.ST_RDONLY:
        return f"{existing} is on a read-only filesystem ({os.strerror(errno.EROFS)})"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable ({os.strerror(errno.EACCES)})"
    free = shutil.disk_usage(existing).free
    if free < MIN_FREE_BYTES:
        return f"{existing}: {os.strerror(errno.ENOSPC)} ({free} bytes free)"
    return None


def first_missing(directory: Path) -> Path | None:
    """The outermost of `directory` and its parents that does not exist yet (None: it exists)."""
    directory = directory.absolute()
    if directory.exists():
        return None
    while not directory.parent.exists():
        directory = directory.parent
    return directory


class RunDirPreflight(Callback):
    def _check(self, key: str, directory: str) -> None:
        if problem := directory_problem(Path(directory)):
            print(f"error: {key}={directory!r} cannot be written: {problem}", file=sys.stderr)
            sys.exit(2)

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        HydraConfig.instance().set_config(config)  # the run dir's interpolations read `hydra:` values
        self._check("run_dir", config.hydra.run.dir)
        if (new_dirs := first_missing(Path(config.hydra.run.dir))) is not None:
            with read_write(config.hydra.runtime), open_dict(config.hydra.runtime):  # the job's HydraConfig is this
                config.hydra.runtime[NEW_DIRS_KEY] = str(new_dirs)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        HydraConfig.instance().set_config(config)
        self._check("hydra.sweep.dir", config.hydra.sweep.dir)
