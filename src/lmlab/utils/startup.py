"""Seconds since this process started: what a user waits for before training runs (imports, data, model,
compilation), measured from the process's start as the kernel records it, not from when lmlab was imported."""

from __future__ import annotations

import os
import time

_IMPORTED = time.monotonic()  # the fallback where /proc is missing (not Linux)


def seconds_since_process_start() -> float:
    try:
        with open("/proc/self/stat") as f:
            # field 22 (starttime, in clock ticks since boot); the command name before it may hold spaces
            started = int(f.read().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
        return time.clock_gettime(time.CLOCK_BOOTTIME) - started
    except (OSError, ValueError, IndexError, AttributeError):
        return time.monotonic() - _IMPORTED
