"""One writer per run directory: `<run_dir>/lmlab.lock`, held for the life of a training run.

The file holds the holder's pid, host, process start time and SLURM job id. A second launch into the same
directory is refused with one line naming the holder. A lock is stale, and taken over, when its holder
is gone: same host and the pid is dead (or reused by another process), or the same SLURM job (a requeue
restarts the job with the same id). Only global rank 0 of a launch takes it: DDP processes that Lightning
re-executes (LOCAL_RANK set), other nodes and other SLURM tasks train under rank 0's lock.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import socket
import time
from pathlib import Path

from lmlab.errors import LmlabError

LOCK_FILE = "lmlab.lock"
log = logging.getLogger(__name__)


def launch_rank_zero() -> bool:
    """Whether this process is global rank 0 of its launch (torchrun, SLURM, Lightning's re-executed children)."""
    for key in ("RANK", "SLURM_PROCID"):
        if os.environ.get(key) is not None:
            return os.environ[key] == "0"
    return all(os.environ.get(key, "0") == "0" for key in ("LOCAL_RANK", "NODE_RANK", "GROUP_RANK"))


def _start_time(pid: int) -> str | None:
    """The kernel's start time of `pid` (Linux), which tells a live holder from a reused pid; None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else fields[19]  # a zombie has exited


def _alive(pid: int, start: str | None) -> bool:
    if Path("/proc").is_dir():
        now = _start_time(pid)
        return now is not None and (start is None or now == start)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _me() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(), "start": _start_time(os.getpid()),
            "slurm_job_id": os.environ.get("SLURM_JOB_ID"), "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def _stale(holder: dict) -> bool:
    if holder.get("slurm_job_id") and holder["slurm_job_id"] == os.environ.get("SLURM_JOB_ID"):
        return True
    return holder.get("host") == socket.gethostname() and not _alive(int(holder.get("pid", -1)), holder.get("start"))


def lock_state(run_dir: Path) -> str | None:
    """"alive" while a live process holds the run's lock (or one on another host: it can't be told from here),
    "dead" when its holder is gone without releasing it (killed), None when nobody holds it."""
    holder = _read(run_dir / LOCK_FILE)
    if holder is None:
        return None
    return "dead" if not holder or _stale(holder) else "alive"


def _read(path: Path) -> dict | None:
    """The holder recorded in a lock file; None when there is none; {} when it cannot be parsed (the lock is
    linked into place whole, so that is garbage: e.g. an older lmlab killed while writing it)."""
    try:
        holder = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) and "pid" in holder else {}


def _create(path: Path, me: dict) -> bool:
    """Create `path` holding `me`, whole or not at all: written to a temp file, then hard-linked into place
    (which fails when the lock exists). False when another process holds it."""
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(json.dumps(me))
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    return True


class RunLock:
    """This process's hold on one run directory's lock (global rank 0 only; other ranks hold nothing)."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.path = run_dir / LOCK_FILE
        self.me: dict | None = None  # what this process wrote into the lock, while it holds it

    def acquire(self) -> None:
        """Take the lock; `LmlabError` naming the holder when another live run holds it."""
        if not launch_rank_zero() or self.me is not None:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)  # Hydra made it already, unless train() is called directly
        me = _me()
        for _ in range(3):
            if not _create(self.path, me):
                holder = _read(self.path)
                if holder is None:
                    continue
                if not holder:
                    log.warning("%s names no holder (empty or garbage, e.g. left by a crash): taking it over",
                                self.path)
                if not holder or _stale(holder):
                    self.path.unlink(missing_ok=True)
                    continue
                who = f"pid {holder['pid']} on {holder.get('host', '?')} since {holder.get('since', '?')}"
                raise LmlabError(f"run_dir={str(self.run_dir)!r} is in use by another lmlab-train ({who}, "
                                 f"{self.path}); wait for it to end, or pick another run_name=/run_dir=")
            self.me = me
            atexit.register(self.release)  # a process that exits without its teardown (os._exit aside)
            return
        raise LmlabError(f"run_dir={str(self.run_dir)!r}: could not take its lock {self.path}")

    def release(self) -> None:
        """Remove the lock if this process holds it (and it is still ours)."""
        if self.me is not None and _read(self.path) == self.me:
            self.path.unlink(missing_ok=True)
        self.me = None
        atexit.unregister(self.release)
