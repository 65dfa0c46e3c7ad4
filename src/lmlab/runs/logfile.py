"""`train.log` is written only by a launch that trains: records are held in memory until then.

Hydra attaches a file handler for `<run_dir>/train.log` (opened for appending) before lmlab sees the
config. A relaunch that is refused (bad input, a run directory in use) or has nothing to do (a finished
run) must leave the earlier run's `train.log` byte-identical, so the handler is swapped for a memory
buffer at start and put back, with the buffered records, only once this launch holds the run directory
and is about to train.
"""

from __future__ import annotations

import logging
from logging.handlers import MemoryHandler


class DeferredFileLog:
    """The root logger's file handlers, swapped for memory buffers until this launch trains."""

    def __init__(self):
        self.deferred: list[tuple[logging.FileHandler, MemoryHandler]] = []

    def defer(self) -> None:
        """Replace the root logger's file handlers by buffers (console handlers keep printing)."""
        root = logging.getLogger()
        for handler in list(root.handlers):
            if isinstance(handler, logging.FileHandler):
                buffer = MemoryHandler(capacity=1 << 30, flushLevel=logging.CRITICAL + 1, flushOnClose=False)
                buffer.setLevel(handler.level)
                for f in handler.filters:
                    buffer.addFilter(f)
                root.removeHandler(handler)
                root.addHandler(buffer)
                self.deferred.append((handler, buffer))

    def attach(self) -> None:
        """Put the file handlers back and write what was buffered into them (this launch trains)."""
        root = logging.getLogger()
        while self.deferred:
            handler, buffer = self.deferred.pop()
            root.removeHandler(buffer)
            buffer.setTarget(handler)
            buffer.flush()
            buffer.setTarget(None)
            root.addHandler(handler)

    def drop(self) -> None:
        """Forget the buffered records and the file handlers (this launch does not train)."""
        root = logging.getLogger()
        while self.deferred:
            handler, buffer = self.deferred.pop()
            root.removeHandler(buffer)
            handler.close()


def log_to_files(logger: logging.Logger, level: int, message: str) -> None:
    """Record `message` in the run's log file only (or its buffer): the console shows it once, by other means."""
    record = logger.makeRecord(logger.name, level, "(lmlab)", 0, message, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler | MemoryHandler):
            handler.handle(record)
