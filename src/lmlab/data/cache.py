"""A build-once directory cache: one process builds an entry, every other process waits and reuses it.

Entries are keyed by a content fingerprint, built in a temporary directory and renamed into place, so
a reader never sees a half-written entry — whether the other writer is a DDP rank, a parallel run of
a sweep, or a process that was killed mid-build.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock

log = logging.getLogger(__name__)


def fingerprint(**parts: object) -> str:
    """Stable short hash of named parts (order-independent, JSON-serialised)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


def cached_dir(cache_dir: str | Path, key: str, build: Callable[[Path], None], what: str) -> Path:
    """Return `cache_dir/key`, calling `build(tmp_dir)` under a file lock the first time."""
    cache_dir = Path(cache_dir)
    target = cache_dir / key
    if target.is_dir():
        _reusing(what, target)
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache_dir / f"{key}.lock")):
        if target.is_dir():  # another process built it while we waited
            _reusing(what, target)
            return target
        for stale in cache_dir.glob(f"{key}.tmp-*"):  # left by a build that was killed: we hold the lock now
            log.info("Removing %s, left by an interrupted build", stale)
            shutil.rmtree(stale, ignore_errors=True)
        tmp = cache_dir / f"{key}.tmp-{os.getpid()}"
        tmp.mkdir()
        log.info("Building %s (cache miss): %s", what, target)
        try:
            build(tmp)
            os.rename(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    _ANNOUNCED.add(target)  # built here: said once ("Building ..."), not again when read
    return target


_ANNOUNCED: set[Path] = set()  # the entries this launch has named once (prepare_data, then setup, read each)


def new_launch() -> None:
    """A new run in this process (the next job of a sweep) names the cache entries it reuses again, once."""
    _ANNOUNCED.clear()


def _reusing(what: str, target: Path) -> None:
    if target not in _ANNOUNCED:
        _ANNOUNCED.add(target)
        log.info("Reusing cached %s: %s", what, target)
