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
import os
import socket
import time
from pathlib import Path

from lmlab.errors import LmlabError

LOCK_FILE = "lmlab.lock"
_held: dict[Path, dict] = {}


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


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # being written, or garbage: treated as held by an unknown process


def acquire_run_lock(run_dir: Path) -> None:
    """Take `run_dir`'s lock for this process (global rank 0 only); `LmlabError` when another run holds it."""
    if not launch_rank_zero() or run_dir in _held:
        return
    run_dir.mkdir(parents=True, exist_ok=True)  # Hydra made it already, unless train() is called directly
    path = run_dir / LOCK_FILE
    me = _me()
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _read(path)
            if holder is None:
                continue
            if holder and _stale(holder):
                path.unlink(missing_ok=True)
                continue
            who = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')} since {holder.get('since', '?')}"
            raise LmlabError(f"run_dir={str(run_dir)!r} is in use by another lmlab-train ({who}, {path}); "
                             "wait for it to end, or pick another run_name=/run_dir=") from None
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        _held[run_dir] = me
        atexit.register(release_run_locks)
        return
    raise LmlabError(f"run_dir={str(run_dir)!r}: could not take its lock {path}")


def release_run_locks() -> None:
    """Remove the locks this process holds (each only if it is still ours)."""
    for run_dir, me in list(_held.items()):
        path = run_dir / LOCK_FILE
        if _read(path) == me:
            path.unlink(missing_ok=True)
        del _held[run_dir]
